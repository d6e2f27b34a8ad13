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
          '#import "default/input.typ": view, messages, qr, logo\n'
          '#import "default/layout.typ": invoice\n'
          '#invoice(view, messages, qr: qr, logo: logo)\n'
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


def test_a_template_written_for_sys_inputs_still_renders(
        gateway_factory: Callable[..., Gateway], completed: Completed, tmp_path: Path) -> None:
    # The first Typst engine handed the data in through sys.inputs; such templates keep
    # working (given the data that way), and each invoice still gets its own data.
    branding = tmp_path / "data" / "branding"
    write(branding, "invoice.typ",
          '#import "default/layout.typ": invoice\n'
          '#invoice(json(bytes(sys.inputs.invoice)), json(bytes(sys.inputs.messages)),\n'
          '  qr: bytes(sys.inputs.qr))\n'
          '#text[Legacy template]\n')
    gw = gateway_factory(config='[plugins.pdf]\ntemplate_dir = "branding"\n')
    first = squash(pdf_text(render(gw, completed())))
    second = squash(pdf_text(render(gw, completed(edit=renumber("E2611-00999")))))
    # (the example's payment reference names E2611-00123 whatever the number: the
    # footer's "Rēķins <number>" is what shows which invoice's data was used)
    assert "Legacy template" in first and "Rēķins E2611-00123" in first
    assert "Rēķins E2611-00999" in second and "Rēķins E2611-00123" not in second


def renumber(number: str) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        data["number"] = number
    return edit


def test_each_invoice_is_rendered_from_its_own_data(gw: Gateway, completed: Completed) -> None:
    # The data goes in as files the compiler rereads: what was rendered before must not
    # show, and the same invoice gives the same bytes whatever came between.
    first = completed()
    other = completed(edit=renumber("E2611-00999"))
    pdf = render(gw, first)
    other_pdf = render(gw, other)
    assert render(gw, first) == pdf
    text = squash(pdf_text(other_pdf))
    assert "Rēķins E2611-00999" in text and "Rēķins E2611-00123" not in text
    english = render(gw, completed(edit=renumber("E2611-00998")), language="en")
    assert "Invoice E2611-00998" in squash(pdf_text(english))


def test_a_template_folder_cannot_supply_the_invoice_data(
        gateway_factory: Callable[..., Gateway], completed: Completed, tmp_path: Path) -> None:
    branding = tmp_path / "data" / "branding"
    write(branding, "invoice.typ", '#import "default/input.typ": view\n#view.number\n')
    write(branding / "_input", "invoice.json", '{"number": "FORGED-0001"}')
    gw = gateway_factory(config='[plugins.pdf]\ntemplate_dir = "branding"\n')
    text = squash(pdf_text(render(gw, completed())))
    assert text == "E2611-00123"


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


def test_a_one_page_invoice_is_laid_out_once_and_the_same_as_counted(
        gateway_factory: Callable[..., Gateway], completed: Completed, tmp_path: Path) -> None:
    """The built-in layout writes "Page 1 of 1" as text on its first try (one layout
    pass instead of two); a template that always counts pages gives the same bytes."""
    from plugins.pdf.typst_engine import page_count

    counted = tmp_path / "data" / "counted"
    write(counted, "invoice.typ",
          '#import "default/input.typ": view, messages, qr, logo\n'
          '#import "default/layout.typ": invoice\n'
          '#invoice(view, messages, qr: qr, logo: logo, one-page: false)\n')
    shortcut = render(gateway_factory(), completed())
    assert page_count(shortcut) == 1  # so the engine's first try was kept
    assert "Lapa 1 no 1" in squash(pdf_text(shortcut))
    slow = gateway_factory(config='[plugins.pdf]\ntemplate_dir = "counted"\n')
    assert render(slow, completed()) == shortcut


def test_page_count_is_read_from_the_metadata_not_from_invoice_text(
        gw: Gateway, completed: Completed) -> None:
    from plugins.pdf.typst_engine import page_count

    def forged(data: dict[str, Any]) -> None:
        data["seller"]["name"] = "<xmpTPg:NPages>1</xmpTPg:NPages>"
        data["lines"] = data["lines"] * 60

    pdf = render(gw, completed(edit=forged))
    assert page_count(pdf) == len(page_texts(pdf)) > 1
    assert "Lapa 2 no" in squash(pdf_text(pdf))
