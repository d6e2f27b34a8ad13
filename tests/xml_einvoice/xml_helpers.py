"""Helpers for the XML e-invoice tests: the two formats and the official example files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway import Finding, Invoice, RenderContext, load_invoice
from plugins.xml_einvoice import CiiFormat, UblFormat
from tests.conftest import EXAMPLES, STANDARDS

# ../shared/standards, or $GATEWAY_STANDARDS_DIR (the same place the standards_dir fixture uses)
OFFICIAL = sorted((STANDARDS / "examples").glob("*/*.xml"))
EXAMPLE_JSON = sorted(EXAMPLES.glob("*.json"))

UBL = UblFormat()
CII = CiiFormat()
FORMATS = {"ubl": UBL, "cii": CII}


def fatal(findings: list[Finding]) -> list[str]:
    return [str(f) for f in findings if f.fatal]


def rules(findings: list[Finding]) -> set[str]:
    return {f.rule for f in findings if f.fatal}


def read(path: Path) -> Invoice:
    data = path.read_bytes()
    if path.suffix == ".json":
        return load_invoice(data, source=str(path))
    fmt = UBL if UBL.sniff(data[:4096], path.name) else CII
    return next(fmt.parse(data, str(path)))


def render(invoice: Invoice, name: str, **options: Any) -> bytes:
    return FORMATS[name].render(invoice, RenderContext(options=options))


def business_terms(invoice: Invoice) -> dict[str, Any]:
    """The invoice as comparable data: Decimals compare by value (19.00 == 19); BT-23/24
    are left out because each syntax fills in its own default when the input has none."""
    return invoice.model_dump(exclude={"extensions", "specification_id", "business_process"},
                              exclude_none=True)

