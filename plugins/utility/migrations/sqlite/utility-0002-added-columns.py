"""The columns later releases added to utility.db when they opened it. A file one of them
already opened has some or all of them: only the missing ones are added. Old rows get
NULL, which each reader takes as the old behaviour."""

from typing import Any

from yoyo import step

COLUMNS = (
    # the Latvian day the reading arrived; the reading window is judged by it
    ("readings", "received_on", "TEXT"),
    # on-time | outside | after-invoice | correction | contract (NULL: before arrival
    # times were judged, counted as on time for its period)
    ("readings", "timing", "TEXT"),
    ("readings", "correction", "TEXT"),  # an operator's recorded reason
    ("contracts", "payment_term_days", "INTEGER"),
    ("reconnections", "disconnection_id", "INTEGER REFERENCES disconnections(id)"),
    ("reconnections", "fee", "INTEGER"),  # NULL (old rows): billed as before
    ("reconnections", "reason", "TEXT"),  # why the fee applies or not, as shown
)


def add_missing_columns(conn: Any) -> None:
    cursor = conn.cursor()
    for table, column, decl in COLUMNS:
        have = {row[1] for row in cursor.execute(f"PRAGMA table_info({table})").fetchall()}
        if column not in have:
            cursor.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")


steps = [step(add_missing_columns)]
