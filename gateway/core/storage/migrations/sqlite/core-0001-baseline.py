"""The schema of the releases before versioned migrations (0.1), on SQLite.

Written with ``IF NOT EXISTS`` and column checks so that it also adopts a data directory
made by those releases: its tables stay as they are and get what they lack.
"""

import sqlite3

from yoyo import step

SCHEMA = """
CREATE TABLE IF NOT EXISTS invoices (
    id TEXT PRIMARY KEY,
    seller_key TEXT NOT NULL,
    number TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    invoice_json TEXT NOT NULL,
    type_code TEXT NOT NULL,
    issue_date TEXT NOT NULL,
    due_date TEXT,
    currency TEXT NOT NULL,
    amount_due TEXT NOT NULL,
    buyer_name TEXT NOT NULL,
    contract_reference TEXT,
    source TEXT,
    created_at REAL NOT NULL,
    UNIQUE (seller_key, number)
);
CREATE INDEX IF NOT EXISTS invoices_customer ON invoices (customer_id, issue_date);
CREATE INDEX IF NOT EXISTS invoices_number ON invoices (number);
CREATE TABLE IF NOT EXISTS documents (
    invoice_id TEXT NOT NULL REFERENCES invoices (id),
    format TEXT NOT NULL,
    filename TEXT NOT NULL,
    media_type TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY (invoice_id, format)
);
CREATE INDEX IF NOT EXISTS documents_sha ON documents (sha256);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY,
    invoice_id TEXT NOT NULL REFERENCES invoices (id),
    customer_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    channel_type TEXT NOT NULL,
    settings_json TEXT NOT NULL,
    formats_json TEXT NOT NULL,
    fallback_json TEXT,
    idempotency_key TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    lease_owner TEXT,
    lease_expires REAL,
    last_error TEXT,
    receipt_id TEXT,
    receipt_json TEXT,
    state_json TEXT NOT NULL DEFAULT '{}',
    fallback_for INTEGER,
    reason TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    requeued_at REAL
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS deliveries_invoice ON deliveries (invoice_id);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY,
    delivery_id INTEGER NOT NULL REFERENCES deliveries (id),
    started_at REAL NOT NULL,
    finished_at REAL,
    outcome TEXT,
    error TEXT,
    receipt_id TEXT,
    worker TEXT
);
CREATE INDEX IF NOT EXISTS attempts_delivery ON attempts (delivery_id);
CREATE TABLE IF NOT EXISTS events (
    invoice_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    data_json TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (invoice_id, seq)
);
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the invoice history is append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the invoice history is append-only'); END;
CREATE TABLE IF NOT EXISTS channel_rate (
    channel_type TEXT PRIMARY KEY,
    tat REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS customers (
    id TEXT PRIMARY KEY,
    customer_json TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS customer_keys (
    key TEXT NOT NULL,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    PRIMARY KEY (key, customer_id)
);
CREATE TABLE IF NOT EXISTS customer_changes (
    id INTEGER PRIMARY KEY,
    customer_id TEXT NOT NULL,
    at REAL NOT NULL,
    actor TEXT NOT NULL,
    before_json TEXT,
    after_json TEXT NOT NULL
);
"""


def _statements(script: str) -> list[str]:
    """Split the script into statements; a trigger body holds ``;`` of its own."""
    out, buffer = [], ""
    for part in script.split(";"):
        buffer += part + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \n;"):
                out.append(buffer.strip())
            buffer = ""
    return out


def apply(conn: sqlite3.Connection) -> None:
    cur = conn.cursor()
    for statement in _statements(SCHEMA):
        cur.execute(statement)
    # Added after the first release; CREATE TABLE IF NOT EXISTS skips them.
    columns = {r[1] for r in cur.execute("PRAGMA table_info(deliveries)")}
    if "requeued_at" not in columns:
        cur.execute("ALTER TABLE deliveries ADD COLUMN requeued_at REAL")
    has_keys = cur.execute("SELECT 1 FROM customer_keys LIMIT 1").fetchone()
    if not has_keys and cur.execute("SELECT 1 FROM customers LIMIT 1").fetchone():
        cur.execute("INSERT OR IGNORE INTO customer_keys SELECT id, id FROM customers")
        cur.execute("INSERT OR IGNORE INTO customer_keys SELECT j.value, c.id FROM customers c, "
                    "json_each(c.customer_json, '$.match') j")


steps = [step(apply)]
