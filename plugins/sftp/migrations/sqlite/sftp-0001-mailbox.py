"""The SFTP mailbox index as the releases before versioned migrations made it in
sftp/mailbox.db; ``IF NOT EXISTS`` adopts such a file as it is."""

from yoyo import step

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    account TEXT NOT NULL,
    name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    invoice_id TEXT NOT NULL,
    format TEXT NOT NULL,
    delivery_key TEXT NOT NULL,
    published_at REAL NOT NULL,
    downloaded_at REAL,
    acked_at REAL,
    acked_how TEXT,
    PRIMARY KEY (account, name)
);
CREATE INDEX IF NOT EXISTS files_outbox ON files (account, acked_at);
"""

steps = [step(statement) for statement in SCHEMA.split(";") if statement.strip()]
