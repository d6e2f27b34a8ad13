"""The Typst engine: invoice data is data, templates are confined, engines are chosen."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pikepdf
import pytest
from pdf_helpers import has_row, page_texts, pdf_text, rows, squash

from gateway import Invoice, PluginError
from gateway.core.pipeline import Gateway
from gateway.errors import ConfigError
from tests.conftest import add_customer

Completed = Callable[..., Invoice]
# Everything that means something in Typst markup or code.
HOSTILE = "#set page(width: 1cm) $x^2$ [y] \\ @ref <lbl> // c /* d"


def render(gw: Gateway, invoice: Invoice, language: str = "lv", **options: Any) -> bytes:
    return gw.render(invoice, "pdf", language=language, options=options or None).content


def creator(pdf: bytes) -> str:
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        return str(doc.docinfo.get("/Producer") or doc.docinfo.get("/Creator"))


def test_typst_is_the_default_engine(gw: Gateway, completed: Completed) -> None:
    pdf = render(gw, completed())
    assert creator(pdf).startswith("Typst")
    assert pdf == render(gw, completed())  # the same invoice gives the same bytes


def test_every_text_field_prints_as_written_not_as_typst(gw: Gateway,
                                                         completed: Completed) -> None:
    def hostile(data: dict[str, Any]) -> None:
        for party in ("seller", "buyer"):
            data[party]["name"] = f"{party} {HOSTILE}"
            data[party]["address"]["line1"] = f"{party} street {HOSTILE}"
        data["lines"][0]["item"]["name"] = f"item {HOSTILE}"
        data["lines"][0]["item"]["description"] = f"about {HOSTILE}"
        data["notes"] = [{"text": f"note {HOSTILE}"}]
        data["payment_terms"] = f"terms {HOSTILE}"
        data["contract_reference"] = "C#1$[2]"
        data["buyer_reference"] = "@b<1>"

    content = render(gw, completed(edit=hostile))
    text = squash(pdf_text(content))
    for field in ("seller", "buyer", "seller street", "buyer street", "item", "about",
                  "note", "terms"):
        assert f"{field} {HOSTILE}" in text, field
    assert "C#1$[2]" in text and "@b<1>" in text
    assert len(page_texts(content)) == 1  # `#set page(width: 1cm)` did not run


def test_long_words_wrap_inside_their_column(gw: Gateway, completed: Completed) -> None:
    code = "X" * 90

    def long(data: dict[str, Any]) -> None:
        data["lines"][0]["item"]["name"] = code

    content = render(gw, completed(edit=long))
    lines = rows(content)
    # Wrapped inside the description column: the numbers of the row stay beside it.
    assert has_row(lines, "312 kWh 0,1389 21% 43,34")
    assert not any(code in line for line in lines)
    assert code in "".join(pdf_text(content).split())  # every character, in order


def write(directory: Path, name: str, text: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(text, encoding="utf-8")


def test_typ_template_override_with_logo_and_messages(
        gateway_factory: Callable[..., Gateway], completed: Completed, tmp_path: Path) -> None:
    branding = tmp_path / "data" / "branding"
    write(branding, "invoice.typ",
          '#import "default/layout.typ": invoice\n'
          '#invoice(json(bytes(sys.inputs.invoice)), json(bytes(sys.inputs.messages)),\n'
          '  qr: bytes(sys.inputs.qr), logo: sys.inputs.logo)\n'
          '#text(fill: rgb("#00594f"))[Pārejiet uz e-rēķinu: ietaupiet 2,50 EUR!]\n')
    write(branding / "messages", "lv.toml", '[title]\ninvoice = "Elektrības rēķins"\n')
    write(branding, "logo.svg",
          '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="40">'
          '<rect width="200" height="40" fill="#00594f"/></svg>')
    gw = gateway_factory(config='[plugins.pdf]\ntemplate_dir = "branding"\n'
                                'logo = "branding/logo.svg"\n')
    pdf = render(gw, completed())
    text = squash(pdf_text(pdf))
    assert creator(pdf).startswith("Typst")
    assert "Pārejiet uz e-rēķinu: ietaupiet 2,50 EUR!" in text
    assert "ELEKTRĪBAS RĒĶINS" in text
    assert "Summa apmaksai 78,72 €" in text


def test_a_template_reads_nothing_outside_its_folder(
        gateway_factory: Callable[..., Gateway], completed: Completed, tmp_path: Path) -> None:
    secret = tmp_path / "data" / "secret.txt"
    secret.parent.mkdir(parents=True)
    secret.write_text("TOP-SECRET-VALUE", encoding="utf-8")
    branding = tmp_path / "data" / "branding"
    for target in ("../secret.txt", str(secret)):
        write(branding, "invoice.typ", f'#read("{target}")\n')
        gw = gateway_factory(config='[plugins.pdf]\ntemplate_dir = "branding"\n')
        with pytest.raises(PluginError, match="Typst template failed on invoice "
                                              "E2611-00123") as caught:
            render(gw, completed())
        assert "TOP-SECRET-VALUE" not in str(caught.value)


def test_a_template_importing_a_package_fails_clearly_offline(
        gateway_factory: Callable[..., Gateway], completed: Completed, tmp_path: Path) -> None:
    branding = tmp_path / "data" / "branding"
    write(branding, "invoice.typ", '// a comment naming "@preview/ignored:1.0.0"\n'
                                   '#import "@preview/cetz:0.3.0": canvas\nHello\n')
    gw = gateway_factory(config='[plugins.pdf]\ntemplate_dir = "branding"\n')
    with pytest.raises(PluginError, match=r"invoice\.typ, line 2: imports the package "
                                          r"@preview/cetz:0\.3\.0; .* never downloads"):
        render(gw, completed())


def test_engine_by_configuration_and_per_customer(
        gateway_factory: Callable[..., Gateway], completed: Completed) -> None:
    gw = gateway_factory(config='[plugins.pdf]\nengine = "weasyprint"\n')
    assert creator(render(gw, completed())).startswith("WeasyPrint")
    assert creator(render(gw, completed(), engine="typst")).startswith("Typst")
    # A customer's format options choose the engine of that customer's PDFs.
    add_customer(gw, formats=["pdf"], format_options={"pdf": {"engine": "typst"}})
    result = gw.push(completed(), source="test")
    assert result.status == "accepted", result.error
    record = gw.store.documents(result.invoice_id)[0]
    assert creator(gw.archive.get(record.sha256)).startswith("Typst")


def test_an_html_template_chooses_weasyprint_and_a_mismatch_is_refused(
        gateway_factory: Callable[..., Gateway], completed: Completed, tmp_path: Path) -> None:
    branding = tmp_path / "data" / "branding"
    write(branding, "invoice.html", '{% extends "default/invoice.html" %}\n')
    gw = gateway_factory(config='[plugins.pdf]\ntemplate_dir = "branding"\n')
    assert creator(render(gw, completed())).startswith("WeasyPrint")
    with pytest.raises(ConfigError, match=r"has an invoice\.html for weasyprint but no "
                                          r"invoice\.typ"):
        gateway_factory(config='[plugins.pdf]\ntemplate_dir = "branding"\n'
                               'engine = "typst"\n')
