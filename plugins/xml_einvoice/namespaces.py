"""Namespaces of UBL 2.1 and CII D16B, and helpers to show paths with short prefixes."""

from __future__ import annotations

import re

UBL_INVOICE = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
UBL_CREDIT_NOTE = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
EXT = "urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2"

RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"

UBL_NS = {"inv": UBL_INVOICE, "cn": UBL_CREDIT_NOTE, "cac": CAC, "cbc": CBC, "ext": EXT}
CII_NS = {"rsm": RSM, "ram": RAM, "udt": UDT, "qdt": QDT}
PREFIXES = {v: k for k, v in {**UBL_NS, **CII_NS}.items()}
PREFIXES[UBL_INVOICE] = ""
PREFIXES[UBL_CREDIT_NOTE] = ""

PEPPOL_BILLING = "urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PEPPOL_CUSTOMIZATION = f"urn:cen.eu:en16931:2017#compliant#{PEPPOL_BILLING}"
PEPPOL_PROFILE = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
EN16931 = "urn:cen.eu:en16931:2017"

_CLARK = re.compile(r"\{([^}]*)\}")
_SVRL_STEP = re.compile(r"\*:([\w.-]+)\[namespace-uri\(\)='([^']*)'\]")
_EQNAME = re.compile(r"Q\{([^}]*)\}")


def short(text: str) -> str:
    """``{urn:...CommonBasicComponents-2}ID`` → ``cbc:ID`` in paths and messages."""

    def prefix(match: re.Match[str]) -> str:
        p = PREFIXES.get(match.group(1))
        if p is None:
            return match.group(0)
        return f"{p}:" if p else ""

    return _CLARK.sub(prefix, text)


def short_svrl(location: str) -> str:
    """SVRL's ``/*:Invoice[namespace-uri()='…'][1]/*:ID[namespace-uri()='…'][1]`` (the
    ISO skeleton) or ``/Q{…}Invoice[1]/Q{…}ID[1]`` (SchXslt) → ``/Invoice[1]/cbc:ID[1]``."""

    def step(match: re.Match[str]) -> str:
        p = PREFIXES.get(match.group(2))
        return f"{p}:{match.group(1)}" if p else match.group(1)

    def eqname(match: re.Match[str]) -> str:
        p = PREFIXES.get(match.group(1))
        return match.group(0) if p is None else (f"{p}:" if p else "")

    return _EQNAME.sub(eqname, _SVRL_STEP.sub(step, location))
