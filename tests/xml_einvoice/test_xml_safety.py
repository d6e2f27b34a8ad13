"""Untrusted XML: no DTDs, no entities, no network, a size limit; clear errors, no tracebacks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway import InputError, InvoiceRejected
from plugins.xml_einvoice.safexml import parse_untrusted
from tests.xml_einvoice.xml_helpers import CII, OFFICIAL, UBL

UBL_HEAD = b'<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2">'

XXE_FILE = b"""<?xml version="1.0"?>
<!DOCTYPE Invoice [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
""" + UBL_HEAD + b"<ID>&secret;</ID></Invoice>"

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
""" + UBL_HEAD + b"<ID>&lol3;</ID></Invoice>"

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE Invoice SYSTEM "http://127.0.0.1:9/evil.dtd">
""" + UBL_HEAD + b"<ID>1</ID></Invoice>"


@pytest.mark.parametrize("data", [XXE_FILE, BILLION_LAUGHS, EXTERNAL_DTD],
                         ids=["xxe", "billion-laughs", "external-dtd"])
def test_doctype_and_entities_are_refused(data: bytes) -> None:
    with pytest.raises(InputError, match="DOCTYPE or entity declaration is refused"):
        parse_untrusted(data, "evil.xml")
    with pytest.raises(InputError, match=r"evil\.xml"):
        next(UBL.parse(data, "evil.xml"))
    [finding] = UBL.validate(data)
    assert finding.rule == "GW-XML" and finding.fatal


def test_utf16_doctype_is_refused_too() -> None:
    data = XXE_FILE.decode().replace('version="1.0"', 'version="1.0" encoding="UTF-16"')
    with pytest.raises(InputError, match="DOCTYPE"):
        parse_untrusted(data.encode("utf-16"), "evil16.xml")


def test_size_limit() -> None:
    with pytest.raises(InputError, match="limit is 1,000"):
        parse_untrusted(UBL_HEAD + b" " * 2000 + b"</Invoice>", "big.xml", max_bytes=1000)


def test_not_well_formed_names_line_and_problem() -> None:
    with pytest.raises(InputError) as exc:
        next(UBL.parse(UBL_HEAD + b"\n<ID>1</Invoce>", "broken.xml"))
    message = str(exc.value)
    assert message.startswith("broken.xml: not well-formed XML at line 2")


def test_wrong_root_for_the_format(standards_dir: Path) -> None:
    ubl = next(p for p in OFFICIAL if p.parent.name == "ubl").read_bytes()
    with pytest.raises(InputError, match="is not UN/CEFACT CII D16B"):
        next(CII.parse(ubl, "a.xml"))


def test_sniffing_by_namespace(standards_dir: Path) -> None:
    ubl = next(p for p in OFFICIAL if p.parent.name == "ubl").read_bytes()[:4096]
    cii = next(p for p in OFFICIAL if p.parent.name == "cii").read_bytes()[:4096]
    assert UBL.sniff(ubl, "x.xml") and not CII.sniff(ubl, "x.xml")
    assert CII.sniff(cii, "x.xml") and not UBL.sniff(cii, "x.xml")
    assert not UBL.sniff(b'{"number": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"}',
                         "x.json")


def test_bad_values_are_model_findings_not_tracebacks(standards_dir: Path) -> None:
    path = next(p for p in OFFICIAL if p.name == "peppol-Vat-category-S.xml")
    data = re.sub(rb"<cbc:IssueDate>[^<]+</cbc:IssueDate>",
                  b"<cbc:IssueDate>20.08.2018</cbc:IssueDate>", path.read_bytes(), count=1)
    assert data != path.read_bytes()
    with pytest.raises(InvoiceRejected) as exc:
        next(UBL.parse(data, "dates.xml"))
    [f] = exc.value.findings
    assert f.path == "issue_date" and f.rule == "BR-03" and "20.08.2018" in f.message

