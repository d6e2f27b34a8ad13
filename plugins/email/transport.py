"""SMTP connections: open (TLS, login), one mail transaction, reuse within a batch.

Every failure to reach or log in to the server is *retryable*: the recipients are not
at fault, and once the operator fixes the server, password or certificate, the
outbox drains by itself. Only the server's 5xx answer to a recipient, the sender or
the message is permanent.
"""

from __future__ import annotations

import base64
import contextlib
import smtplib
import socket
import ssl
from dataclasses import dataclass, field

from gateway import DeliveryError, secret_from_env
from plugins.email.settings import EmailSettings


@dataclass(frozen=True)
class ServerKey:
    """Which settings make two deliveries able to share a connection."""

    host: str
    port: int
    security: str
    username: str | None
    password_env: str | None
    ca_file: str | None
    verify_tls: bool
    helo_name: str | None

    @classmethod
    def of(cls, s: EmailSettings) -> ServerKey:
        return cls(s.host, s.effective_port, s.security, s.username, s.password_env,
                   s.ca_file, s.verify_tls, s.helo_name)

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


class Disconnected(Exception):
    """The connection broke; ``before_data`` says no message bytes were sent yet."""

    def __init__(self, text: str, *, before_data: bool) -> None:
        super().__init__(text)
        self.before_data = before_data


@dataclass
class Outcome:
    """What the server said to each recipient of one transaction."""

    accepted: dict[str, str] = field(default_factory=dict)
    temporary: dict[str, str] = field(default_factory=dict)
    permanent: dict[str, str] = field(default_factory=dict)
    closing: bool = False  # the server said 421: this connection is done
    #: a 5xx to MAIL FROM other than "too big": about the gateway's sender or login,
    #: not about the customer's addresses, so no fallback — the operator must fix it
    sender_refused: str | None = None


def reply_text(code: int, message: bytes | str) -> str:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    return f"{code} {' '.join(text.split())}".strip()


def _classify(outcome: Outcome, recipients: list[str], code: int, text: str) -> None:
    bucket = outcome.permanent if 500 <= code < 600 else outcome.temporary
    for rcpt in recipients:
        bucket[rcpt] = text
    if code == 421:
        outcome.closing = True


class Connection:
    def __init__(self, smtp: smtplib.SMTP, key: ServerKey) -> None:
        self.smtp = smtp
        self.key = key
        self.sent = 0

    def close(self) -> None:
        try:
            self.smtp.quit()
        except (smtplib.SMTPException, OSError):
            self.smtp.close()

    def transact(self, sender: str, recipients: list[str], data: bytes,
                 smtputf8: bool) -> Outcome:
        """MAIL, RCPT per recipient, DATA: one message to ``recipients``.

        Raises :class:`Disconnected` when the connection breaks; every other answer
        ends up in the outcome, per recipient.
        """
        smtp = self.smtp
        outcome = Outcome()
        options: list[str] = []
        if smtputf8:
            if not smtp.has_extn("smtputf8"):
                _classify(outcome, recipients, 553, f"553 {self.key} does not support "
                          "SMTPUTF8, which a non-ASCII address needs")
                return outcome
            options.append("SMTPUTF8")
        if smtp.has_extn("size"):
            options.append(f"SIZE={len(data)}")
        stage = "MAIL FROM"
        try:
            code, resp = smtp.mail(sender, options)
            if code == 421:  # the server is closing (often an idle pooled connection)
                raise Disconnected(f"{self.key} is closing the connection: "
                                   f"{reply_text(code, resp)}", before_data=True)
            if code != 250:
                text = reply_text(code, resp)
                if 500 <= code < 600 and code != 552:
                    outcome.sender_refused = text
                    _classify(outcome, recipients, 451, text)
                else:
                    _classify(outcome, recipients, code, text)
                self._reset(outcome)
                return outcome
            stage = "RCPT TO"
            ok: list[str] = []
            for rcpt in recipients:
                code, resp = smtp.rcpt(rcpt)
                if code in (250, 251):
                    ok.append(rcpt)
                else:
                    _classify(outcome, [rcpt], code, reply_text(code, resp))
            if not ok:
                self._reset(outcome)
                return outcome
            stage = "DATA"
            try:
                code, resp = smtp.data(data)
            except smtplib.SMTPDataError as exc:  # DATA itself refused (no 354)
                code, resp = exc.smtp_code, exc.smtp_error
            if code == 250:
                self.sent += 1
                for rcpt in ok:
                    outcome.accepted[rcpt] = reply_text(code, resp)
            else:
                _classify(outcome, ok, code, reply_text(code, resp))
                self._reset(outcome)
            return outcome
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise Disconnected(f"{self.key} closed the connection during {stage}: "
                               f"{exc or type(exc).__name__}",
                               before_data=stage != "DATA") from None

    def _reset(self, outcome: Outcome) -> None:
        if outcome.closing:
            return
        try:
            self.smtp.rset()
        except (smtplib.SMTPException, OSError):
            outcome.closing = True


def password_for(settings: EmailSettings) -> str | None:
    if settings.password_env is None:
        return None
    return secret_from_env(settings.password_env,
                           purpose=f"SMTP password for user {settings.username!r}")


def tls_context(settings: EmailSettings) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=settings.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise DeliveryError(f"cannot use ca_file {settings.ca_file}: {exc}",
                            retryable=True) from None
    if not settings.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def connect(settings: EmailSettings) -> Connection:
    """Connect, greet, secure and log in; any failure is a retryable DeliveryError."""
    key = ServerKey.of(settings)
    password = password_for(settings)
    where = f"SMTP server {key}"
    smtp: smtplib.SMTP | None = None
    try:
        if settings.security == "tls":
            smtp = smtplib.SMTP_SSL(key.host, key.port, settings.helo_name,
                                    timeout=settings.connect_timeout,
                                    context=tls_context(settings))
        else:
            smtp = smtplib.SMTP(key.host, key.port, settings.helo_name,
                                timeout=settings.connect_timeout)
        smtp.ehlo()
        if settings.security == "starttls":
            if not smtp.has_extn("starttls"):
                raise DeliveryError(
                    f"{where} does not offer STARTTLS; the gateway does not send invoices "
                    "in plain text (security = \"none\" is only for a relay on this host)",
                    retryable=True)
            smtp.starttls(context=tls_context(settings))
            smtp.ehlo()
        if smtp.sock is not None:
            smtp.sock.settimeout(settings.timeout)
        if settings.username is not None and password is not None:
            login(smtp, settings.username, password)
    except DeliveryError:
        _close_quietly(smtp)
        raise
    except smtplib.SMTPAuthenticationError as exc:
        _close_quietly(smtp)
        raise DeliveryError(
            f"{where} refused the login of user {settings.username!r} "
            f"({reply_text(exc.smtp_code, exc.smtp_error)}); check the password in "
            f"environment variable {settings.password_env}", retryable=True) from None
    except smtplib.SMTPNotSupportedError:
        _close_quietly(smtp)
        raise DeliveryError(f"{where} offers no login (AUTH) on this connection, but a "
                            f"username is configured", retryable=True) from None
    except ssl.SSLCertVerificationError as exc:
        _close_quietly(smtp)
        raise DeliveryError(f"{where}: certificate not trusted ({exc.verify_message}); "
                            "set ca_file to the CA that signed it", retryable=True) from None
    except (ssl.SSLError, smtplib.SMTPException, OSError) as exc:
        _close_quietly(smtp)
        raise DeliveryError(f"cannot connect to {where}: {_describe(exc)}",
                            retryable=True) from None
    return Connection(smtp, key)


def login(smtp: smtplib.SMTP, username: str, password: str) -> None:
    """``smtp.login``, but also for non-ASCII credentials, which smtplib cannot encode:
    those go as UTF-8 through AUTH PLAIN (RFC 4616)."""
    if (username + password).isascii():
        smtp.login(username, password)
        return
    if not smtp.has_extn("auth"):
        raise smtplib.SMTPNotSupportedError("AUTH not offered")
    if "PLAIN" not in smtp.esmtp_features.get("auth", "").upper().split():
        raise smtplib.SMTPAuthenticationError(
            504, "a non-ASCII user name or password needs AUTH PLAIN, which is not offered")
    token = base64.b64encode(b"\0" + username.encode() + b"\0" + password.encode())
    code, resp = smtp.docmd("AUTH", "PLAIN " + token.decode("ascii"))
    if code not in (235, 503):
        raise smtplib.SMTPAuthenticationError(code, resp)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return reply_text(exc.smtp_code, exc.smtp_error)
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _close_quietly(smtp: smtplib.SMTP | None) -> None:
    if smtp is not None:
        with contextlib.suppress(OSError):
            smtp.close()


class Pool:
    """Open connections of one batch (``Channel.session``), one per server."""

    def __init__(self) -> None:
        self.connections: dict[ServerKey, Connection] = {}

    def take(self, settings: EmailSettings) -> tuple[Connection, bool]:
        """A connection to the settings' server, and whether it was used before."""
        key = ServerKey.of(settings)
        conn = self.connections.get(key)
        if conn is not None:
            return conn, True
        conn = connect(settings)
        self.connections[key] = conn
        return conn, False

    def discard(self, conn: Connection, *, polite: bool = True) -> None:
        if self.connections.get(conn.key) is conn:
            del self.connections[conn.key]
        if polite:
            conn.close()
        else:
            _close_quietly(conn.smtp)

    def close(self) -> None:
        for conn in list(self.connections.values()):
            self.discard(conn)
