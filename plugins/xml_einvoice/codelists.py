"""The code lists of the official EN 16931 rules, read out of the CEN schematron itself.

The CEN validation artefacts carry each code list inside the test of its BR-CL rule, as a
space-separated list (``contains(' 380 381 ... ', concat(' ', ., ' '))``). This module
reads them back, so that :mod:`gateway.core.codelists` can be generated from, and tested
against, the artefact in force instead of being typed by hand:

    python -m plugins.xml_einvoice.codelists > gateway/core/codelists.py
"""

from __future__ import annotations

import re
import sys
from functools import cache
from pathlib import Path

from lxml import etree

from . import resources as res

_SVRL = "http://purl.oclc.org/dsdl/svrl"
_XSL = "http://www.w3.org/1999/XSL/Transform"
_LIST = re.compile(r"'( [^' ]+(?: [^' ]+)+ )'")

#: model list name -> (rule id, which of the rule's lists, what it is)
LISTS: dict[str, tuple[str, int, str]] = {
    "INVOICE_TYPE_CODES": ("BR-CL-01", 0, "UNTDID 1001 invoice type codes (BT-3)"),
    "CREDIT_NOTE_TYPE_CODES": ("BR-CL-01", 1, "UNTDID 1001 credit note type codes (BT-3)"),
    "CURRENCY_CODES": ("BR-CL-04", 0, "ISO 4217 currency codes (BT-5, BT-6)"),
    "COUNTRY_CODES": ("BR-CL-14", 0, "ISO 3166-1 alpha-2 country codes (BT-40, ...)"),
    "PAYMENT_MEANS_CODES": ("BR-CL-16", 0, "UNTDID 4461 payment means codes (BT-81)"),
    "VAT_CATEGORY_CODES": ("BR-CL-17", 0, "UNTDID 5305 VAT category codes, EN 16931 subset"),
    "ALLOWANCE_REASON_CODES": ("BR-CL-19", 0, "UNTDID 5189 allowance reason codes (BT-98)"),
    "CHARGE_REASON_CODES": ("BR-CL-20", 0, "UNTDID 7161 charge reason codes (BT-105)"),
    "ICD_SCHEMES": ("BR-CL-10", 0, "ISO 6523 ICD identifier schemes"),
    "VATEX_CODES": ("BR-CL-22", 0, "VATEX exemption reason codes (BT-121)"),
    "UNIT_CODES": ("BR-CL-23", 0, "UN/ECE Recommendation 20 and 21 unit codes (BT-130)"),
    "EAS_SCHEMES": ("BR-CL-25", 0, "CEF EAS electronic address schemes (BT-34-1, BT-49-1)"),
}


def rule_lists(path: Path) -> dict[str, list[list[str]]]:
    """Every BR-CL rule's code lists, in the order its test names them."""
    tree = etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True,
                                                  huge_tree=True))
    found: dict[str, list[list[str]]] = {}
    for failed in tree.iter(f"{{{_SVRL}}}failed-assert"):
        ids = [a.text for a in failed.iter(f"{{{_XSL}}}attribute") if a.get("name") == "id"]
        if not ids or not (ids[0] or "").startswith("BR-CL-") or ids[0] in found:
            continue
        lists = [m.split() for m in _LIST.findall(failed.get("test") or "")]
        if lists:
            found[ids[0] or ""] = lists
    return found


@cache
def official() -> dict[str, frozenset[str]]:
    """The model's lists as the EN 16931 UBL schematron in force states them."""
    artefact = res.resolve(res.EN16931_UBL)
    if artefact.path is None:
        raise LookupError(f"no EN 16931 UBL schematron: {artefact.missing}")
    lists = rule_lists(artefact.path)
    return {name: frozenset(lists[rule][index]) for name, (rule, index, _) in LISTS.items()}


def generate() -> str:
    artefact = res.resolve(res.EN16931_UBL)
    lists = official()
    out = ['"""EN 16931 code lists, generated from the CEN schematron (do not edit by hand).',
           "",
           f"Source: {artefact.rules} {artefact.version} ({artefact.source}).",
           "Regenerate: python -m plugins.xml_einvoice.codelists > gateway/core/codelists.py",
           "tests/xml_einvoice/test_xml_codelists.py fails when they drift apart.",
           '"""', "", "from __future__ import annotations", "",
           f'RULES_VERSION = "{artefact.version}"', ""]
    for name, (rule, _, what) in LISTS.items():
        out.append(f"#: {what}; {rule}.")
        out.append(f"{name} = frozenset(")
        codes = sorted(lists[name])
        line = "       "
        body = []
        for code in codes:
            item = f' "{code}",'
            if len(line) + len(item) > 96:
                body.append(line)
                line = "       "
            line += item
        body.append(line)
        out.append("    {")
        out += body
        out.append("    })")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(generate())
