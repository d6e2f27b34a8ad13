"""Commands: ``gateway serve sftp`` and ``gateway customer sftp-key add|list|remove``.

Keys live in the customer's ``sftp-mailbox`` channel settings (``authorized_keys``), not
in a separate file: they are public, they are validated like every other setting when
the customer is saved, each change is in the customer's change history (``gateway
customer show``), and the server reads them per login, so a removed key stops working
at once without a restart.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Any

import click

from gateway import GatewayError
from gateway.cli.output import echo

CHANNEL = "sftp-mailbox"


def _actor(what: str) -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli:{user} {what}"


@click.command("sftp")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 for every interface)")
@click.option("--port", default=2222, show_default=True, type=click.IntRange(0, 65535))
@click.option("--host-key", type=click.Path(dir_okay=False, path_type=Path),
              help="Server host key [default DATA_DIR/sftp/host_key, created on first start]")
@click.option("--max-connections", default=64, show_default=True, type=click.IntRange(1),
              help="Connections served at once; more are refused (and logged)")
@click.option("--login-timeout", default=10.0, show_default=True, type=click.FloatRange(1),
              help="Seconds a client may take to log in")
@click.option("--max-unauthenticated", default=16, show_default=True, type=click.IntRange(1),
              help="Connections waiting to log in at once, from all addresses")
@click.option("--max-unauthenticated-per-source", default=4, show_default=True,
              type=click.IntRange(1), help="Connections waiting to log in from one address")
@click.pass_obj
def serve_sftp(app: Any, host: str, port: int, host_key: Path | None, max_connections: int,
               login_timeout: float, max_unauthenticated: int,
               max_unauthenticated_per_source: int) -> None:
    """Serve the customers' SFTP mailboxes (/outbox, /archive) for their ERPs to pull."""
    from plugins.sftp.server import MailboxServer, load_or_create_host_key

    gw = app.gateway
    key = load_or_create_host_key(host_key or gw.config.data_dir / "sftp" / "host_key")
    server = MailboxServer(gw, host=host, port=port, host_key=key,
                           max_connections=max_connections, login_timeout=login_timeout,
                           max_unauthenticated=max_unauthenticated,
                           max_unauthenticated_per_source=max_unauthenticated_per_source)
    echo(f"SFTP mailboxes on {server.host}:{server.port}, host key {key.get_name()} "
               f"{server.fingerprint}", err=True)
    echo(f"{key.get_name()} {key.get_base64()}", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()


@click.group("sftp-key")
def sftp_key() -> None:
    """Public keys that log in to a customer's SFTP mailbox (its login is the customer id)."""


def _customer(gw: Any, customer_id: str) -> Any:
    customer = gw.store.get_customer(customer_id)
    if customer is None:
        raise GatewayError(f"unknown customer {customer_id!r}")
    return customer


def _read_key(source: str) -> str:
    from plugins.sftp.keys import parse_public_key

    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GatewayError(f"{source}: cannot read the key file: {exc}") from None
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if len(lines) != 1:
        raise GatewayError(f"{source}: expected one public key line (an id_*.pub file), "
                           f"found {len(lines)} lines")
    if "PRIVATE KEY" in text:
        raise GatewayError(f"{source}: this is a private key; give the .pub file")
    try:
        return parse_public_key(lines[0]).line
    except ValueError as exc:
        raise GatewayError(f"{source}: {exc}") from None


def _save(gw: Any, data: dict[str, Any], what: str) -> None:
    from pydantic import ValidationError

    from gateway.core import Customer

    try:
        customer = Customer.model_validate(data)
    except ValidationError as exc:
        raise GatewayError(f"customer {data['id']}: {exc.errors()[0]['msg']}") from None
    gw.check_customer(customer)
    gw.store.put_customer(customer, actor=_actor(what))


@sftp_key.command("add")
@click.argument("customer_id")
@click.argument("key_file", metavar="PUBKEY_FILE")
@click.pass_obj
def key_add(app: Any, customer_id: str, key_file: str) -> None:
    """Allow the key in PUBKEY_FILE ('-' for stdin) to log in as CUSTOMER_ID.

    Adds an sftp-mailbox channel to the customer when it has none, so that its
    invoices are published to the mailbox from the next one on.
    """
    from plugins.sftp.keys import parse_public_key

    gw = app.gateway
    line = _read_key(key_file)
    new = parse_public_key(line)
    data = _customer(gw, customer_id).model_dump()
    prefs = [p for p in data["channels"] if p["channel"] == CHANNEL]
    added_channel = not prefs
    if added_channel:
        data["channels"].append({"channel": CHANNEL, "settings": {}})
        prefs = [data["channels"][-1]]
    keys = prefs[0]["settings"].setdefault("authorized_keys", [])
    if any(parse_public_key(k).blob == new.blob for p in prefs
           for k in p["settings"].get("authorized_keys", [])):
        echo(f"key {new.fingerprint} can already log in as {customer_id}")
        return
    keys.append(line)
    _save(gw, data, f"sftp-key add {new.fingerprint}")
    if added_channel:
        echo(f"customer {customer_id} now also receives invoices in its SFTP mailbox")
    echo(f"key {new.type} {new.fingerprint} may now log in as {customer_id}")


@sftp_key.command("list")
@click.argument("customer_id")
@click.pass_obj
def key_list(app: Any, customer_id: str) -> None:
    """List the keys that may log in as CUSTOMER_ID."""
    from plugins.sftp.keys import parse_public_key

    gw = app.gateway
    found = 0
    for pref in _customer(gw, customer_id).channels:
        if pref.channel == CHANNEL:
            for line in pref.settings.get("authorized_keys", []):
                key = parse_public_key(line)
                echo(f"{key.type} {key.fingerprint} {key.comment}".rstrip())
                found += 1
    if not found:
        echo(f"no SFTP keys for {customer_id}", err=True)


@sftp_key.command("remove")
@click.argument("customer_id")
@click.argument("fingerprint")
@click.pass_obj
def key_remove(app: Any, customer_id: str, fingerprint: str) -> None:
    """Stop the key with FINGERPRINT (SHA256:…, as 'list' shows) from logging in."""
    from plugins.sftp.keys import parse_public_key

    gw = app.gateway
    data = _customer(gw, customer_id).model_dump()
    removed = 0
    for pref in data["channels"]:
        if pref["channel"] == CHANNEL:
            keys = pref["settings"].get("authorized_keys", [])
            kept = [k for k in keys if parse_public_key(k).fingerprint != fingerprint]
            removed += len(keys) - len(kept)
            pref["settings"]["authorized_keys"] = kept
    if not removed:
        raise GatewayError(f"customer {customer_id} has no SFTP key {fingerprint}; "
                           f"see 'gateway customer sftp-key list {customer_id}'")
    _save(gw, data, f"sftp-key remove {fingerprint}")
    echo(f"key {fingerprint} can no longer log in as {customer_id}")


def register(cli: click.Group) -> None:
    serve = cli.commands.get("serve")
    if isinstance(serve, click.Group) and "sftp" not in serve.commands:
        serve.add_command(serve_sftp)
    customer = cli.commands.get("customer")
    if isinstance(customer, click.Group) and "sftp-key" not in customer.commands:
        customer.add_command(sftp_key)
