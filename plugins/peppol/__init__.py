"""Built-in plugin 'peppol': the Peppol network in both directions.

Channel ``peppol`` sends a customer's UBL (BIS Billing 3.0) to its participant: SML
(DNS U-NAPTR) → SMP (signed metadata) → AS4 (signed, encrypted, SBDH with C1 country)
→ signed receipt verified and kept. ``gateway serve peppol`` receives AS4 messages for
the customers this gateway serves and hands each invoice to the customer by its own
channels. ``gateway peppol lookup|inbox|process|report`` inspect the network and the
access point's records. AS4 itself is the ``as4`` package; see docs/peppol.md.
"""

from __future__ import annotations

from typing import Any

from gateway import hookimpl
from plugins.peppol.channel import PeppolChannel
from plugins.peppol.identifiers import ParticipantId
from plugins.peppol.settings import PeppolSettings

__all__ = ["ParticipantId", "PeppolChannel", "PeppolSettings"]


@hookimpl
def gateway_register_channels(register: Any) -> None:
    register(PeppolChannel())


@hookimpl
def gateway_register_databases(register: Any) -> None:
    from plugins.peppol.store import DATABASE

    register(DATABASE)  # the access point's messages and receipts


@hookimpl
def gateway_register_commands(cli: Any) -> None:
    from plugins.peppol import cli as commands

    commands.register(cli)
