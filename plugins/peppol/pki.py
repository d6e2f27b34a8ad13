"""The access point's certificate and key, and the trust anchors of the network.

Keys come from a file or an environment variable, never from the command line, and are
never logged: errors name the file or variable, not its content.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from gateway.errors import ConfigError
from plugins.peppol.settings import PeppolSettings

MAX_CHAIN = 4


class UntrustedCertificate(Exception):
    """A certificate does not chain to the configured CA, or is not valid now."""


def _read(path: str | None, env: str | None, what: str, data_dir: Path) -> bytes:
    if env:
        value = os.environ.get(env)
        if not value:
            raise ConfigError(f"[plugins.peppol]: environment variable {env} ({what}) is "
                              "not set")
        return value.encode()
    if path:
        file = Path(path).expanduser()
        if not file.is_absolute():
            file = data_dir / file
        try:
            return file.read_bytes()
        except OSError as exc:
            raise ConfigError(f"[plugins.peppol]: cannot read {what} {file}: "
                              f"{exc.strerror}") from None
    raise ConfigError(f"[plugins.peppol]: no {what}; set {what.replace(' ', '_')}_file or "
                      f"{what.replace(' ', '_')}_env")


def load_certificates(data: bytes, source: str) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise ConfigError(f"{source}: not a PEM certificate file") from None
    return certs


@dataclass(frozen=True)
class Credentials:
    """The AP certificate (its CN is the AP's seat id) and private key."""

    certificate: x509.Certificate
    key: rsa.RSAPrivateKey

    @property
    def seat_id(self) -> str:
        names = self.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(names[0].value) if names else ""

    def __repr__(self) -> str:  # never show the key, even in a debugger or a log
        return f"Credentials(seat_id={self.seat_id!r})"


def load_credentials(settings: PeppolSettings, data_dir: Path) -> Credentials:
    cert_pem = _read(settings.certificate_file, settings.certificate_env, "certificate",
                     data_dir)
    key_pem = _read(settings.key_file, settings.key_env, "key", data_dir)
    password = None
    if settings.key_password_env:
        secret = os.environ.get(settings.key_password_env)
        if secret is None:
            raise ConfigError(f"[plugins.peppol]: environment variable "
                              f"{settings.key_password_env} (key password) is not set")
        password = secret.encode()
    cert = load_certificates(cert_pem, "[plugins.peppol] certificate")[0]
    try:
        key = serialization.load_pem_private_key(key_pem, password=password)
    except (ValueError, TypeError):
        raise ConfigError("[plugins.peppol]: the private key cannot be read (wrong format "
                          "or password)") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError("[plugins.peppol]: the Peppol AS4 profile needs an RSA key")
    if key.public_key().public_numbers() != cert.public_key().public_numbers():  # type: ignore[union-attr]
        raise ConfigError("[plugins.peppol]: the private key does not belong to the "
                          "certificate")
    now = dt.datetime.now(dt.UTC)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        # Every access point would refuse our signature (EBMS:0101): say so once, here.
        raise ConfigError(f"[plugins.peppol]: the AP certificate {cert.subject.rfc4514_string()} "
                          f"is valid only from {cert.not_valid_before_utc:%Y-%m-%d} to "
                          f"{cert.not_valid_after_utc:%Y-%m-%d}; renew it")
    return Credentials(cert, key)


@dataclass(frozen=True)
class Trust:
    """Root CAs and the issuing CAs for access points and SMPs."""

    roots: tuple[x509.Certificate, ...]
    ap_cas: tuple[x509.Certificate, ...]
    smp_cas: tuple[x509.Certificate, ...]

    @classmethod
    def load(cls, settings: PeppolSettings, data_dir: Path) -> Trust:
        files = (settings.root_ca_file, settings.ap_ca_file, settings.smp_ca_file)
        if all(files):
            loaded = [load_certificates(_read(f, None, "trust", data_dir), str(f))
                      for f in files]
            return cls(tuple(loaded[0]), tuple(loaded[1]), tuple(loaded[2]))
        if settings.network == "private":
            raise ConfigError("[plugins.peppol]: network 'private' needs root_ca_file, "
                              "ap_ca_file and smp_ca_file")
        # OpenPeppol's G3 CAs, as the as4 package ships them.
        from as4.profiles.peppol import pki

        if settings.network == "production":
            return cls((pki.PEPPOL_ROOT_CA_G3,), (pki.PEPPOL_AP_CA_G3,),
                       (pki.PEPPOL_SMP_CA_G3,))
        return cls((pki.PEPPOL_ROOT_TEST_CA_G3,), (pki.PEPPOL_AP_TEST_CA_G3,),
                   (pki.PEPPOL_SMP_TEST_CA_G3,))

    def check_ap(self, cert: x509.Certificate, now: dt.datetime | None = None) -> None:
        check_chain(cert, self.ap_cas, self.roots, now)

    def check_smp(self, cert: x509.Certificate, now: dt.datetime | None = None) -> None:
        check_chain(cert, self.smp_cas, self.roots, now)


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    try:
        return bool(issuer.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def check_chain(cert: x509.Certificate, issuers: Sequence[x509.Certificate],
                roots: Sequence[x509.Certificate], now: dt.datetime | None = None) -> None:
    """``cert`` must be issued by one of ``issuers`` (the AP or SMP CA, which keeps an SMP
    certificate from passing as an AP one), that CA by a root, all valid at ``now``."""
    now = now or dt.datetime.now(dt.UTC)
    subject = cert.subject.rfc4514_string()
    issuer = next((c for c in issuers if _issued_by(cert, c)), None)
    if issuer is None:
        raise UntrustedCertificate(f"{subject} is not issued by a trusted CA")
    path = [cert, issuer]
    if not any(_issued_by(issuer, r) or issuer == r for r in roots):
        raise UntrustedCertificate(f"{subject}: its CA {issuer.subject.rfc4514_string()} "
                                   "does not chain to a trusted root")
    for c in path:
        if not c.not_valid_before_utc <= now <= c.not_valid_after_utc:
            raise UntrustedCertificate(
                f"{c.subject.rfc4514_string()} is not valid now (valid "
                f"{c.not_valid_before_utc:%Y-%m-%d} to {c.not_valid_after_utc:%Y-%m-%d})")
