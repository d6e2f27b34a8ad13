"""The command line as an operator uses it: clear lines for errors, never a traceback."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from tests.conftest import EXAMPLES, JSON_CUSTOMERS


def test_main_job_pushes_the_examples_end_to_end(run_cli: Any, tmp_path: Path) -> None:
    assert run_cli("customer", "import", str(JSON_CUSTOMERS)).exit_code == 0
    invoices = [str(p) for p in sorted(EXAMPLES.glob("*.json"))]
    result = run_cli("push", *invoices)
    assert result.exit_code == 0, result.output
    assert "4 accepted" in result.stdout
    deliveries = tmp_path / "data" / "deliveries"
    delivered = sorted(p.name for p in deliveries.rglob("*") if p.is_file())
    assert any(name.startswith("E2611-00123.") for name in delivered)
    assert any(name.startswith("E2611-00124.") for name in delivered)
    assert any(name.startswith("E2611-00125.") for name in delivered)
    assert any(name.startswith("K2611-00007.") for name in delivered)
    again = run_cli("push", *invoices)
    assert "4 unchanged" in again.stdout
    verify = run_cli("verify")
    assert verify.exit_code == 0 and "no problem" in verify.stdout


def test_bad_invoices_are_refused_one_line_each_and_the_rest_delivered(
        run_cli: Any, tmp_path: Path, invoice_data: dict[str, Any]) -> None:
    run_cli("customer", "import", str(JSON_CUSTOMERS))
    bad_totals = copy.deepcopy(invoice_data)
    bad_totals["number"] = "BAD-TOTALS"
    bad_totals["totals"] = {"line_net_total": "65.06", "total_without_vat": "65.06",
                            "vat_total": "13.66", "total_with_vat": "80.00",
                            "amount_due": "80.00"}
    no_buyer = copy.deepcopy(invoice_data)
    no_buyer["number"] = "NO-BUYER"
    del no_buyer["buyer"]
    bad_date = copy.deepcopy(invoice_data)
    bad_date["number"] = "BAD-DATE"
    bad_date["issue_date"] = "2026-02-30"
    not_a_number = copy.deepcopy(invoice_data)
    not_a_number["number"] = "NAN"
    not_a_number["lines"][0]["price"]["net"] = "12,5O"
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps([bad_totals, no_buyer, invoice_data, bad_date, not_a_number]))
    broken = tmp_path / "broken.json"
    broken.write_text('{"number": "X",')

    result = run_cli("push", str(batch), str(broken))
    assert result.exit_code == 1
    err = result.stderr
    assert "Traceback" not in result.output
    assert "invoice BAD-TOTALS" in err and "[BR-CO-15] totals.total_with_vat (BT-112)" in err
    assert "invoice NO-BUYER" in err and "[BR-07] buyer (BG-7)" in err
    assert "invoice BAD-DATE" in err and "[BR-03] issue_date (BT-2)" in err
    assert "2026-02-30" in err
    assert "invoice NAN" in err and "lines[0].price.net (BT-146)" in err
    assert "broken.json: not valid JSON" in err
    assert "1 accepted" in result.stdout and "5 rejected" in result.stdout
    delivered = list((tmp_path / "data" / "deliveries").rglob("E2611-00123.*"))
    assert len(delivered) == 1


def test_validate_reports_findings_and_exit_code(run_cli: Any, tmp_path: Path,
                                                 invoice_data: dict[str, Any]) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(invoice_data))
    assert run_cli("validate", str(good)).exit_code == 0
    invoice_data["lines"][0]["price"]["net"] = "-1"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(invoice_data))
    result = run_cli("validate", "--json", str(bad))
    assert result.exit_code == 1
    findings = [json.loads(line) for line in result.stdout.splitlines()]
    assert {"rule": "BR-27", "location": "lines[0].price.net", "severity": "fatal"}.items() \
        <= findings[0].items()


def test_status_tells_the_whole_story(run_cli: Any) -> None:
    run_cli("customer", "import", str(JSON_CUSTOMERS))
    run_cli("push", str(EXAMPLES / "electricity-paper.json"))
    story = json.loads(run_cli("status", "E2611-00124", "--json").stdout)
    assert story["number"] == "E2611-00124"
    assert story["deliveries"][0]["status"] == "delivered"
    assert [e["kind"] for e in story["events"]][:2] == ["accepted", "rendered"]
    listing = run_cli("status")
    assert "E2611-00124" in listing.stdout
    assert "no failed deliveries" in run_cli("status", "--failed").stdout


def test_unknown_invoice_is_one_clear_line(run_cli: Any) -> None:
    result = run_cli("status", "NOPE-1")
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: no invoice with id or number 'NOPE-1'"


def test_customer_commands_record_who_changed_what(run_cli: Any, tmp_path: Path) -> None:
    added = run_cli("customer", "add", "C1", "--name", "Ilze", "--language", "en",
                    "--format", "json", "--channel", f"folder path={tmp_path / 'out'}")
    assert added.exit_code == 0, added.output
    changed = run_cli("customer", "set", "C1", "--language", "lv", "--paper")
    assert changed.exit_code == 0
    shown = run_cli("customer", "show", "C1")
    data = json.loads(shown.stdout[: shown.stdout.rindex("}") + 1])
    assert data["language"] == "lv" and data["paper"] is True
    assert shown.stdout.count("by cli") == 2
    dup = run_cli("customer", "add", "C1", "--name", "again")
    assert dup.exit_code == 1 and "exists" in dup.stderr
    bad = run_cli("customer", "add", "C2", "--name", "x", "--channel", "pigeon")
    assert bad.exit_code == 1 and "unknown channel 'pigeon'" in bad.stderr


def test_render_and_convert_write_files(run_cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_cli("render", str(EXAMPLES / "credit-note.json"), "-f", "json", "-o", str(out))
    assert result.exit_code == 0, result.output
    rendered = json.loads((out / "K2611-00007.json").read_text())
    assert rendered["totals"]["amount_due"] == "-8.55" or rendered["totals"]["amount_due"]
    target = tmp_path / "copy.json"
    assert run_cli("convert", str(EXAMPLES / "credit-note.json"), "--to", "json",
                   "-o", str(target)).exit_code == 0
    assert json.loads(target.read_text())["number"] == "K2611-00007"


def test_schema_is_json_schema_of_the_model(run_cli: Any) -> None:
    schema = json.loads(run_cli("schema").stdout)
    assert schema["title"] == "Invoice"
    assert "lines" in schema["required"]


def test_plugins_lists_builtins(run_cli: Any) -> None:
    rows = {r["name"]: r for r in json.loads(run_cli("plugins", "--json").stdout)}
    assert rows["folder"]["origin"].startswith("entry point")
    assert {"kind": "format", "name": "json"} in rows["json"]["provides"]
