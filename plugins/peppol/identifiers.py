"""Peppol identifiers: participants, document types and processes (Peppol Policy for use
of Identifiers 4.x).

A participant is ``iso6523-actorid-upis::<ICD>:<value>``, e.g. ``0218:40003009497`` for a
Latvian registration number or ``9939:LV40003009497`` for a Latvian VAT number. Values
are case-insensitive (they are lower-cased for the DNS hash); document type and process
identifiers are case-sensitive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway import Invoice
from gateway.errors import GatewayError

PARTICIPANT_SCHEME = "iso6523-actorid-upis"
DOCTYPE_SCHEME = "busdox-docid-qns"
PROCESS_SCHEME = "cenbii-procid-ubl"
TRANSPORT_PROFILE = "peppol-transport-as4-v2_0"

BILLING_PROCESS = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
_BIS3 = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1"
BIS_INVOICE = f"urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice##{_BIS3}"
BIS_CREDIT_NOTE = (
    f"urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2::CreditNote##{_BIS3}")
DOCTYPE_ALIASES = {"invoice": BIS_INVOICE, "credit-note": BIS_CREDIT_NOTE}

# ISO 6523 ICDs and EAS codes are four digits; values are at most 50 characters of
# printable ASCII without spaces (PFUOI POLICY 1).
_ICD = re.compile(r"^\d{4}$")
_VALUE = re.compile(r"^[\x21-\x7e]{1,50}$")


class IdentifierError(GatewayError):
    """A participant, document type or process identifier is malformed."""


@dataclass(frozen=True)
class ParticipantId:
    """A Peppol participant: ICD scheme and value, e.g. ``0218`` and ``40003009497``."""

    icd: str
    value: str

    @classmethod
    def parse(cls, text: str) -> ParticipantId:
        """Read ``0218:40003009497`` or ``iso6523-actorid-upis::0218:40003009497``."""
        raw = text.strip()
        scheme, sep, rest = raw.partition("::")
        if sep:
            if scheme.lower() != PARTICIPANT_SCHEME:
                raise IdentifierError(f"participant {text!r}: scheme {scheme!r} is not "
                                      f"{PARTICIPANT_SCHEME}")
            raw = rest
        icd, sep, value = raw.partition(":")
        if not sep or not _ICD.match(icd) or not _VALUE.match(value):
            raise IdentifierError(f"participant {text!r}: expected ICD:VALUE such as "
                                  "0218:40003009497 (a four-digit ICD, then up to 50 "
                                  "printable characters)")
        return cls(icd, value)

    def __str__(self) -> str:
        return f"{self.icd}:{self.value}"

    @property
    def uri(self) -> str:
        """The scheme-qualified form used in SMP URLs: ``iso6523-actorid-upis::0218:…``."""
        return f"{PARTICIPANT_SCHEME}::{self}"

    @property
    def key(self) -> str:
        """Comparison form: participant values are case-insensitive."""
        return str(self).lower()


def receiver_of(invoice: Invoice, configured: str | None = None) -> ParticipantId:
    """The buyer's participant id: the channel setting when given, else BT-49 + scheme."""
    return _party_id(invoice, "buyer", configured)


def sender_of(invoice: Invoice, configured: str | None = None) -> ParticipantId:
    """The seller's participant id: the configured one, else BT-34 + scheme."""
    return _party_id(invoice, "seller", configured)


def _party_id(invoice: Invoice, role: str, configured: str | None) -> ParticipantId:
    if configured:
        return ParticipantId.parse(configured)
    address = getattr(invoice, role).electronic_address
    if address is None:
        term, where = ("BT-49", "the customer's peppol channel 'participant'") \
            if role == "buyer" else ("BT-34", "[plugins.peppol] 'sender'")
        raise IdentifierError(
            f"invoice {invoice.number}: the {role} has no electronic address ({term}) and "
            f"{where} is not set; set {term} with its scheme (e.g. 0218 with the "
            "registration number)")
    return ParticipantId.parse(f"{address.scheme}:{address.value}")


def doctype_for(document_root: str) -> str:
    """BIS Billing 3.0 invoice or credit note, by the UBL document's root element."""
    return BIS_CREDIT_NOTE if document_root == "CreditNote" else BIS_INVOICE


def resolve_doctype(text: str) -> str:
    """A full document type identifier, or one of the aliases ``invoice``/``credit-note``."""
    doctype = DOCTYPE_ALIASES.get(text, text)
    doctype = doctype.removeprefix(f"{DOCTYPE_SCHEME}::")
    if "::" not in doctype or "##" not in doctype:
        raise IdentifierError(f"document type {text!r}: expected 'invoice', 'credit-note' or "
                              "a busdox-docid-qns identifier (ROOT-NS::LOCAL##CUSTOMIZATION::"
                              "VERSION)")
    return doctype
