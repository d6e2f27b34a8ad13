"""`gateway validate`, `convert`, `render` and `push` with the XML formats, end to end."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import Result

from gateway import complete
from gateway.core import Dispatcher
from gateway.core.pipeline import Gateway
from tests.conftest import add_customer
from tests.xml_einvoice.xml_helpers import (
    CII,
    EXAMPLE_JSON,
    OFFICIAL,
    UBL,
    business_terms,
    fatal,
    read,
    render,
)

Run = Callable[..., Result]
BUSINESS = next(p for p in EXAMPLE_JSON if p.name == "electricity-business.json")


def test_validate_official_examples_exit_0(standards_dir: Path, run_cli: Run) -> None:
    result = run_cli("validate", *map(str, OFFICIAL))
    assert result.exit_code == 0, result.output
    assert result.stdout.count(": valid") == len(OFFICIAL)


def test_validate_broken_file_prints_rule_severity_location(run_cli: Run, tmp_path: Path
                                                            ) -> None:
    xml = render(complete(read(BUSINESS)), "ubl")
    broken = tmp_path / "broken.xml"
    broken.write_bytes(xml.replace(b"<cbc:DocumentCurrencyCode>EUR<",
                                   b"<cbc:DocumentCurrencyCode>EUX<"))
    result = run_cli("validate", "--json", str(broken))
    assert result.exit_code == 1
    findings = [json.loads(line) for line in result.stdout.splitlines()]
    by_rule = {f["rule"]: f for f in findings}
    assert by_rule["BR-CL-04"]["severity"] == "fatal"
    assert by_rule["BR-CL-04"]["location"] == "/Invoice[1]/cbc:DocumentCurrencyCode[1]"
    assert "4217" in by_rule["BR-CL-04"]["message"]
    assert all(f["file"] == str(broken) for f in findings)

    text = run_cli("validate", str(broken))
    assert text.exit_code == 1
    assert "[BR-CL-04]" in text.stderr and "fatal" in text.stderr
    assert "1 fatal" in text.stdout or "fatal" in text.stdout


def test_validate_unsafe_file_is_one_line_not_a_traceback(run_cli: Run, tmp_path: Path) -> None:
    evil = tmp_path / "evil.xml"
    evil.write_bytes(b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
                     b'<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2">'
                     b"&e;</Invoice>")
    result = run_cli("validate", str(evil))
    assert result.exit_code == 1
    assert "DOCTYPE" in result.stderr and "Traceback" not in result.output


def test_convert_ubl_to_cii_and_back(standards_dir: Path, run_cli: Run, tmp_path: Path) -> None:
    source = next(p for p in OFFICIAL if p.name == "xrechnung-01.01a-INVOICE_ubl.xml")
    cii_file, ubl_file = tmp_path / "out.cii.xml", tmp_path / "back.ubl.xml"
    assert run_cli("convert", str(source), "--to", "cii", "-o", str(cii_file)).exit_code == 0
    assert CII.sniff(cii_file.read_bytes()[:4096], cii_file.name)
    assert fatal(CII.validate(cii_file.read_bytes())) == []
    assert run_cli("convert", str(cii_file), "--to", "ubl", "-o", str(ubl_file)).exit_code == 0
    assert fatal(UBL.validate(ubl_file.read_bytes())) == []
    assert business_terms(complete(read(ubl_file))) == business_terms(complete(read(source)))
    assert not list(tmp_path.glob(".*tmp*")), "atomic writes leave no temporary files"


def test_convert_json_to_ubl_and_xml_to_json(run_cli: Run, tmp_path: Path) -> None:
    ubl_file = tmp_path / "business.xml"
    assert run_cli("convert", str(BUSINESS), "--to", "ubl", "-o", str(ubl_file)).exit_code == 0
    json_file = tmp_path / "back.json"
    assert run_cli("convert", str(ubl_file), "--to", "json", "-o", str(json_file)).exit_code == 0
    assert business_terms(read(json_file)) == business_terms(complete(read(BUSINESS)))


def test_render_both_syntaxes(run_cli: Run, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    result = run_cli("render", str(BUSINESS), "-f", "ubl", "-f", "cii", "-o", str(out))
    assert result.exit_code == 0, result.output
    ubl, cii = out / "E2611-00125.ubl.xml", out / "E2611-00125.cii.xml"
    assert UBL.sniff(ubl.read_bytes()[:4096], ubl.name)
    assert CII.sniff(cii.read_bytes()[:4096], cii.name)


def test_push_an_xml_invoice_renders_validated_ubl_and_cii(gw: Gateway, tmp_path: Path) -> None:
    add_customer(gw, id="200987654", name="Ziemeļu Ceptuve SIA", match=["LV40103987654"],
                 formats=["ubl", "cii"])
    source = tmp_path / "in.xml"
    source.write_bytes(render(complete(read(BUSINESS)), "cii"))
    [invoice] = list(gw.read_file(source))
    assert not isinstance(invoice, Exception)
    result = gw.push(invoice, source=str(source))
    assert result.status == "accepted", result.error
    docs = {d.format: gw.archive.get(d.sha256) for d in gw.store.documents(result.invoice_id)}
    assert set(docs) == {"ubl", "cii"}
    assert fatal(UBL.validate(docs["ubl"])) == [] and fatal(CII.validate(docs["cii"])) == []
    Dispatcher(gw).run()
    delivered = sorted(p.name for p in (gw.config.data_dir / "deliveries" / "200987654")
                       .glob("*.xml"))
    assert delivered == ["E2611-00125.cii.xml", "E2611-00125.ubl.xml"]


def test_push_refuses_an_invoice_whose_ubl_breaks_peppol(gw: Gateway,
                                                         invoice_data: dict[str, Any]) -> None:
    # A Peppol UBL needs the buyer's endpoint; the household example has none, so when it
    # claims Peppol the rendered document is invalid and must never be delivered.
    invoice_data["specification_id"] = ("urn:cen.eu:en16931:2017#compliant#"
                                        "urn:fdc:peppol.eu:2017:poacc:billing:3.0")
    add_customer(gw, formats=["ubl"])
    from gateway import load_invoice

    result = gw.push(load_invoice(invoice_data), source="household.json")
    assert result.status == "rejected"
    assert "PEPPOL-EN16931-R010" in str(result.error)
    assert gw.store.deliveries() == []


def test_every_gateway_example_pushes_with_ubl_and_cii(gw: Gateway) -> None:
    add_customer(gw, formats=["ubl", "cii"])
    for path in EXAMPLE_JSON:
        [invoice] = list(gw.read_file(path))
        result = gw.push(invoice, source=str(path), customer_id="100234567")
        assert result.status == "accepted", result.error
        assert {d.format for d in gw.store.documents(result.invoice_id)} == {"ubl", "cii"}


def test_render_options_from_gateway_toml(gateway_factory: Any) -> None:
    gw = gateway_factory(config="[plugins.ubl]\npretty = false\nwarm_up = true\n")
    invoice = complete(read(BUSINESS))
    compact = gw.render(invoice, "ubl").content
    pretty = gw.render(invoice, "cii").content
    assert compact.count(b"\n") <= 1 < pretty.count(b"\n")
    assert fatal(UBL.validate(compact)) == []
    assert gw.render(invoice, "ubl").filename == "E2611-00125.ubl.xml"
