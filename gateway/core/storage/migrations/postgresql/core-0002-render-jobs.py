"""The render queue of ``gateway push --queue`` (gateway/core/storage/render_queue.py)."""

from yoyo import step

steps = [
    step("""
CREATE TABLE render_jobs (
    invoice_id TEXT PRIMARY KEY REFERENCES invoices (id),
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at DOUBLE PRECISION NOT NULL,
    lease_owner TEXT,
    lease_expires DOUBLE PRECISION,
    last_error TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
)"""),
    step("CREATE INDEX render_jobs_due ON render_jobs (status, next_attempt_at)"),
]
