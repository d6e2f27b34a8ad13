"""``gateway serve portal`` and ``gateway portal ...`` (accounts, invitations, API tokens)."""

from __future__ import annotations

import os
from typing import Any

import click

from gateway.cli.output import echo


def _portal_db(app: Any) -> Any:
    from plugins.portal.db import PortalDB

    return PortalDB(app.gateway.config.data_dir / "portal.db")


@click.command("portal")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--proxy-headers", is_flag=True,
              help="Trust X-Forwarded-Proto/For from a TLS-terminating proxy (Secure cookies)")
@click.pass_obj
def serve_portal(app: Any, host: str, port: int, proxy_headers: bool) -> None:
    """Run the customer portal and HTTP API (one worker process)."""
    import uvicorn

    from plugins.portal.app import create_app

    gw = app.gateway
    web = create_app(gw.config, gw.plugins)
    echo(f"portal on http://{host}:{port}/  (API description: /api/v1/openapi.json)")
    uvicorn.run(web, host=host, port=port, proxy_headers=proxy_headers,
                forwarded_allow_ips="127.0.0.1" if proxy_headers else None,
                log_level="warning", access_log=False)


@click.group("portal")
def portal_group() -> None:
    """Portal accounts, invitations and API tokens."""


def _password(env: str | None) -> str:
    # Secrets never come from the command line (visible in ps and shell history).
    if env:
        value = os.environ.get(env)
        if not value:
            raise click.ClickException(f"environment variable {env} is not set")
        return value
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@portal_group.command("account")
@click.argument("email")
@click.option("--customer", "customer_id", help="Customer the account belongs to")
@click.option("--operator", is_flag=True, help="An operator account (sees every customer)")
@click.option("--password-env", help="Read the password from this environment variable")
@click.pass_obj
def add_account(app: Any, email: str, customer_id: str | None, operator: bool,
                password_env: str | None) -> None:
    """Create a portal account for a customer (or an operator)."""
    from plugins.portal.security import hash_password, password_problem

    if operator == bool(customer_id):
        raise click.UsageError("give either --customer ID or --operator")
    if customer_id and app.gateway.store.get_customer(customer_id) is None:
        raise click.ClickException(f"unknown customer {customer_id!r}; add it with "
                                   "'gateway customer add' first")
    password = _password(password_env)
    if password_problem(password):
        raise click.ClickException("the password must be at least 10 characters long")
    db = _portal_db(app)
    try:
        db.add_account(email=email, password_hash=hash_password(password),
                       role="operator" if operator else "customer", customer_id=customer_id,
                       created_by=f"cli:{os.environ.get('USER', '?')}")
    finally:
        db.close()
    echo(f"account {email} created")


@portal_group.command("invite")
@click.argument("customer_id")
@click.option("--email", help="Fix the account's e-mail address")
@click.option("--days", default=14.0, show_default=True)
@click.pass_obj
def invite(app: Any, customer_id: str, email: str | None, days: float) -> None:
    """Print an invitation link with which a customer creates their own account."""
    from plugins.portal.security import new_token, token_hash

    gw = app.gateway
    if gw.store.get_customer(customer_id) is None:
        raise click.ClickException(f"unknown customer {customer_id!r}")
    token = new_token()
    db = _portal_db(app)
    try:
        db.add_invitation(token_hash(token), customer_id, email, days * 86400,
                          created_by=f"cli:{os.environ.get('USER', '?')}")
    finally:
        db.close()
    base = (gw.config.gateway.portal_url or "http://127.0.0.1:8080").rstrip("/")
    echo(f"{base}/invite/{token}")


@portal_group.group("token")
def token_group() -> None:
    """API tokens for billing systems."""


@token_group.command("add")
@click.argument("name")
@click.option("--seller", required=True, help="Seller key (VAT id) the token may push for")
@click.pass_obj
def add_token(app: Any, name: str, seller: str) -> None:
    """Create a token; it is printed once and stored only as a hash."""
    from plugins.portal.security import new_token, token_hash

    token = new_token()
    db = _portal_db(app)
    try:
        db.add_token(name, seller, token_hash(token))
    finally:
        db.close()
    echo(token)


@token_group.command("list")
@click.pass_obj
def list_tokens(app: Any) -> None:
    db = _portal_db(app)
    try:
        for t in db.tokens():
            state = "revoked" if t.revoked_at else "active"
            echo(f"{t.name}\t{t.seller_key}\t{state}")
    finally:
        db.close()


@token_group.command("revoke")
@click.argument("name")
@click.pass_obj
def revoke_token(app: Any, name: str) -> None:
    db = _portal_db(app)
    try:
        if not db.revoke_token(name):
            raise click.ClickException(f"no active token named {name!r}")
    finally:
        db.close()
    echo(f"token {name} revoked")


def register(cli: click.Group) -> None:
    serve = cli.commands.get("serve")
    if isinstance(serve, click.Group) and "portal" not in serve.commands:
        serve.add_command(serve_portal)
    if "portal" not in cli.commands:
        cli.add_command(portal_group)
