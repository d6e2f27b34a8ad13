"""The EPC / SEPA credit-transfer QR code ("BCD" payload) a banking app can pay from.

The payload follows EPC069-12 version 002: service tag ``BCD``, UTF-8, ``SCT``, BIC
(optional inside the EEA), payee name, IBAN, ``EUR<amount>``, purpose, then either a
structured ISO 11649 creditor reference (``RF…``) or free remittance text, never both.
"""

from __future__ import annotations

import re
from decimal import Decimal
from urllib.parse import quote

from .qrencoder import QRCode, encode

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


def qr_code(payload: str) -> QRCode:
    """The QR code of ``payload``'s UTF-8 bytes (byte mode without ECI and error
    correction M, as EPC069-12 asks), with the fixed data mask :data:`QR_MASK`. Make it
    once, then write it as needed.

    Our own encoder (:mod:`.qrencoder`): segno, pure Python module by module, took
    ~1.7 ms a code even with the mask fixed, ours a twentieth of that. The symbols are
    segno's module for module but for one thing: segno puts a zero codeword between
    the terminator and the pad codewords (its issue #148), ours follows
    §7.4.10; a reader stops at the terminator, so both read the same."""
    return encode(payload.encode(), mask=QR_MASK)


def qr_svg_data_uri(svg: str) -> str:
    """SVG text of :func:`qr_svg` as a data URI (for HTML templates)."""
    return "data:image/svg+xml;charset=utf-8," + quote(svg, safe="")


class _PathSteps(dict[bytes, str]):
    """The SVG path step drawing one dark run of a symbol ``size`` modules wide, keyed by
    what :func:`qr_svg` cuts out for the run: light modules (0), row breaks (2) and
    dark modules (1), less the light module in front and the dark one at the end that
    the cut took.

    The step is a move by the light modules less a row's width for each break, down a
    row for each break, then a horizontal line over the dark modules. Each row break
    comes with one light module of its own, so the light modules in front of a run are
    as many as the key holds, one more for the cut, one less for each break. Breaks
    always come before the light modules of a cut, so a step has one key however the
    light modules split between the rows: a size has fewer than 3·size² keys (a few
    thousand are met in practice). Keys with more than one break (a row without any
    dark module, a rare thing) are worked out each time and not kept."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def __missing__(self, key: bytes) -> str:
        dark = key.count(1) + 1
        if key[:1] == b"\3":  # the symbol's first run: from the top edge, half a row down
            return f"M{key.count(0)} 0.5h{dark}"
        breaks = key.count(2)
        step = f"m{key.count(0) + 1 - breaks - breaks * self.size} {breaks}h{dark}"
        if breaks <= 1:
            self[key] = step
        return step


_STEPS: dict[int, _PathSteps] = {}


def qr_svg(code: QRCode) -> str:
    """The code as SVG text (handed to Typst as data, not markup): four units a module,
    no quiet zone, one stroked path of the dark runs of each row.

    The same document segno writes with ``kind="svg", scale=4, border=0, xmldecl=False,
    nl=False`` (a test holds them equal), at a fraction of the cost of formatting a
    step a run: each row's trailing light modules go behind a row break (with a light
    module in front, so that every dark run of the symbol ends in a dark module then a
    light one), one split at those ends cuts the joined rows into runs, and each run's
    step comes from a table."""
    size = code.size
    steps = _STEPS.get(size)
    if steps is None:
        steps = _STEPS.setdefault(size, _PathSteps(size))
    modules = b"".join((row.rstrip(b"\0") + b"\0\2").ljust(size + 2, b"\0")
                       for row in code.matrix)
    # the last piece is the last row's break and light modules, with no run
    runs = (b"\3" + modules).split(b"\1\0")[:-1]
    path = "".join(map(steps.__getitem__, runs))
    width = size * 4
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{width}" '
            f'class="segno"><path transform="scale(4)" class="qrline" stroke="#000" '
            f'd="{path}"/></svg>')
