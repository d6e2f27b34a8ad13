"""SSH public keys as text: parsing OpenSSH key lines, fingerprints, host-key matching.

Keys travel through customer settings and TOML files as single OpenSSH lines
(``ssh-ed25519 AAAA… comment``); they are public, so they may be stored and shown.
paramiko is imported lazily so that loading the plugin stays cheap.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import Any

KEY_TYPES = (
    "ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
)


@dataclass(frozen=True, slots=True)
class PublicKey:
    """One public key: its type, its wire bytes and the comment it came with."""

    type: str
    blob: bytes
    comment: str = ""

    @property
    def fingerprint(self) -> str:
        """The SHA256 fingerprint in OpenSSH's notation (``SHA256:…``, no padding)."""
        return fingerprint(self.blob)

    @property
    def line(self) -> str:
        text = f"{self.type} {base64.b64encode(self.blob).decode()}"
        return f"{text} {self.comment}" if self.comment else text

    def matches(self, key: Any) -> bool:
        """True when a paramiko key object is this key."""
        return key.asbytes() == self.blob


def fingerprint(blob: bytes) -> str:
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def parse_public_key(line: str, *, known_hosts: bool = False) -> PublicKey:
    """Read an OpenSSH public key line; raise ValueError saying what is wrong.

    With ``known_hosts`` a leading host field is skipped (``host ssh-ed25519 AAAA…``),
    since that is what ``ssh-keyscan`` prints and what operators will paste for a host
    key. For login keys a leading field would be authorized_keys options such as
    ``from="…"``, which the mailbox server does not enforce, so they are refused rather
    than silently dropped.
    """
    fields = line.strip().split()
    if fields and fields[0] not in KEY_TYPES and any(f in KEY_TYPES for f in fields[1:]):
        if not known_hosts:
            raise ValueError("authorized_keys options (from=, command=, ...) are not "
                             "supported; give only 'TYPE BASE64 [comment]'")
        if len(fields) >= 3 and fields[1] in KEY_TYPES:
            fields = fields[1:]
    if len(fields) < 2:
        raise ValueError(
            f"not an OpenSSH public key line ('TYPE BASE64 [comment]'): {line.strip()[:60]!r}")
    kind, data = fields[0], fields[1]
    if kind not in KEY_TYPES:
        raise ValueError(f"unsupported key type {kind!r}; expected one of {', '.join(KEY_TYPES)}")
    try:
        blob = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{kind} key: the key data is not valid base64") from None
    _check_blob(kind, blob)
    return PublicKey(kind, blob, " ".join(fields[2:]))


def _check_blob(kind: str, blob: bytes) -> None:
    """The key data starts with its own type name; a pasted fragment fails here."""
    import paramiko

    try:
        key = paramiko.PKey.from_type_string(kind, blob)
    except Exception as exc:  # paramiko raises several types for bad key data
        raise ValueError(f"{kind} key: the key data is damaged or truncated ({exc})") from None
    if key.asbytes() != blob:
        raise ValueError(f"{kind} key: the key data does not round-trip")


def host_key_types(expected: PublicKey) -> list[str]:
    """The host-key algorithms to offer, so the server presents the key we can verify."""
    if expected.type == "ssh-rsa":
        return ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]
    return [expected.type]
