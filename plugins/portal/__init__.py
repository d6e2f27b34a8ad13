"""Built-in plugin 'portal': the customer portal, the HTTP API and the ``portal`` channel.

The channel publishes an invoice to the portal (visible there, with a notice); it is
the fallback when e-mail or SFTP fail. ``gateway serve portal`` runs the web app, and
``gateway portal ...`` manages accounts, invitations and API tokens. Heavy imports
(FastAPI, uvicorn, weasyprint) happen only when the portal is served.
"""

from __future__ import annotations

from typing import Any

import click

from gateway import hookimpl
from plugins.portal.channel import PortalChannel


def create_app(*args: Any, **kwargs: Any) -> Any:
    from plugins.portal.app import create_app as make

    return make(*args, **kwargs)


@hookimpl
def gateway_register_channels(register: Any) -> None:
    register(PortalChannel())


@hookimpl
def gateway_register_databases(register: Any) -> None:
    from plugins.portal.db import DATABASE

    register(DATABASE)


@hookimpl
def gateway_register_commands(cli: click.Group) -> None:
    from plugins.portal.cli import register

    register(cli)


__all__ = ["PortalChannel", "create_app"]
