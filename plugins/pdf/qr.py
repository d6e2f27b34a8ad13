"""The EPC / SEPA credit-transfer QR code ("BCD" payload) a banking app can pay from.

The payload follows EPC069-12 version 002: service tag ``BCD``, UTF-8, ``SCT``, BIC
(optional inside the EEA), payee name, IBAN, ``EUR<amount>``, purpose, then either a
structured ISO 11649 creditor reference (``RF…``) or free remittance text, never both.
"""

from __future__ import annotations

import re
from decimal import Decimal
from urllib.parse import quote

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


# ISO/IEC 18004 lets an encoder use any of the eight data masks: a reader takes the
# mask from the symbol's format information. segno would try all eight and score
# each (§7.8.3), which in pure Python was about 6 ms of the ~10 ms view of an invoice
# (a quarter of a Typst invoice's CPU). One fixed mask makes the same payload, the same
# size and error correction; only the module pattern differs.
QR_MASK = 4


def qr_code(payload: str) -> segno.QRCode:
    """The QR code of ``payload`` (error correction M, as EPC069-12 asks), with the
    fixed data mask :data:`QR_MASK`. Make it once, then write it as needed."""
    return segno.make(payload, error="m", micro=False, boost_error=False, encoding="utf-8",
                      mask=QR_MASK)


def qr_svg_data_uri(svg: str) -> str:
    """SVG text of :func:`qr_svg` as a data URI (for HTML templates)."""
    return "data:image/svg+xml;charset=utf-8," + quote(svg, safe="")


_DARK_RUN = re.compile(rb"\x01+")


def qr_svg(code: segno.QRCode) -> str:
    """The code as SVG text (handed to Typst as data, not markup): four units a module,
    no quiet zone, one stroked path of the dark runs of each row.

    The same document segno writes with ``kind="svg", scale=4, border=0, xmldecl=False,
    nl=False`` (a test holds them equal), at a tenth of its cost: runs are found by a
    regular expression over each row instead of module by module in Python."""
    size = len(code.matrix)
    parts: list[str] = []
    x = 0
    y = 0.0
    for row_number, row in enumerate(code.matrix):
        row_y = row_number + 0.5
        for run in _DARK_RUN.finditer(bytes(row)):
            start, end = run.span()
            dy = row_y - y
            move = "m" if parts else "M"
            parts.append(f"{move}{start - x} {int(dy) if dy == int(dy) else dy}h{end - start}")
            x, y = end, row_y
    width = size * 4
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{width}" '
            f'class="segno"><path transform="scale(4)" class="qrline" stroke="#000" '
            f'd="{"".join(parts)}"/></svg>')
