"""The access point's tables in the gateway's PostgreSQL database, schema ``peppol``."""

from yoyo import step

SCHEMA = """
CREATE TABLE inbox (
    message_id TEXT PRIMARY KEY,
    received_at DOUBLE PRECISION NOT NULL,
    sender TEXT NOT NULL,
    receiver TEXT NOT NULL,
    document_type TEXT NOT NULL,
    process TEXT NOT NULL,
    c1_country TEXT,
    instance_id TEXT,
    sending_ap TEXT NOT NULL,
    payload_sha256 TEXT NOT NULL,
    payload_path TEXT NOT NULL,
    receipt BYTEA NOT NULL,
    customer_id TEXT,
    status TEXT NOT NULL DEFAULT 'stored',
    invoice_id TEXT,
    findings TEXT,
    error TEXT,
    processed_at DOUBLE PRECISION
);
CREATE INDEX inbox_status ON inbox (status, received_at);
CREATE TABLE transactions (
    direction TEXT NOT NULL CHECK (direction IN ('sent', 'received')),
    message_id TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
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
CREATE INDEX transactions_at ON transactions (at);
"""

steps = [step(statement) for statement in SCHEMA.split(";") if statement.strip()]
