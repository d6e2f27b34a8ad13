"""The portal channel passes the conformance suite of gateway.testing."""

from __future__ import annotations

import sqlite3
from typing import Any

from gateway.testing import check_channel


def test_portal_channel_conforms(gateway_factory: Any) -> None:
    gw = gateway_factory()

    def publications() -> list[tuple[Any, ...]]:
        path = gw.config.data_dir / "portal.db"
        if not path.exists():
            return []
        with sqlite3.connect(path) as db:
            return db.execute("SELECT * FROM publications ORDER BY invoice_id").fetchall()

    report = check_channel("portal", {}, gateway=gw, observe=publications)
    assert report.skipped == {
        "retryable failure classified": "no retryable settings given",
        "permanent failure classified": "no permanent settings given"}
    assert len(publications()) == 2
