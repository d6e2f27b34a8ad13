"""Format detection by the root element, whatever comes before it and in any encoding."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from gateway import complete
from gateway.core.pipeline import Gateway
from plugins.xml_einvoice.safexml import root_tag
from tests.xml_einvoice.xml_helpers import EXAMPLE_JSON, read, render

BUSINESS = next(p for p in EXAMPLE_JSON if p.name == "electricity-business.json")
LICENCE = b"<!--\n" + b"  Licensed under the EUPL, Version 1.2. " * 400 + b"\n-->\n"


@pytest.fixture(scope="module")
def documents() -> dict[str, bytes]:
    invoice = complete(read(BUSINESS))
    return {name: render(invoice, name) for name in ("ubl", "cii")}


def _with_prolog(xml: bytes, prolog: bytes) -> bytes:
    declaration, rest = xml.split(b"?>", 1)
    return declaration + b"?>\n" + prolog + rest.lstrip()


@pytest.mark.parametrize("syntax", ["ubl", "cii"])
def test_a_licence_comment_longer_than_the_head_is_read_past(
        gateway_factory: Callable[..., Gateway], documents: dict[str, bytes], syntax: str,
        tmp_path: Path) -> None:
    data = _with_prolog(documents[syntax], LICENCE + b"<?producer x?>\n")
    assert data.index(b"<Invoice" if syntax == "ubl" else b"<rsm:") > 4096
    gw = gateway_factory()
    assert gw.detect_format(data, "x.xml", source="x").name == syntax
    path = tmp_path / "licensed.xml"
    path.write_bytes(data)
    (invoice,) = list(gw.read_file(path))
    assert invoice.number == "E2611-00125"


@pytest.mark.parametrize("syntax", ["ubl", "cii"])
@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_with_bom_and_declaration(gateway_factory: Callable[..., Gateway],
                                        documents: dict[str, bytes], syntax: str,
                                        encoding: str, run_cli: Callable[..., Result],
                                        tmp_path: Path) -> None:
    text = documents[syntax].decode("utf-8").replace('encoding="UTF-8"', 'encoding="UTF-16"')
    bom = {"utf-16": b"", "utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff"}[encoding]
    data = bom + text.encode(encoding)
    gw = gateway_factory()
    fmt = gw.detect_format(data, "x.xml", source="x")
    assert fmt.name == syntax
    assert [f for f in fmt.validate(data) if f.fatal] == []
    path = tmp_path / "utf16.xml"
    path.write_bytes(data)
    result = run_cli("validate", str(path))
    assert result.exit_code == 0, result.output


def test_a_mention_of_the_namespace_is_not_the_root() -> None:
    fake = (b'<?xml version="1.0"?><note>urn:oasis:names:specification:ubl:schema:xsd:'
            b'Invoice-2 Invoice</note>')
    assert root_tag(fake) == "note"


@pytest.mark.parametrize("data", [b"", b"%PDF-1.7", b'{"a": 1}', b"<a", b"<<<"])
def test_not_xml_has_no_root(data: bytes) -> None:
    assert root_tag(data) is None


def test_a_doctype_is_still_refused_after_detection(gateway_factory: Callable[..., Gateway],
                                                    documents: dict[str, bytes]) -> None:
    evil = _with_prolog(documents["ubl"], b'<!DOCTYPE x [<!ENTITY e "boom">]>\n')
    gw = gateway_factory()
    fmt = gw.detect_format(evil, "x.xml", source="x")
    assert [f.rule for f in fmt.validate(evil)] == ["GW-XML"]


def test_the_second_look_is_bounded(gateway_factory: Callable[..., Gateway],
                                    documents: dict[str, bytes], tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.core import pipeline
    from gateway.errors import InputError

    data = _with_prolog(documents["ubl"], LICENCE)
    monkeypatch.setattr(pipeline, "DETECT_MAX_BYTES", len(data) - 1)
    path = tmp_path / "too-long-a-prolog.xml"
    path.write_bytes(data)
    gw = gateway_factory()
    with pytest.raises(InputError, match="not a format the gateway can read"):
        list(gw.read_file(path))
    with pytest.raises(InputError, match="not a format the gateway can read"):
        gw.detect_format(data, "x.xml", source="x")
