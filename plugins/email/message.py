"""Builds the e-mail for one bundle: headers, bodies in lv/en, attachments, DKIM.

Pure apart from reading the DKIM key: the same bundle and settings give the same
message except for the ``Date`` header, so a retry is recognisably the same message
(``Message-ID`` comes from the delivery's idempotency key).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from email.headerregistry import Address
from email.utils import formatdate
from functools import cache
from pathlib import Path
from typing import Any

from gateway import Bundle, DeliveryError, Document, safe_filename
from gateway.core.documents import document_stem
from plugins.email import mime
from plugins.email.settings import EmailSettings, parse_mailbox

TEMPLATES = Path(__file__).parent / "templates"

TEXTS: dict[str, dict[str, str]] = {
    "lv": {
        "invoice": "Rēķins",
        "credit_note": "Kredītrēķins",
        "subject": "{kind} Nr. {number} no {seller}",
        "greeting": "Labdien, {name}!",
        "intro": "Pielikumā {kind_lower} Nr. {number}, izrakstīts {issued}",
        "amount_due": "Summa apmaksai",
        "amount_credit": "Summa",
        "due": "Apmaksas termiņš",
        "reference": "Maksājuma mērķis",
        "account": "Konts",
        "portal": "Rēķinu var apskatīt un lejupielādēt arī e-rēķinu portālā:",
        "attached": "Pielikumā",
        "automatic": "Šī vēstule nosūtīta automātiski, lūdzu, neatbildiet uz to.",
        "questions": "Jautājumu gadījumā",
        "regards": "Ar cieņu",
    },
    "en": {
        "invoice": "Invoice",
        "credit_note": "Credit note",
        "subject": "{kind} {number} from {seller}",
        "greeting": "Dear {name},",
        "intro": "Please find attached {kind_lower} {number}, issued on {issued}.",
        "amount_due": "Amount due",
        "amount_credit": "Amount",
        "due": "Due date",
        "reference": "Payment reference",
        "account": "Account",
        "portal": "You can also view and download it in the e-invoice portal:",
        "attached": "Attached",
        "automatic": "This message was sent automatically; please do not reply to it.",
        "questions": "Questions",
        "regards": "Kind regards,",
    },
}

# Characters that break a file name on some mail client or OS; Latvian letters stay
# (encoded per RFC 2231 in the MIME headers).
_FILENAME_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]+')
# a syntax tag before the extension (``.ubl.xml``), dropped when unambiguous
_TAGGED_SUFFIX = re.compile(r"\.[a-z][a-z0-9-]{0,15}\.([A-Za-z0-9]{1,8})")


@dataclass(frozen=True)
class BuiltMessage:
    message_id: str
    subject: str
    data: bytes
    smtputf8: bool  # an address needs SMTPUTF8 (non-ASCII local part)


def message_id(idempotency_key: str, domain: str) -> str:
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]
    return f"<{digest}.invoice@{domain}>"


def _stem_and_suffix(number: str, doc: Document) -> tuple[str, str] | None:
    """The archive name is ``document_stem(number) + suffix`` (``safe_filename(number)``
    for documents archived before stems got a hash); the suffix is the extension(s) and
    any ``-<format>`` the pipeline added to tell two formats apart."""
    stem = _FILENAME_UNSAFE.sub("_", unicodedata.normalize("NFC", number)).strip(" ._")
    safe_stem = next((s for s in (document_stem(number), safe_filename(number))
                      if doc.filename.startswith(s)), None)
    if not stem or safe_stem is None:
        return None
    return stem[:120], doc.filename[len(safe_stem):]


def attachment_name(number: str, doc: Document) -> str:
    """``<invoice number>.<ext>``, keeping Latvian letters the archive name had to drop."""
    parts = _stem_and_suffix(number, doc)
    return parts[0] + parts[1] if parts else doc.filename


def attachment_names(number: str, documents: tuple[Document, ...]) -> list[str]:
    """Each document's name, and ``E2611-00123.xml`` rather than ``E2611-00123.ubl.xml``
    unless another attachment (``.cii.xml``) would then have the same name."""
    full, short = [], []
    for doc in documents:
        parts = _stem_and_suffix(number, doc)
        full.append(parts[0] + parts[1] if parts else doc.filename)
        tagged = _TAGGED_SUFFIX.fullmatch(parts[1]) if parts else None
        short.append(f"{parts[0]}.{tagged.group(1)}" if parts and tagged else full[-1])
    return [s if short.count(s) == 1 else f for s, f in zip(short, full, strict=True)]


def _money(amount: Decimal, currency: str, lang: str) -> str:
    from babel.numbers import format_currency

    return format_currency(amount, currency, locale="lv_LV" if lang == "lv" else "en_IE")


def _date(value: dt.date, lang: str) -> str:
    if lang == "lv":
        return value.strftime("%d.%m.%Y.")
    from babel.dates import format_date

    return format_date(value, "d MMMM y", locale="en_GB")


@cache
def _templates() -> tuple[Any, Any]:
    import jinja2

    env_text = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                                  autoescape=False, keep_trailing_newline=True)
    env_html = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
    return env_text.get_template("message.txt"), env_html.get_template("message.html")


def body_context(bundle: Bundle, lang: str) -> dict[str, Any]:
    """What both bodies show, already formatted for ``lang``."""
    inv = bundle.invoice
    t = TEXTS[lang]
    kind = t["credit_note"] if inv.is_credit_note else t["invoice"]
    seller = inv.seller.trading_name or inv.seller.name
    totals = inv.require_totals()
    fmt = {"kind": kind, "kind_lower": kind[0].lower() + kind[1:], "number": inv.number,
           "seller": seller, "name": bundle.customer_name or inv.buyer.name,
           "issued": _date(inv.issue_date, lang)}
    texts = {k: v.format(**fmt) for k, v in t.items()}
    facts: list[tuple[str, str]] = [
        (t["amount_credit"] if inv.is_credit_note else t["amount_due"],
         _money(totals.amount_due, inv.currency, lang)),
    ]
    if inv.due_date and not inv.is_credit_note:
        facts.append((t["due"], _date(inv.due_date, lang)))
    if inv.payment_reference:
        facts.append((t["reference"], inv.payment_reference))
    if inv.iban and not inv.is_credit_note:
        facts.append((t["account"], inv.iban))
    contact = inv.seller.contact
    contact_text = ", ".join(x for x in (contact.email, contact.telephone) if x) \
        if contact else ""
    return {
        "t": texts, "lang": lang, "subject": texts["subject"], "facts": facts,
        "portal_url": bundle.portal_url, "seller": seller, "contact": contact_text,
        "attachments": attachment_names(inv.number, bundle.documents),
    }


def _mailbox(address: Address) -> str:
    return mime.mailbox(address.display_name, address.addr_spec)


def build_message(bundle: Bundle, settings: EmailSettings, *,
                  now: dt.datetime | None = None) -> BuiltMessage:
    lang = settings.language or (bundle.language if bundle.language in TEXTS else "en")
    context = body_context(bundle, lang)
    text_template, html_template = _templates()
    sender = settings.sender
    addresses = [sender.addr_spec, *settings.recipients]
    smtputf8 = any(not a.isascii() for a in addresses)
    mid = message_id(bundle.idempotency_key, settings.message_id_domain or sender.domain)
    headers = [
        f"From: {_mailbox(sender)}",
        mime.address_list("To", settings.to),
        *([mime.address_list("Cc", settings.cc)] if settings.cc else []),
        *([f"Reply-To: {_mailbox(parse_mailbox(settings.reply_to))}"]
          if settings.reply_to else []),
        mime.header_text("Subject", context["subject"]),
        f"Date: {formatdate((now or dt.datetime.now(dt.UTC)).timestamp(), localtime=True)}",
        # never folded: a folded Message-ID reads back with a leading space in some
        # parsers, and then replies and duplicates no longer match it
        f"Message-ID: {mid}",
        "Auto-Submitted: auto-generated",
        # Exchange and Outlook otherwise answer an invoice with out-of-office replies.
        "X-Auto-Response-Suppress: All",
        f"Content-Language: {lang}",
        mime.header_text("X-Invoice-Number", bundle.invoice.number),
    ]
    names = attachment_names(bundle.invoice.number, bundle.documents)
    parts = [mime.Part(doc.media_type, name, doc.content)
             for doc, name in zip(bundle.documents, names, strict=True)]
    # Quoted-printable bodies and base64 attachments keep the message 7-bit: any relay
    # passes it unchanged, so a DKIM signature survives.
    data = mime.write(headers, text_template.render(context), html_template.render(context),
                      parts, boundary_seed=mid.strip("<>").split(".", 1)[0][:24])
    if settings.dkim_key_file and settings.dkim_selector:
        data = dkim_sign(data, settings, settings.dkim_domain or sender.domain)
    return BuiltMessage(mid, context["subject"], data, smtputf8)


def dkim_sign(data: bytes, settings: EmailSettings, domain: str) -> bytes:
    import dkim

    path = Path(settings.dkim_key_file or "")
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise DeliveryError(f"cannot read DKIM key {path}: {exc.strerror}",
                            retryable=True) from None
    try:
        signature = dkim.sign(
            data, (settings.dkim_selector or "").encode(), domain.encode(), key,
            include_headers=[b"From", b"To", b"Cc", b"Subject", b"Date", b"Message-ID",
                             b"Reply-To", b"Content-Type", b"MIME-Version"])
    except dkim.DKIMException as exc:
        raise DeliveryError(f"DKIM signing with {path} failed: {exc}", retryable=True) from None
    return signature + data
