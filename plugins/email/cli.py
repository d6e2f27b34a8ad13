"""``gateway email check``: try the SMTP settings before the first invoice depends on them."""

from __future__ import annotations

import datetime as dt
from email.utils import formatdate, make_msgid
from typing import Any

import click

from gateway import GatewayError
from gateway.cli.output import echo
from plugins.email import mime
from plugins.email.settings import EmailSettings
from plugins.email.transport import ServerKey, connect


@click.group("email")
def email_group() -> None:
    """E-mail channel tools."""


def _settings(gw: Any, customer_id: str | None, send_to: str | None) -> EmailSettings:
    channel = gw.plugins.channels.get("email")
    own: dict[str, Any] = {}
    if customer_id is not None:
        customer = gw.store.get_customer(customer_id)
        if customer is None:
            raise GatewayError(f"unknown customer {customer_id!r}")
        pref = next((c for c in customer.channels if c.channel == "email"), None)
        if pref is None:
            raise GatewayError(f"customer {customer_id} has no email channel")
        own = dict(pref.settings)
    # ``to`` is required of a customer; a check without --send-to sends nothing at all
    own["to"] = [send_to] if send_to else own.get("to") or ["check@example.invalid"]
    own.pop("cc", None)
    settings: EmailSettings = gw.channel_settings(channel, own, context="gateway email check")
    return settings


@email_group.command("check")
@click.option("--customer", "customer_id", help="Use this customer's e-mail settings")
@click.option("--send-to", metavar="ADDRESS", help="Also send a short test message there")
@click.pass_obj
def check(app: Any, customer_id: str | None, send_to: str | None) -> None:
    """Connect to the SMTP server of [plugins.email] (TLS, login) and say what happened.

    Sends nothing unless --send-to is given. The password is read from the environment
    variable named by password_env, as the dispatcher does.
    """
    settings = _settings(app.gateway, customer_id, send_to)
    server = ServerKey.of(settings)
    conn = connect(settings)
    try:
        sock = conn.smtp.sock
        tls = sock.version() if hasattr(sock, "version") else None  # type: ignore[union-attr]
        echo(f"{server}: connected, {f'{tls} ({settings.security})' if tls else 'no TLS'}"
                   + (f", logged in as {settings.username!r}" if settings.username else ""))
        if conn.smtp.has_extn("size"):
            echo(f"largest message the server takes: "
                       f"{int(conn.smtp.esmtp_features['size']):,} bytes")
        if send_to:
            sender = settings.sender
            text = ("A test message from the invoice gateway: the SMTP settings work.\n"
                    "Testa ziņojums no rēķinu vārtejas: SMTP iestatījumi darbojas.\n")
            headers = [
                f"From: {mime.mailbox(sender.display_name, sender.addr_spec)}",
                mime.address_list("To", [send_to]),
                mime.header_text("Subject", "Rēķinu vārteja: testa ziņojums / test message"),
                f"Date: {formatdate(dt.datetime.now(dt.UTC).timestamp(), localtime=True)}",
                f"Message-ID: {make_msgid(domain=sender.domain)}",
                "Auto-Submitted: auto-generated",
            ]
            data = mime.write(headers, text, f"<p>{text.replace(chr(10), '<br>')}</p>", [],
                              boundary_seed="check")
            outcome = conn.transact(sender.addr_spec, [send_to], data, not send_to.isascii())
            reply = (outcome.accepted or outcome.temporary or outcome.permanent)[send_to]
            if not outcome.accepted:
                raise GatewayError(f"{server} did not take the test message for {send_to}: "
                                   f"{outcome.sender_refused or reply}")
            echo(f"test message to {send_to}: {reply}")
    finally:
        conn.close()


def register(cli: click.Group) -> None:
    cli.add_command(email_group)
