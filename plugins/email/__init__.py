"""Built-in plugin ``email``: delivers invoices by e-mail over SMTP.

One message per invoice and recipient list, with a plain-text and an HTML body in the
customer's language (lv/en) and one attachment per preferred format. Settings:
recipients per customer (``to``, ``cc``), the server in ``[plugins.email]`` of
gateway.toml (see :class:`plugins.email.settings.EmailSettings`); the password comes
from the environment variable named by ``password_env``, never from a command line.
"""

from __future__ import annotations

from typing import Any

from gateway import hookimpl
from plugins.email.channel import EmailChannel
from plugins.email.settings import EmailSettings

__all__ = ["EmailChannel", "EmailSettings"]


@hookimpl
def gateway_register_channels(register: Any) -> None:
    register(EmailChannel())


@hookimpl
def gateway_register_commands(cli: Any) -> None:
    from plugins.email.cli import register

    register(cli)
