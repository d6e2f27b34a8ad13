"""The access point's records on the configured store: peppol.db on the embedded
default, schema ``peppol`` on PostgreSQL (the gateway's shared database helper)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plugins.peppol.store import InboxRecord, PeppolStore

pytestmark = pytest.mark.both_stores


def record(message_id: str, receipt: bytes = b"<receipt/>\x00\xff") -> InboxRecord:
    return InboxRecord(
        message_id=message_id, received_at=1_800_000_000.0, sender="0088:1",
        receiver="0088:2", document_type="doc", process="proc", c1_country="LV",
        instance_id=None, sending_ap="AP-A", payload_sha256="ab" * 32,
        payload_path="inbox/x.xml", receipt=receipt, customer_id=None, status="stored",
        invoice_id=None, findings=None, error=None, processed_at=None)


def test_inbox_duplicates_processing_and_transactions(tmp_path: Path,
                                                       store_url: str | None) -> None:
    store = PeppolStore(tmp_path / "peppol.db")
    try:
        assert store.db.dialect == ("sqlite" if store_url is None else "postgresql")
        assert (tmp_path / "peppol.db").exists() == (store_url is None)
        first = store.store_received(record("m1"))
        # a duplicate MessageId is answered with the original record and receipt
        again = store.store_received(record("m1", receipt=b"<other/>"))
        assert again.receipt == b"<receipt/>\x00\xff" and again == first
        assert store.received("m1") == first and store.received("m2") is None
        store.processed("m1", "delivered", invoice_id="INV-1",
                        findings=[{"rule": "BR-01", "text": "ä"}], error=None)
        [done] = store.inbox(statuses=("delivered",))
        assert done.invoice_id == "INV-1" and done.processed_at is not None
        assert done.finding_list == [{"rule": "BR-01", "text": "ä"}]
        assert store.inbox(statuses=("stored",)) == []
        store.set_receiver_country("m1", "EE")
        store.record_sent(message_id="s1", sender="0088:2", receiver="0088:3",
                          document_type="doc", process="proc", c1_country="LV",
                          c4_country=None, receiving_ap="AP-C", receipt_sha256="cd" * 32)
        store.record_sent(message_id="s1", sender="0088:2", receiver="0088:3",
                          document_type="doc", process="proc", c1_country="LV",
                          c4_country=None, receiving_ap="AP-C", receipt_sha256="cd" * 32)
        assert store.has_sent("s1") and not store.has_sent("m1")
        rows = store.transactions(0, 1e12)
        assert sorted((r["direction"], r["message_id"]) for r in rows) == [
            ("received", "m1"), ("sent", "s1")]
        assert next(r for r in rows if r["direction"] == "received")["c4_country"] == "EE"
        json.dumps(rows)  # plain values, ready for the reports
    finally:
        store.close()
    reopened = PeppolStore(tmp_path / "peppol.db")  # nothing to migrate twice
    try:
        assert reopened.received("m1") is not None
    finally:
        reopened.close()


@pytest.mark.sqlite_only
def test_peppol_db_of_an_earlier_release_is_adopted(tmp_path: Path) -> None:
    """A peppol.db made before migrations (its tables, no yoyo records) keeps its rows."""
    import ast
    import sqlite3

    from plugins.peppol.store import MIGRATIONS

    # the tables as the earlier release made them (the baseline migration's SCHEMA text)
    tree = ast.parse((MIGRATIONS / "sqlite" / "peppol-0001-baseline.py").read_text())
    old = next(ast.literal_eval(node.value) for node in tree.body
               if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "SCHEMA")
    db = sqlite3.connect(tmp_path / "peppol.db")
    db.executescript(old)
    fields = record("old").__dict__
    db.execute(f"INSERT INTO inbox ({', '.join(fields)}) VALUES "
               f"({', '.join('?' * len(fields))})", tuple(fields.values()))
    db.commit()
    db.close()
    store = PeppolStore(tmp_path / "peppol.db")
    try:
        assert store.received("old") == record("old")
        ids = {r["migration_id"] for r in store.db.query("SELECT migration_id "
                                                         "FROM _yoyo_migration")}
        assert ids == {"peppol-0001-baseline"}
    finally:
        store.close()
