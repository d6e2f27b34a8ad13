"""Delivery right after a request (plugins.portal.inline) in the cases the served tests
do not reach: a job that could not run at all is not reported as attempted, so the push
answer says its deliveries are still pending instead of staying silent."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.core.config import load_config
from gateway.plugins import get_plugin_manager
from plugins.portal.inline import InlineDelivery


def test_a_job_whose_database_is_away_is_not_reported_as_attempted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GATEWAY_STORE_URL", raising=False)
    # nothing listens on port 1: every gateway the delivery threads open fails at once
    (tmp_path / "gateway.toml").write_text(
        '[store]\nurl = "postgresql://gateway@127.0.0.1:1/away"\n')
    inline = InlineDelivery(load_config(tmp_path), get_plugin_manager(load_entry_points=False),
                            workers=1)
    try:
        assert inline.deliver(invoice_ids=["inv-1"], wait=60) is False
        assert inline.deliver(delivery_ids=[1], wait=60) is False
    finally:
        inline.close()
