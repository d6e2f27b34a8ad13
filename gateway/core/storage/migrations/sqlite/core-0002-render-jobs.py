"""The render queue of ``gateway push --queue`` (gateway/core/storage/render_queue.py)."""

from yoyo import step

steps = [
    step("""
CREATE TABLE IF NOT EXISTS render_jobs (
    invoice_id TEXT PRIMARY KEY REFERENCES invoices (id),
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    lease_owner TEXT,
    lease_expires REAL,
    last_error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
)"""),
    step("CREATE INDEX IF NOT EXISTS render_jobs_due ON render_jobs (status, next_attempt_at)"),
]
