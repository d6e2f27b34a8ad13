"""End to end on 127.0.0.1: gateway A sends an invoice over Peppol, gateway B receives
it and delivers it to its customer's folder; A keeps B's verified receipt."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

from lxml import etree

from gateway.core.dispatcher import Dispatcher
from gateway.core.model import Invoice
from plugins.peppol.store import PeppolStore
from tests.peppol.conftest import GATEWAY, business_invoice, make_pair


def wait_for(predicate: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := predicate():
            return result
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


def erp_files(b_dir: Path) -> list[Path]:
    """The files the ERP sees (not the folder channel's .tmp- files being written)."""
    directory = b_dir / "erp-inbox" / "ceptuve"
    if not directory.exists():
        return []
    return sorted(p for p in directory.iterdir() if not p.name.startswith("."))


def test_a_sends_b_receives_and_delivers(two_gateways: dict[str, Any]) -> None:
    a, a_dir, b_dir = two_gateways["a"], two_gateways["a_dir"], two_gateways["b_dir"]
    result = a.push(Invoice.model_validate(business_invoice()), source="test")
    assert result.status == "accepted", result.error
    summary = Dispatcher(a).run()
    assert summary.delivered == 1, summary
    (delivery,) = a.store.deliveries(invoice_id=result.invoice_id)
    assert delivery.status == "delivered" and delivery.receipt_id.startswith("peppol:")
    assert "PLV000002" in delivery.receipt["detail"]
    # The receipt B signed is kept, and it is the one B has on record for the message.
    digest = delivery.receipt["recipients"]["9939:LV40103987654"].removeprefix(
        "receipt sha256:")
    receipt = (a_dir / "peppol" / "receipts" / f"{digest}.xml").read_bytes()
    message_id = delivery.receipt_id.removeprefix("peppol:")
    files = wait_for(lambda: erp_files(b_dir))
    b_store = PeppolStore(b_dir / "peppol.db")
    try:
        (record,) = b_store.inbox()
        assert record.message_id == message_id and record.receipt == receipt
        assert record.status == "accepted", record.error
        assert record.sender == "9939:LV40003000001" and record.c1_country == "LV"
        assert record.sending_ap == "PLV000001"
        assert isinstance(record.finding_list, list)
    finally:
        b_store.close()
    # B's customer gets the UBL that A rendered: the same XML (the SBD envelope
    # re-serialises it, so the comparison is canonical XML).
    (sent_doc,) = [d for d in a.store.documents(result.invoice_id) if d.format == "ubl"]
    assert [f.name for f in files] == [sent_doc.filename]
    assert c14n(files[0].read_bytes()) == c14n(a.archive.get(sent_doc.sha256))
    # Later, the proof is checked again from what A keeps.
    proof = subprocess.run([GATEWAY, "--data-dir", str(a_dir), "peppol", "receipt",
                            message_id], capture_output=True, text=True, timeout=60)
    assert proof.returncode == 0, proof.stderr
    assert "acknowledges everything that was signed" in proof.stdout
    receipt_file = a_dir / "peppol" / "receipts" / f"{digest}.xml"
    receipt_file.write_bytes(receipt.replace(b"RefToMessageId", b"RefToMessageID", 1))
    broken = subprocess.run([GATEWAY, "--data-dir", str(a_dir), "peppol", "receipt",
                             message_id], capture_output=True, text=True, timeout=60)
    assert broken.returncode == 1 and "does not match its digest" in broken.stderr


def c14n(data: bytes) -> bytes:
    return etree.tostring(etree.fromstring(data), method="c14n", exclusive=True)


def test_stored_but_unprocessed_messages_are_processed_after_a_restart(
        network: Any) -> None:
    """B receipts and stores, then stops before its worker ran (here: --no-process);
    'gateway peppol process' later delivers every stored invoice, once."""
    pair = make_pair(network, "--no-process")
    a, b_dir = pair["a"], pair["b_dir"]
    try:
        assert a.push(Invoice.model_validate(business_invoice()), source="t").status == \
            "accepted"
        assert Dispatcher(a).run().delivered == 1
    finally:
        a.close()
    network.close()  # B is down now; its message is stored and receipted
    assert erp_files(b_dir) == []
    for _ in range(2):  # a second run finds nothing left to do
        run = subprocess.run([GATEWAY, "--data-dir", str(b_dir), "peppol", "process"],
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
    assert len(erp_files(b_dir)) == 1
    store = PeppolStore(b_dir / "peppol.db")
    try:
        assert [r.status for r in store.inbox()] == ["accepted"]
    finally:
        store.close()
