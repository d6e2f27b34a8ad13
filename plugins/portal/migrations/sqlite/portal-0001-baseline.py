"""The portal's tables as the releases before versioned migrations made them in
portal.db; ``IF NOT EXISTS`` adopts such a file as it is."""

from yoyo import step

SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE COLLATE NOCASE,
    customer_id TEXT,
    role TEXT NOT NULL CHECK (role IN ('customer', 'operator')),
    password_hash TEXT NOT NULL,
    created_at REAL NOT NULL,
    created_by TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS invitations (
    token_hash TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    email TEXT,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    created_by TEXT NOT NULL,
    used_at REAL
);
CREATE TABLE IF NOT EXISTS api_tokens (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    seller_key TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    revoked_at REAL
);
CREATE TABLE IF NOT EXISTS login_failures (key TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS login_failures_key ON login_failures (key, at);
CREATE TABLE IF NOT EXISTS publications (
    invoice_id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    published_at REAL NOT NULL,
    receipt_id TEXT NOT NULL,
    reason TEXT,
    seen_at REAL
);
CREATE INDEX IF NOT EXISTS publications_customer ON publications (customer_id, seen_at);
CREATE TABLE IF NOT EXISTS views (
    invoice_id TEXT NOT NULL,
    account_id INTEGER NOT NULL,
    what TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (invoice_id, account_id, what)
);
"""

steps = [step(statement) for statement in SCHEMA.split(";") if statement.strip()]
