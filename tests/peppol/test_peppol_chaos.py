"""Chaos: the sender is SIGKILLed after its POST and before it recorded the receipt.
The rerun sends the same MessageId; the receiver answers with its original receipt;
the receiving customer gets the invoice exactly once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.core.model import Invoice
from plugins.peppol.store import PeppolStore
from tests.peppol.conftest import business_invoice
from tests.peppol.test_peppol_e2e import erp_files, wait_for

RUNNER = Path(__file__).with_name("chaos_runner.py")
REPO = Path(__file__).resolve().parents[2]


def deliver(a_dir: Path, *, kill_at: str = "") -> int:
    env = {**os.environ, "PEPPOL_KILL_AT": kill_at, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, str(RUNNER), "--data-dir", str(a_dir), "deliver"],
                          env=env, capture_output=True, timeout=120)
    return proc.returncode


def test_sigkill_after_post_then_retry_delivers_exactly_once(
        two_gateways: dict[str, Any]) -> None:
    a, a_dir, b_dir = two_gateways["a"], two_gateways["a_dir"], two_gateways["b_dir"]
    result = a.push(Invoice.model_validate(business_invoice()), source="test")
    assert result.status == "accepted"
    assert deliver(a_dir, kill_at="after-post") == -9
    (killed,) = a.store.deliveries(invoice_id=result.invoice_id)
    assert killed.status == "delivering" and killed.receipt_id is None
    message_id = killed.state["message_id"]
    wait_for(lambda: erp_files(b_dir))  # B got it, receipted it and delivered it

    assert deliver(a_dir) == 0
    _delivered_once(two_gateways, result.invoice_id, message_id)
    log = (b_dir / "server.log").read_text()
    assert "duplicate answered with its original receipt" in log


@pytest.mark.parametrize("point", ["before-post", "after-verify"])
def test_sigkill_at_other_points_then_retry_delivers_exactly_once(
        two_gateways: dict[str, Any], point: str) -> None:
    a, a_dir = two_gateways["a"], two_gateways["a_dir"]
    result = a.push(Invoice.model_validate(business_invoice()), source="test")
    assert deliver(a_dir, kill_at=point) == -9
    (killed,) = a.store.deliveries(invoice_id=result.invoice_id)
    message_id = killed.state["message_id"]
    assert deliver(a_dir) == 0
    _delivered_once(two_gateways, result.invoice_id, message_id)


def _delivered_once(two: dict[str, Any], invoice_id: str, message_id: str) -> None:
    (done,) = two["a"].store.deliveries(invoice_id=invoice_id)
    assert done.status == "delivered" and done.receipt_id == f"peppol:{message_id}"
    assert [x.outcome for x in two["a"].store.attempts(done.id)][-1] == "delivered"
    wait_for(lambda: erp_files(two["b_dir"]))
    time.sleep(1)
    b_store = PeppolStore(two["b_dir"] / "peppol.db")
    try:
        (record,) = b_store.inbox()
    finally:
        b_store.close()
    assert record.message_id == message_id
    assert len(erp_files(two["b_dir"])) == 1
