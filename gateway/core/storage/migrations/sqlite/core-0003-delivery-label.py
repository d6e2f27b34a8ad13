"""A delivery's ``channel`` column held the customer's label for the channel ("mailbox")
next to ``channel_type`` ("email"): it is now ``label``, so that "channel" means the
channel type everywhere (docs/plugins.md, "Words").

The history is not touched: its events are hash-chained evidence and keep the words
they were written with (``gateway.core.storage.channel_names`` reads both).
"""

from yoyo import step

steps = [step("ALTER TABLE deliveries RENAME COLUMN channel TO label",
              "ALTER TABLE deliveries RENAME COLUMN label TO channel")]
