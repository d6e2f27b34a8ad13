"""The readable PDF: read back with poppler and pypdf, in Latvian and English."""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pdf_helpers import has_row, page_count, page_texts, pdf_text, rows, squash

from gateway import Invoice
from gateway.core.pipeline import Gateway
from gateway.errors import ConfigError
from plugins.pdf.i18n import MESSAGES_DIR, load_messages
from plugins.pdf.qr import epc_payload, is_creditor_reference
from tests.conftest import add_customer

Completed = Callable[..., Invoice]


def render(gw: Gateway, invoice: Invoice, language: str, **options: Any) -> bytes:
    doc = gw.render(invoice, "pdf", language=language, options=options or None)
    assert doc.media_type == "application/pdf"
    assert doc.filename == f"{invoice.number}.pdf"
    assert doc.content.startswith(b"%PDF-")
    return doc.content


def test_latvian_household_bill_shows_what_the_customer_must_pay(gw: Gateway,
                                                                   completed: Completed) -> None:
    content = render(gw, completed(), "lv")
    text, lines = squash(pdf_text(content)), rows(content)
    assert has_row(lines, "RĒĶINS") and has_row(lines, "Rēķina numurs E2611-00123")
    assert has_row(lines, "SUMMA APMAKSAI") and has_row(lines, "78,72 €")
    assert has_row(lines, "Apmaksāt līdz 30.11.2026")  # babel lv: dd.MM.yyyy
    assert has_row(lines, "Konts (IBAN) LV62 HABA 0551 2345 6789 0")
    assert "Rekins E2611-00123 ligums 100234567" in text
    assert has_row(lines, "BIC HABALV22") and has_row(lines, "Saņēmējs Daugavas Elektrība AS")
    assert has_row(lines, "Norēķinu periods 01.10.2026 – 31.10.2026")
    assert has_row(lines, "Līguma numurs 100234567")
    # The Latvian bill must tell the customer what to quote and that transfers are slow.
    assert ("Maksājumā obligāti norādiet rēķina numuru E2611-00123 un līguma numuru "
            "100234567") in text
    assert "vairāk nekā vienu darba dienu" in text
    # ... once: the seller's own copy of that sentence (an invoice note) is not repeated.
    assert text.count("līguma numuru") == 1
    # Lines with quantity, unit, unit price, VAT rate and net amount; totals.
    assert has_row(lines, "1 Elektroenerģija 312 kWh 0,1389 21% 43,34")
    assert has_row(lines, "pieslēguma jauda līdz 16 A 1 mēn. 8,40 21% 8,40")
    assert has_row(lines, "Kopā bez PVN 65,06 €") and has_row(lines, "Kopā ar PVN 78,72 €")
    assert has_row(lines, "Standarta likme 21% 65,06 € 13,66 €")
    assert has_row(lines, "Summa apmaksai 78,72 €")  # babel lv: 1 234,56 €
    assert has_row(lines, "Lapa 1 no 1")
    assert "Skenējiet ar bankas" in text  # the EPC QR code is there


def test_english_business_bill_uses_english_labels_and_formats(gw: Gateway,
                                                               completed: Completed) -> None:
    content = render(gw, completed("electricity-business.json"), "en")
    text, lines = squash(pdf_text(content)), rows(content)
    assert has_row(lines, "INVOICE") and has_row(lines, "AMOUNT TO PAY")
    assert has_row(lines, "€2,899.95") and has_row(lines, "Pay by 30 Nov 2026")
    assert has_row(lines, "Billing period 1 Oct 2026 – 31 Oct 2026")
    assert "Your payment must quote the invoice number E2611-00125 and the contract " \
           "number 200987654" in text
    assert "more than one business day" in text
    assert has_row(lines, "12,840 kWh 0.1389 21% 1,783.48")
    assert has_row(lines, "Amount due €2,899.95")
    assert "VAT No. LV40103987654" in text  # the buyer's VAT number
    assert has_row(lines, "Page 1 of 1")
    for latvian in ("Summa apmaksai", "Lapa", "Rēķina numurs"):
        assert latvian not in text


def test_paper_invoice_fee_is_a_document_level_charge(gw: Gateway,
                                                      completed: Completed) -> None:
    lines = rows(render(gw, completed("electricity-paper.json"), "lv"))
    assert has_row(lines, "Papīra rēķina maksa (2,50 EUR ar PVN) 21% 2,07")
    assert has_row(lines, "Pakalpojumi kopā bez PVN 37,10 €")
    assert has_row(lines, "Citi maksājumi 2,07 €")
    assert has_row(lines, "Summa apmaksai 47,40 €")


def test_credit_note_has_no_payment_request(gw: Gateway, completed: Completed) -> None:
    content = render(gw, completed("credit-note.json"), "lv")
    text, lines = squash(pdf_text(content)), rows(content)
    assert has_row(lines, "KREDĪTRĒĶINS") and "K2611-00007" in text
    assert has_row(lines, "Summa kredītā 8,80 €")
    assert has_row(lines, "Koriģē rēķinu E2611-00123 (04.11.2026)")
    assert "maksājums nav jāveic" in text
    assert "Skenējiet" not in text and "Apmaksāt līdz" not in text
    assert "Konts (IBAN)" not in text  # the seller's account would invite a payment


def test_same_invoice_gives_the_same_bytes(gw: Gateway, completed: Completed) -> None:
    invoice = completed()
    assert render(gw, invoice, "lv") == render(gw, invoice, "lv")
    assert render(gw, invoice, "lv") != render(gw, invoice, "en")


def test_long_invoice_flows_over_pages_with_every_line_once(gw: Gateway,
                                                            completed: Completed) -> None:
    def many_lines(data: dict[str, Any]) -> None:
        data["lines"] = [
            {"id": str(i), "quantity": "2", "unit": "KWH", "price": {"net": "0.10"},
             "vat": {"category": "S", "rate": "21"},
             "item": {"name": f"Objekts Nr. {i:04d} patēriņš"}}
            for i in range(1, 201)
        ]

    invoice = completed(edit=many_lines)
    content = render(gw, invoice, "lv")
    pages = page_texts(content)
    assert 5 <= len(pages) <= 9
    text = squash(pdf_text(content))
    for i in range(1, 201):
        assert text.count(f"Objekts Nr. {i:04d} patēriņš") == 1, i
    for number, page in enumerate(pages, start=1):
        flat = squash(page)
        assert f"Lapa {number} no {len(pages)}" in flat
        # The table header repeats on every page that carries lines.
        if "Objekts Nr." in flat:
            assert "Pakalpojums Daudzums Mērv. Cena PVN Summa bez PVN" in flat
    assert "48,40 €" in squash(pages[0])  # 200 × 0.20 + 21 %, in the payment box
    assert "Kopā ar PVN 48,40 €" in squash(pages[-1])


def test_invoice_text_is_text_not_markup(gw: Gateway, completed: Completed) -> None:
    def hostile(data: dict[str, Any]) -> None:
        data["lines"][0]["item"]["name"] = '<img src="/x.png"> <b>Bold & "quoted"</b>'
        data["notes"] = [{"text": "<style>body { display: none }</style>Piezīme"}]

    text = squash(pdf_text(render(gw, completed(edit=hostile), "lv")))
    assert '<img src="/x.png"> <b>Bold & "quoted"</b>' in text
    assert "<style>body { display: none }</style>Piezīme" in text


def test_templates_cannot_reach_the_network(gateway_factory: Callable[..., Gateway],
                                            completed: Completed, tmp_path: Path) -> None:
    import socket

    # A listening socket completes TCP handshakes by itself: any attempt to fetch the
    # image would be waiting in its backlog after the rendering.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = server.getsockname()[1]
    branding = tmp_path / "data" / "branding"
    branding.mkdir(parents=True)
    (branding / "invoice.html").write_text(
        '{% extends "default/invoice.html" %}{% block extra %}'
        f'<img src="http://127.0.0.1:{port}/pixel.png">{{% endblock %}}', encoding="utf-8")
    gw = gateway_factory(config='[plugins.pdf]\ntemplate_dir = "branding"\n')
    try:
        content = render(gw, completed(), "lv")
        server.setblocking(False)
        with pytest.raises(BlockingIOError):
            server.accept()  # nobody connected: the image was refused, not fetched
    finally:
        server.close()
    assert has_row(rows(content), "Summa apmaksai 78,72 €")


def test_unknown_language_falls_back_to_english(gw: Gateway, completed: Completed) -> None:
    lines = rows(render(gw, completed(), "de"))
    assert has_row(lines, "AMOUNT TO PAY") and has_row(lines, "Amount due €78.72")


# ------------------------------------------------------------------ configuration


def test_template_override_by_configuration(gateway_factory: Callable[..., Gateway],
                                            completed: Completed, tmp_path: Path) -> None:
    branding = tmp_path / "data" / "branding"
    (branding / "messages").mkdir(parents=True)
    (branding / "invoice.html").write_text(
        '{% extends "default/invoice.html" %}\n'
        '{% block extra %}<p class="promo">Pārejiet uz e-rēķinu: ietaupiet 2,50 EUR!</p>'
        '{% endblock %}\n', encoding="utf-8")
    (branding / "invoice.css").write_text(".promo { color: var(--accent); }\n",
                                          encoding="utf-8")
    (branding / "messages" / "lv.toml").write_text('[title]\ninvoice = "Elektrības rēķins"\n',
                                                   encoding="utf-8")
    (branding / "logo.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="40">'
        '<rect width="200" height="40" fill="#00594f"/>'
        '<text x="10" y="28" font-size="20" fill="#fff">LOGO-TEXT</text></svg>',
        encoding="utf-8")
    gw = gateway_factory(config='[plugins.pdf]\ntemplate_dir = "branding"\n'
                                'logo = "branding/logo.svg"\naccent_color = "#00594f"\n')
    text = squash(pdf_text(render(gw, completed(), "lv")))
    assert "Pārejiet uz e-rēķinu: ietaupiet 2,50 EUR!" in text
    assert "ELEKTRĪBAS RĒĶINS" in text  # overridden label, upper-cased by the CSS
    assert "Summa apmaksai 78,72 €" in text  # everything else still from the catalogue
    assert "LOGO-TEXT" in text  # the SVG logo is drawn as vector text
    # A customer's format options override the configuration, e.g. the brand line.
    other = squash(pdf_text(render(gw, completed(), "en", logo=None,
                                   brand="Daugavas Elektrība — Business")))
    assert "Daugavas Elektrība — Business" in other and "LOGO-TEXT" not in other


@pytest.mark.parametrize(("config", "expected"), [
    ('accent_color = "red"', "accent_color"),
    ('template_dir = "nowhere"', "template_dir"),
    ('logo = "missing.png"', "logo"),
    ('colour = "#fff"', "colour"),
])
def test_bad_configuration_names_the_setting(gateway_factory: Callable[..., Gateway],
                                             config: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        gateway_factory(config=f"[plugins.pdf]\n{config}\n")
    assert "[plugins.pdf]" in str(info.value) and expected in str(info.value)


# ------------------------------------------------------------------ catalogues, locale, QR


def test_catalogues_have_the_same_keys() -> None:
    def keys(data: dict[str, Any], prefix: str = "") -> set[str]:
        out = set()
        for key, value in data.items():
            out |= keys(value, f"{prefix}{key}.") if isinstance(value, dict) \
                else {prefix + key}
        return out

    catalogues = {p.stem: keys(tomllib.loads(p.read_text(encoding="utf-8")))
                  for p in MESSAGES_DIR.glob("*.toml")}
    assert set(catalogues) == {"en", "lv"}
    assert catalogues["en"] == catalogues["lv"]


def test_template_has_no_hard_coded_labels() -> None:
    import re

    template = (MESSAGES_DIR.parent / "templates" / "invoice.html").read_text(encoding="utf-8")
    body = re.sub(r"<style>.*?</style>|\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}|<[^>]+>", " ",
                  template, flags=re.S)
    words = [w for w in body.split() if any(c.isalpha() for c in w)]
    assert words == []  # nothing but markup, punctuation and catalogue look-ups


def test_locale_formatting() -> None:
    lv, en = load_messages("lv"), load_messages("en")
    assert lv.money(Decimal("1234.56"), "EUR") == "1\u00a0234,56\u00a0€"
    assert en.money(Decimal("1234.56"), "EUR") == "€1,234.56"
    assert lv.date(dt.date(2026, 11, 30)) == "30.11.2026"
    assert en.date(dt.date(2026, 11, 30)) == "30 Nov 2026"
    assert lv.price(Decimal("0.1389")) == "0,1389" and lv.price(Decimal("8.4")) == "8,40"
    assert lv.quantity(Decimal("12840")) == "12\u00a0840"
    assert lv.unit("KWH") == "kWh" and en.unit("MON") == "month" and en.unit("XYZ") == "XYZ"


def test_epc_payload_carries_iban_amount_and_reference() -> None:
    payload = epc_payload(name="Daugavas Elektrība AS", iban="LV62 HABA 0551 2345 6789 0",
                          amount=Decimal("78.72"), currency="EUR",
                          reference="Rekins E2611-00123 ligums 100234567", bic="HABALV22")
    assert payload == ("BCD\n002\n1\nSCT\nHABALV22\nDaugavas Elektrība AS\n"
                       "LV62HABA0551234567890\nEUR78.72\n\n\n"
                       "Rekins E2611-00123 ligums 100234567")
    structured = epc_payload(name="X", iban="LV62HABA0551234567890", amount=Decimal("1"),
                             currency="EUR", reference="RF18 5390 0754 7034")
    assert structured is not None and structured.endswith("EUR1.00\n\nRF18539007547034")
    assert is_creditor_reference("RF18 5390 0754 7034")
    assert not is_creditor_reference("RF19 5390 0754 7034")


@pytest.mark.parametrize("change", [
    {"currency": "USD"}, {"amount": Decimal("0")}, {"iban": "LV62HABA0551234567891"},
    {"reference": "x" * 141}, {"name": "n" * 71},
])
def test_no_epc_code_when_a_bank_would_refuse_it(change: dict[str, Any]) -> None:
    args: dict[str, Any] = {"name": "Daugavas Elektrība AS", "iban": "LV62HABA0551234567890",
                            "amount": Decimal("10.00"), "currency": "EUR", "reference": "R1"}
    assert epc_payload(**args) is not None
    assert epc_payload(**{**args, **change}) is None


def test_harfbuzz_check_warns_loudly_when_missing(monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    from plugins.pdf import health

    assert health.harfbuzz_subset_available()  # this machine has libharfbuzz-subset0
    monkeypatch.setattr(health, "_NAMES", ("libno-such-harfbuzz.so.0",))
    monkeypatch.setattr(health.ctypes.util, "find_library", lambda name: None)
    assert not health.harfbuzz_subset_available()
    health.check_once.cache_clear()
    try:
        with caplog.at_level("WARNING", logger="gateway.pdf"):
            assert health.check_once() is False
            health.check_once()
        warnings = [r for r in caplog.records if "libharfbuzz-subset" in r.getMessage()]
        assert len(warnings) == 1  # once per process, not per invoice
        assert warnings[0].levelname == "WARNING"
        assert "apt-get install libharfbuzz-subset0" in warnings[0].getMessage()
    finally:
        health.check_once.cache_clear()


# ------------------------------------------------------------------ through the CLI and push


@pytest.fixture
def pdf_plugins_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Load only the plugins these CLI tests use, so that another plugin still being
    written cannot break them (request it before ``run_cli``)."""
    monkeypatch.setenv("GATEWAY_LOAD_PLUGINS", "json,folder,pdf,xml")


def test_cli_render_writes_a_pdf(pdf_plugins_only: None, run_cli: Callable[..., Any],
                                 examples_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    result = run_cli("render", str(examples_dir / "electricity-household.json"),
                     "-f", "pdf", "--language", "lv", "-o", str(out))
    assert result.exit_code == 0, result.output
    content = (out / "E2611-00123.pdf").read_bytes()
    assert page_count(content) == 1
    assert has_row(rows(content), "Summa apmaksai 78,72 €")
    assert not [p for p in out.iterdir() if p.name != "E2611-00123.pdf"]  # no temp files


def test_push_archives_the_pdf_in_the_customers_language(gw: Gateway,
                                                         completed: Completed) -> None:
    add_customer(gw, language="lv", formats=["json", "pdf"])
    result = gw.push(completed(), source="test")
    assert result.status == "accepted", result.error
    assert result.documents == ("E2611-00123.json", "E2611-00123.pdf")
    record = next(d for d in gw.store.documents(result.invoice_id) if d.format == "pdf")
    content = gw.archive.get(record.sha256)
    assert record.media_type == "application/pdf" and record.size == len(content)
    assert has_row(rows(content), "Summa apmaksai 78,72 €")


def test_pdf_cannot_be_read_back(gw: Gateway) -> None:
    from gateway.errors import InputError

    fmt = gw.plugins.formats.get("pdf")
    assert fmt.can_parse is False
    with pytest.raises(InputError, match="only a Factur-X"):
        list(fmt.parse(b"%PDF-1.7\n", "x.pdf"))


# ------------------------------------------------------------------ any valid invoice renders


LATVIAN = "aābcčdeēfgģhiījkķlļmnņoprsštuūvzžAĀBCČDEĒFGĢHIĪJKĶLĻMNŅOPRSŠTUŪVZŽ0123456789"


@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(st.text(alphabet=LATVIAN + " .,-/()&<>\"'€%", min_size=1,
                              max_size=160).filter(str.strip), min_size=1, max_size=12),
       cents=st.lists(st.integers(min_value=1, max_value=99_999_999), min_size=12,
                      max_size=12),
       language=st.sampled_from(["lv", "en"]))
def test_any_valid_invoice_renders_with_its_amount_due(
        gw: Gateway, completed: Completed, names: list[str], cents: list[int],
        language: str) -> None:
    def lines(data: dict[str, Any]) -> None:
        data["lines"] = [
            {"id": str(i + 1), "quantity": "1", "unit": "C62",
             "price": {"net": str(Decimal(cents[i]) / 100)},
             "vat": {"category": "S", "rate": "21"}, "item": {"name": name}}
            for i, name in enumerate(names)]

    invoice = completed(edit=lines)
    content = render(gw, invoice, language)
    text = squash(pdf_text(content))
    due = invoice.require_totals().amount_due
    assert squash(load_messages(language).money(due, "EUR")) in text
    # pdftotext reads a hyphen that ends a wrapped line as hyphenation and drops it;
    # pypdf keeps every character, so a name must be whole in one of the two readings.
    flat = text.replace(" ", "")
    every = squash(" ".join(page_texts(content))).replace(" ", "")
    for name in names:  # long words may wrap, but no character is lost
        wanted = squash(name).replace(" ", "")
        assert wanted in flat or wanted in every, name
