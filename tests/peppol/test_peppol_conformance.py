"""The Peppol channel passes the conformance suite of gateway.testing: gateway A sends
over AS4 to gateway B's `gateway serve peppol` on 127.0.0.1 (SML in dnsmasq, SMP over
HTTP), as in test_peppol_e2e."""

from __future__ import annotations

from typing import Any

from gateway.testing import check_channel
from plugins.peppol.store import PeppolStore


def test_peppol_channel_conforms(two_gateways: dict[str, Any]) -> None:
    b_dir = two_gateways["b_dir"]

    def inbox() -> list[str]:
        store = PeppolStore(b_dir / "peppol.db")
        try:
            return sorted(record.message_id for record in store.inbox())
        finally:
            store.close()

    # the business sample's buyer is the participant B serves
    report = check_channel("peppol", {}, gateway=two_gateways["a"], formats=["ubl"],
                           sample="business", observe=inbox)
    assert "repeat after success changes nothing" in report.passed
    assert "lost lease sends nothing" in report.passed
    assert len(inbox()) == 2  # the first delivery and the one after the lost lease
