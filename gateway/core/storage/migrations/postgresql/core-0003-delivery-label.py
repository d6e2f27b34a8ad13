"""``deliveries.channel`` (the customer's label) becomes ``label``; the history is not
touched. See the SQLite migration of the same name for why."""

from yoyo import step

steps = [step("ALTER TABLE deliveries RENAME COLUMN channel TO label",
              "ALTER TABLE deliveries RENAME COLUMN label TO channel")]
