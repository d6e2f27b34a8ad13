"""MIME writing for the invoice message, directly and deterministically.

The standard library's ``EmailMessage`` parses and refolds every header through its
header registry, which costs ~20 ms per invoice message; writing the one fixed shape
this channel sends (multipart/mixed → alternative text + HTML, then base64
attachments) costs well under a millisecond and gives the same bytes for the same
message. Everything that is encoded uses the C codecs (``binascii`` QP and base64);
the tests read every message back with the ``email`` package.

Boundaries start with ``=_``, which neither quoted-printable nor base64 output can
contain, so no content scan is needed to rule out a clash.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass
from email.header import Header
from email.utils import encode_rfc2231, formataddr

CRLF = "\r\n"


@dataclass(frozen=True)
class Part:
    media_type: str
    filename: str
    content: bytes


def header_text(name: str, value: str) -> str:
    """An unstructured header (Subject): RFC 2047 encoded words when not plain ASCII."""
    if value.isascii() and value.isprintable():
        return _fold_at_spaces(f"{name}: {value}")
    encoded = Header(value, "utf-8", header_name=name).encode(linesep=CRLF)
    return f"{name}: {encoded}"


def _fold_at_spaces(line: str, width: int = 78) -> str:
    """Fold before spaces, so that unfolding (dropping the CRLFs) gives the line back."""
    if len(line) <= width:
        return line
    lines, current = [], ""
    for word in re.split(r"(?= )", line):
        if current.strip() and len(current) + len(word) > width:
            lines.append(current)
            current = word
        else:
            current += word
    lines.append(current)
    return CRLF.join(lines)


def mailbox(display_name: str, address: str) -> str:
    """``Name <addr>`` with the name encoded (RFC 2047) or quoted as needed."""
    return formataddr((display_name, address), charset="utf-8")


def address_list(name: str, addresses: Iterable[str]) -> str:
    """``To``/``Cc``: one address per folded line once the line would grow too long."""
    line, lines = f"{name}: ", []
    for i, address in enumerate(addresses):
        piece = address if i == 0 else f", {address}"
        if i and len(line) + len(piece) > 76:
            lines.append(line + ",")
            line = f" {address}"
        else:
            line += piece
    lines.append(line)
    return CRLF.join(lines)


def _qp(text: str) -> bytes:
    data = text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
    return binascii.b2a_qp(data, istext=True)


def _b64(content: bytes) -> bytes:
    return base64.encodebytes(content).replace(b"\n", b"\r\n")


def _filename_param(key: str, filename: str) -> str:
    if filename.isascii():
        return f'{key}="{filename}"'
    return f"{key}*={encode_rfc2231(filename, 'utf-8')}"


def write(headers: list[str], text: str, html: str, parts: Iterable[Part],
          boundary_seed: str) -> bytes:
    """The whole message: ``headers`` (already formatted lines), bodies, attachments."""
    attachments = list(parts)
    alt = f"=_alt_{boundary_seed}"
    out: list[bytes] = []
    head = [*headers, "MIME-Version: 1.0"]
    if attachments:
        mixed = f"=_mix_{boundary_seed}"
        head.append(f'Content-Type: multipart/mixed; boundary="{mixed}"')
        out.append((CRLF.join(head) + CRLF + CRLF).encode("utf-8"))
        out.append(f"--{mixed}{CRLF}Content-Type: multipart/alternative; "
                   f'boundary="{alt}"{CRLF}{CRLF}'.encode("ascii"))
    else:
        head.append(f'Content-Type: multipart/alternative; boundary="{alt}"')
        out.append((CRLF.join(head) + CRLF + CRLF).encode("utf-8"))
    for subtype, body in (("plain", text), ("html", html)):
        out.append(f'--{alt}{CRLF}Content-Type: text/{subtype}; charset="utf-8"{CRLF}'
                   f"Content-Transfer-Encoding: quoted-printable{CRLF}{CRLF}"
                   .encode("ascii"))
        out.append(_qp(body))
        out.append(CRLF.encode())
    out.append(f"--{alt}--{CRLF}".encode("ascii"))
    if attachments:
        for part in attachments:
            out.append(
                f"{CRLF}--{mixed}{CRLF}"
                f"Content-Type: {part.media_type};{CRLF} {_filename_param('name', part.filename)}"
                f"{CRLF}Content-Transfer-Encoding: base64{CRLF}"
                f"Content-Disposition: attachment;{CRLF} "
                f"{_filename_param('filename', part.filename)}{CRLF}{CRLF}".encode("ascii"))
            out.append(_b64(part.content))
        out.append(f"{CRLF}--{mixed}--{CRLF}".encode("ascii"))
    return b"".join(out)
