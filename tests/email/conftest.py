"""Fixtures of the e-mail tests: a real SMTP server on 127.0.0.1 (aiosmtpd) with
STARTTLS or implicit TLS and AUTH, and a gateway configured to send through it."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
from email_smtp import (
    PASSWORD,
    PASSWORD_ENV,
    USER,
    BinPlugin,
    CountingController,
    Handler,
    SmtpServer,
    TlsFiles,
    email_config,
    free_port,
    make_certificate,
)

from gateway.core.pipeline import Gateway


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A self-signed certificate for 127.0.0.1 and localhost, made fresh for the run."""
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def start_smtp(tls_files: TlsFiles) -> Iterator[Callable[..., SmtpServer]]:
    """Start an aiosmtpd server: security starttls (required), tls or none; AUTH required."""
    started: list[SmtpServer] = []

    def start(security: str = "starttls", *, auth: bool = True,
              smtputf8: bool = True, idle_timeout: float = 300) -> SmtpServer:
        server = SmtpServer(Handler(), free_port(), security)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(tls_files.cert, tls_files.key)

        def authenticator(smtp: SMTP, session: Any, envelope: Any, mechanism: str,
                          auth_data: Any) -> AuthResult:
            ok = isinstance(auth_data, LoginPassword) and auth_data.login == USER.encode() \
                and auth_data.password == server.password.encode()
            return AuthResult(success=ok, handled=False, auth_data=auth_data)

        kwargs: dict[str, Any] = {"hostname": "127.0.0.1", "port": server.port,
                                  "enable_SMTPUTF8": smtputf8, "timeout": idle_timeout}
        if auth:
            kwargs.update(authenticator=authenticator, auth_required=True)
        if security == "starttls":
            kwargs.update(tls_context=context, require_starttls=True)
        elif security == "tls":
            # aiosmtpd only counts STARTTLS as TLS for AUTH; this connection is TLS too
            kwargs.update(ssl_context=context, auth_require_tls=False)
        else:
            kwargs.update(auth_require_tls=False)
        server.controller = CountingController(server.handler, **kwargs)
        server.controller.start()
        started.append(server)
        return server

    yield start
    for server in started:
        assert server.controller is not None
        server.controller.stop()


@pytest.fixture
def smtp(start_smtp: Callable[..., SmtpServer]) -> SmtpServer:
    """The default server: STARTTLS required, AUTH required."""
    return start_smtp()


@pytest.fixture
def email_gateway(gateway_factory: Callable[..., Gateway], tls_files: TlsFiles,
                  monkeypatch: pytest.MonkeyPatch) -> Callable[..., Gateway]:
    """A gateway whose [plugins.email] points at a server; with the test format ``bin``."""
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    # Only what these tests use, so that another plugin's trouble cannot fail them.
    monkeypatch.setenv("GATEWAY_LOAD_PLUGINS", "json,folder,email")

    def make(server: SmtpServer, *, extra: str = "", dispatcher: str = "base_delay = 0",
             **kwargs: Any) -> Gateway:
        return gateway_factory(config=email_config(server, tls_files, extra=extra,
                                                   dispatcher=dispatcher),
                               extra_plugins=(("test-bin-format", BinPlugin()),), **kwargs)

    return make
