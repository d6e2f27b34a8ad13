"""The EPC / SEPA credit-transfer QR code ("BCD" payload) a banking app can pay from.

The payload follows EPC069-12 version 002: service tag ``BCD``, UTF-8, ``SCT``, BIC
(optional inside the EEA), payee name, IBAN, ``EUR<amount>``, purpose, then either a
structured ISO 11649 creditor reference (``RF…``) or free remittance text, never both.
"""

from __future__ import annotations

import io
import re
from decimal import Decimal

import segno

_RF = re.compile(r"^RF\d{2}[A-Z0-9]{1,21}$")
_IBAN = re.compile(r"^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$")
_BIC = re.compile(r"^[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?$")
MAX_PAYLOAD_BYTES = 331


def _mod97(text: str) -> int:
    return int("".join(str(int(c, 36)) for c in text)) % 97


def is_creditor_reference(value: str) -> bool:
    """ISO 11649 (RF…) structured reference: the EPC payload has a field of its own."""
    compact = value.replace(" ", "").upper()
    return bool(_RF.match(compact)) and _mod97(compact[4:] + compact[:4]) == 1


def epc_payload(*, name: str, iban: str, amount: Decimal, currency: str,
                reference: str | None, bic: str | None = None) -> str | None:
    """The EPC QR payload, or None when the invoice cannot be paid by one.

    EPC069-12 allows only euro amounts from 0.01 to 999 999 999.99, a payee name of 70
    characters and remittance text of 140. An invoice outside that gets no code rather
    than one a bank would refuse or, worse, one with a cut-off payment reference.
    """
    iban = iban.replace(" ", "").upper()
    bic = (bic or "").replace(" ", "").upper()
    name = " ".join(name.split())
    if currency != "EUR" or not (Decimal("0.01") <= amount <= Decimal("999999999.99")):
        return None
    if not _IBAN.match(iban) or _mod97(iban[4:] + iban[:4]) != 1:
        return None
    if bic and not _BIC.match(bic):
        bic = ""
    if not name or len(name) > 70:
        return None
    reference = " ".join((reference or "").split())
    structured = reference.replace(" ", "").upper() if is_creditor_reference(reference) else ""
    text = "" if structured else reference
    if len(text) > 140:
        return None
    lines = ["BCD", "002", "1", "SCT", bic, name, iban, f"EUR{amount:.2f}", "",
             structured, text]
    payload = "\n".join(lines).rstrip("\n")
    if len(payload.encode()) > MAX_PAYLOAD_BYTES:
        return None
    return payload


def qr_code(payload: str) -> segno.QRCode:
    """The QR code of ``payload`` (error correction M, as EPC069-12 asks). Encoding is
    the costly part (choosing the mask): make it once, then write it as needed."""
    return segno.make(payload, error="m", micro=False, boost_error=False, encoding="utf-8")


def qr_svg_data_uri(code: segno.QRCode) -> str:
    """The code as an SVG data URI (for HTML templates)."""
    return code.svg_data_uri(scale=4, border=0, dark="#000", nl=False)


def qr_svg(code: segno.QRCode) -> str:
    """The code as SVG text (handed to Typst as data, not markup)."""
    buffer = io.BytesIO()
    code.save(buffer, kind="svg", scale=4, border=0, dark="#000", xmldecl=False, nl=False)
    return buffer.getvalue().decode()
