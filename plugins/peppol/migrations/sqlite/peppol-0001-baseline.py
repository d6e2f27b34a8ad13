"""The access point's tables as the releases before versioned migrations made them in
peppol.db; ``IF NOT EXISTS`` adopts such a file as it is."""

from yoyo import step

SCHEMA = """
CREATE TABLE IF NOT EXISTS inbox (
    message_id TEXT PRIMARY KEY,
    received_at REAL NOT NULL,
    sender TEXT NOT NULL,
    receiver TEXT NOT NULL,
    document_type TEXT NOT NULL,
    process TEXT NOT NULL,
    c1_country TEXT,
    instance_id TEXT,
    sending_ap TEXT NOT NULL,
    payload_sha256 TEXT NOT NULL,
    payload_path TEXT NOT NULL,
    receipt BLOB NOT NULL,
    customer_id TEXT,
    status TEXT NOT NULL DEFAULT 'stored',
    invoice_id TEXT,
    findings TEXT,
    error TEXT,
    processed_at REAL
);
CREATE INDEX IF NOT EXISTS inbox_status ON inbox (status, received_at);
CREATE TABLE IF NOT EXISTS transactions (
    direction TEXT NOT NULL CHECK (direction IN ('sent', 'received')),
    message_id TEXT NOT NULL,
    at REAL NOT NULL,
    sender TEXT NOT NULL,
    receiver TEXT NOT NULL,
    document_type TEXT NOT NULL,
    process TEXT NOT NULL,
    c1_country TEXT,
    c4_country TEXT,
    other_ap TEXT NOT NULL,
    receipt_sha256 TEXT,
    PRIMARY KEY (direction, message_id)
);
CREATE INDEX IF NOT EXISTS transactions_at ON transactions (at);
"""

steps = [step(statement) for statement in SCHEMA.split(";") if statement.strip()]
