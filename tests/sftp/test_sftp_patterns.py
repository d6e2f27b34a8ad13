"""File-name patterns are data: only bare documented placeholders, a length cap, checked
when saved by every way in (CLI add, import, portal sign-up), never run as a format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateway import Bundle, Document, load_invoice
from plugins.sftp.naming import MAX_PATTERN, NAME_BYTES, check_pattern, remote_name

EXAMPLE = json.loads((Path(__file__).resolve().parents[2] / "examples"
                      / "electricity-household.json").read_text())


@pytest.mark.parametrize("pattern, said", [
    ("{number:>200000000}", "format spec"),
    ("{number!r}.{ext}", "conversion"),
    ("{number!s:>9}", "format spec"),
    ("{number[0]}.{ext}", "unknown placeholder"),
    ("{number.__class__}", "unknown placeholder"),
    ("{name}" + "x" * MAX_PATTERN, "at most 200"),
    ("{number", "expected '}'"),
])
def test_a_pattern_that_would_run_as_code_or_be_huge_is_refused(pattern: str, said: str) -> None:
    with pytest.raises(ValueError) as caught:
        check_pattern(pattern)
    message = str(caught.value)
    assert said in message
    assert len(message) < 600  # a refused 200 MB pattern is not quoted back in full


def test_a_stored_pattern_from_before_is_filled_without_running_its_spec() -> None:
    invoice = load_invoice(EXAMPLE)
    bundle = Bundle(invoice_id="abc", idempotency_key="k", customer_id="c", customer_name="C",
                    language="en",
                    invoice=invoice, documents=[])
    doc = Document("json", "application/json", "E2611-00123.json", b"{}")
    with pytest.raises(ValueError, match="format spec"):
        remote_name("{number:>200000000}", bundle, doc)
    assert remote_name("{seller_vat}_{number}.{ext}", bundle, doc) == \
        "LV40003000001_E2611-00123.json"
    long = remote_name("{number}" + "-{number}" * 20 + ".{ext}", bundle, doc)
    assert len(long.encode()) <= NAME_BYTES and long.endswith(".json")


def test_the_cli_refuses_such_a_pattern_when_saving(run_cli: Any, tmp_path: Path) -> None:
    r = run_cli("customer", "add", "c1", "--name", "C", "--format", "json",
                "--channel", "sftp-mailbox filename={number:>200000000}")
    assert r.exit_code == 1
    assert "format spec" in r.output and "Traceback" not in r.output
    toml = tmp_path / "customers.toml"
    toml.write_text('[[customer]]\nid = "c2"\nname = "C"\nformats = ["json"]\n'
                    '[[customer.channels]]\nchannel = "sftp-mailbox"\n'
                    'settings = {filename = "{number!r}"}\n', encoding="utf-8")
    r = run_cli("customer", "import", str(toml))
    assert r.exit_code == 1 and "conversion" in r.output
    assert "c1" not in run_cli("customer", "list").output


def test_a_key_comment_with_terminal_escapes_is_listed_escaped(
        gateway_factory: Any, run_cli: Any, client_keys: dict[str, Path],
        tmp_path: Path) -> None:
    from sftp_servers import DISPATCH_CONFIG, sftp_customer

    gw = gateway_factory(config=DISPATCH_CONFIG)
    sftp_customer(gw, [{"channel": "folder"}])
    kind, blob = Path(f"{client_keys['erp']}.pub").read_text().split()[:2]
    hostile = tmp_path / "hostile.pub"
    hostile.write_text(f"{kind} {blob} erp\x1b]0;owned\x07\n")
    added = run_cli("customer", "sftp-key", "add", "100234567", str(hostile))
    assert added.exit_code == 0, added.output  # a comment is free text: stored, never run
    listed = run_cli("customer", "sftp-key", "list", "100234567")
    assert "\x1b" not in listed.output and "\x07" not in listed.output
    assert "erp\\e]0;owned\\x07" in listed.output


@pytest.mark.parametrize("pattern", ["{name}", "{number}.{ext}"])
def test_two_numbers_that_clean_up_alike_both_reach_the_mailbox(
        gateway_factory: Any, client_keys: dict[str, Path], invoice_data: dict[str, Any],
        mailbox_server: Any, pattern: str) -> None:
    from sftp_servers import DISPATCH_CONFIG, deliver, invoice, pub, push, sftp_customer

    gw = gateway_factory(config=DISPATCH_CONFIG)
    sftp_customer(gw, [{"channel": "sftp-mailbox", "settings": {
        "authorized_keys": [pub(client_keys["erp"])], "filename": pattern}}])
    push(gw, invoice(invoice_data, "2026/9"))
    push(gw, invoice(invoice_data, "2026_9"))
    summary = deliver(gw)
    assert summary.delivered == 2 and summary.failed == 0
    sftp = mailbox_server(gw).client("100234567", client_keys["erp"])
    names = sorted(sftp.listdir("/outbox"))
    assert len(names) == 2 and "2026_9.json" in names, names
    numbers = set()
    for name in names:
        with sftp.open(f"/outbox/{name}") as fh:
            numbers.add(json.loads(fh.read())["number"])
    assert numbers == {"2026/9", "2026_9"}
