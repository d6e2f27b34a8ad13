"""Property-based tests (hypothesis) over the model and every parser.

* For valid invoices: ``parse(render(x)) == x`` in every format that can read what it
  writes (JSON, CSV, UBL, CII, Factur-X), and the model's own arithmetic holds.
* For any input: a parser raises nothing but the gateway's own error type, whether the
  input is random bytes, a valid document with a few bytes changed or cut off, or
  (JSON) a valid invoice with one field replaced by any JSON value.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gateway.core import complete, load_invoice
from gateway.core.config import Config
from gateway.core.model import Invoice
from gateway.core.pipeline import Gateway
from gateway.errors import GatewayError, InvoiceRejected

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "electricity-household.json"
BASE: dict[str, Any] = json.loads(EXAMPLE.read_text(encoding="utf-8"))
READABLE = ("json", "csv", "ubl", "cii", "facturx")
# Fields an XML syntax must carry, so its parser fills them in when the model left them
# empty; everything else must come back exactly.
SYNTAX_DEFAULTS = {"specification_id", "business_process"}


class _NoStore:
    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def gw() -> Gateway:
    return Gateway(Config(data_dir=Path("/nonexistent-properties")),
                   store=_NoStore())  # type: ignore[arg-type]


# --------------------------------------------------------------------------- strategies

LETTERS = "abcdefghijklmnoprstuvzāčēģīķļņšūžABCDEFGHIJKLMNOPRSTUVZĀČĒĢĪĶĻŅŠŪŽ"
words = st.lists(st.text(alphabet=LETTERS, min_size=1, max_size=10), min_size=1,
                 max_size=4).map(" ".join)


def decimals(low: str, high: str, places: int) -> st.SearchStrategy[str]:
    return st.decimals(Decimal(low), Decimal(high), places=places, allow_nan=False,
                       allow_infinity=False).map(lambda d: str(d.normalize()))


line = st.fixed_dictionaries({
    "quantity": decimals("0.001", "99999", 3),
    "unit": st.sampled_from(["KWH", "MON", "C62", "H87"]),
    "price": st.fixed_dictionaries({"net": decimals("0", "9999", 4)}),
    "vat": st.sampled_from([{"category": "S", "rate": "21"}, {"category": "S", "rate": "12"},
                            {"category": "S", "rate": "5"}]),
    "item": st.fixed_dictionaries({"name": words}),
})


@st.composite
def invoices(draw: st.DrawFn) -> Invoice:
    data = json.loads(json.dumps(BASE))
    data["number"] = draw(st.from_regex(r"[A-Z][A-Z0-9_/-]{0,18}[0-9]", fullmatch=True))
    issued = draw(st.dates(dt.date(2020, 1, 1), dt.date(2030, 12, 31)))
    data["issue_date"] = issued.isoformat()
    data["due_date"] = (issued + dt.timedelta(days=draw(st.integers(0, 60)))).isoformat()
    data["buyer"]["name"] = draw(words)
    lines = draw(st.lists(line, min_size=1, max_size=6))
    data["lines"] = [{**ln, "id": str(i + 1)} for i, ln in enumerate(lines)]
    try:
        return complete(load_invoice(data, source="hypothesis"), source="hypothesis")
    except InvoiceRejected:
        assume(False)  # e.g. a total beyond what the model allows
        raise


def comparable(invoice: Invoice) -> dict[str, Any]:
    dumped = invoice.model_dump(exclude_none=True)  # Decimals compare by value
    return {k: v for k, v in dumped.items() if k not in SYNTAX_DEFAULTS}


# --------------------------------------------------------------------------- round trips


def round_trip(gw: Gateway, invoice: Invoice, name: str) -> None:
    fmt = gw.plugins.formats.get(name)
    rendered = gw.render(invoice, name, validate=False).content
    items = list(fmt.parse(rendered, f"hypothesis.{fmt.extension}"))
    assert len(items) == 1 and isinstance(items[0], Invoice), items
    back = complete(items[0], source="round trip")
    assert comparable(back) == comparable(invoice)


@pytest.mark.parametrize("name", [n for n in READABLE if n != "facturx"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(invoice=invoices())
def test_parse_of_render_is_the_same_invoice(gw: Gateway, name: str, invoice: Invoice) -> None:
    round_trip(gw, invoice, name)


# A Factur-X PDF takes a second to lay out: a few examples are enough, as the XML
# inside is the CII already covered above.
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(invoice=invoices())
def test_parse_of_render_is_the_same_invoice_facturx(gw: Gateway, invoice: Invoice) -> None:
    round_trip(gw, invoice, "facturx")


@settings(max_examples=80, deadline=None)
@given(invoice=invoices())
def test_the_model_adds_up(invoice: Invoice) -> None:
    totals = invoice.require_totals()
    assert sum((ln.net_amount or Decimal(0) for ln in invoice.lines), Decimal(0)) \
        == totals.line_net_total
    assert totals.total_with_vat == totals.total_without_vat + (totals.vat_total or 0)
    assert sum((b.tax_amount for b in invoice.vat_breakdown), Decimal(0)) \
        == (totals.vat_total or 0)
    again = complete(invoice, source="again")
    assert again.model_dump() == invoice.model_dump()


# --------------------------------------------------------------------------- hostile bytes


def only_gateway_errors(gw: Gateway, name: str, data: bytes) -> None:
    fmt = gw.plugins.formats.get(name)
    try:
        for item in fmt.parse(data, f"fuzz.{fmt.extension}"):
            if isinstance(item, Invoice):
                complete(item, source="fuzz")
    except GatewayError:
        pass


@pytest.fixture(scope="module")
def rendered(gw: Gateway) -> dict[str, bytes]:
    invoice = complete(load_invoice(BASE, source="base"), source="base")
    return {name: gw.render(invoice, name, validate=False).content for name in READABLE}


@pytest.mark.parametrize("name", READABLE)
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=3000))
def test_random_bytes_raise_only_gateway_errors(gw: Gateway, name: str, data: bytes) -> None:
    only_gateway_errors(gw, name, data)


edits = st.lists(st.tuples(st.floats(0, 1), st.sampled_from(["flip", "insert", "delete"]),
                           st.binary(min_size=1, max_size=8)), min_size=1, max_size=6)


@pytest.mark.parametrize("name", READABLE)
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=edits, cut=st.one_of(st.none(), st.floats(0, 1)))
def test_damaged_documents_raise_only_gateway_errors(
        gw: Gateway, rendered: dict[str, bytes], name: str,
        changes: list[tuple[float, str, bytes]], cut: float | None) -> None:
    data = bytearray(rendered[name])
    for where, how, chunk in changes:
        at = int(where * (len(data) - 1))
        if how == "flip":
            data[at:at + len(chunk)] = chunk
        elif how == "insert":
            data[at:at] = chunk
        else:
            del data[at:at + len(chunk)]
    if cut is not None:
        del data[int(cut * len(data)):]
    only_gateway_errors(gw, name, bytes(data))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=12)


def leaf_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [path] + [p for k, v in value.items() for p in leaf_paths(v, (*path, k))]
    if isinstance(value, list):
        return [path] + [p for i, v in enumerate(value) for p in leaf_paths(v, (*path, i))]
    return [path]


PATHS = [p for p in leaf_paths(BASE) if p]


@settings(max_examples=150, deadline=None)
@given(where=st.sampled_from(PATHS), value=json_values)
def test_any_value_in_any_field_is_refused_by_name_or_accepted(
        where: tuple[Any, ...], value: Any) -> None:
    data = json.loads(json.dumps(BASE))
    target = data
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    text = json.dumps(data, allow_nan=True).encode()
    from plugins.json_format import JsonFormat

    def named(exc: InvoiceRejected) -> None:
        assert exc.findings, exc
        assert all(f.rule and f.message for f in exc.findings)
        assert "field.json" in str(exc)

    try:
        # A parser may yield a rejection for one invoice and go on with the next.
        for item in JsonFormat().parse(text, "field.json"):
            if isinstance(item, InvoiceRejected):
                named(item)
            else:
                complete(item, source="field.json")
    except InvoiceRejected as exc:
        named(exc)
    except GatewayError as exc:
        assert "field.json" in str(exc)
