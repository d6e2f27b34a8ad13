"""The SFTP mailbox index in the gateway's PostgreSQL database, schema ``sftp``."""

from yoyo import step

steps = [
    step("""
CREATE TABLE files (
    account TEXT NOT NULL,
    name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size BIGINT NOT NULL,
    invoice_id TEXT NOT NULL,
    format TEXT NOT NULL,
    delivery_key TEXT NOT NULL,
    published_at DOUBLE PRECISION NOT NULL,
    downloaded_at DOUBLE PRECISION,
    acked_at DOUBLE PRECISION,
    acked_how TEXT,
    PRIMARY KEY (account, name)
)"""),
    step("CREATE INDEX files_outbox ON files (account, acked_at)"),
]
