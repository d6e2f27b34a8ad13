"""CSV: spreadsheet-friendly export (one row per invoice line) and batch import.

The column specification is :mod:`plugins.csv.columns` and docs/csv.md. Two dialects,
chosen per customer (``format_options.csv.dialect``) or from the customer's language:
``lv`` (``;``, decimal comma) and ``en`` (``,``, decimal point); both UTF-8 with BOM,
RFC 4180 quoting, ISO dates.

For the portal's history export and other callers: :func:`export_many` (bytes) and
:func:`iter_export` (chunks, for streaming).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from gateway import Finding, Invoice, InvoiceRejected, RenderContext, hookimpl
from gateway.errors import ConfigError

from .columns import BY_NAME, COLUMNS, HEADER, Column
from .dialect import DIALECTS, Dialect
from .reader import CsvInvoices, open_bytes, open_path
from .writer import iter_csv

__all__ = ["COLUMNS", "HEADER", "Column", "CsvFormat", "Dialect", "export_many", "iter_export",
           "resolve_dialect"]


def resolve_dialect(dialect: str | Dialect | None = None, *, language: str = "en") -> Dialect:
    """``lv`` or ``en`` by name; with no name, the one that matches ``language``."""
    if isinstance(dialect, Dialect):
        return dialect
    if dialect is None or dialect == "":
        return DIALECTS["lv"] if language == "lv" else DIALECTS["en"]
    found = DIALECTS.get(str(dialect).lower())
    if found is None:
        raise ConfigError(f"csv: unknown dialect {dialect!r}; expected one of "
                          f"{', '.join(DIALECTS)}")
    return found


def iter_export(invoices: Iterable[Invoice], dialect: str | Dialect = "lv") -> Iterator[bytes]:
    """Many invoices as one CSV, in chunks: memory stays flat however many there are.

    The invoices should be completed (as the gateway stores them), so that the totals
    and line net amounts are filled in.
    """
    return iter_csv(invoices, resolve_dialect(dialect))


def export_many(invoices: Iterable[Invoice], dialect: str | Dialect = "lv") -> bytes:
    """Many invoices as one CSV file's bytes (BOM, header, one row per line)."""
    return b"".join(iter_export(invoices, dialect))


class CsvOptions(BaseModel):
    """A customer's CSV preferences (``format_options.csv``), checked when saved."""

    model_config = ConfigDict(extra="forbid")

    dialect: Literal["lv", "en"] | None = None


class CsvFormat:
    name: ClassVar[str] = "csv"
    media_type: ClassVar[str] = "text/csv"
    extension: ClassVar[str] = "csv"
    description: ClassVar[str] = ("CSV for Excel and LibreOffice, one row per invoice line "
                                  "(dialects lv and en); reads billing-system batches")
    can_parse: ClassVar[bool] = True
    can_validate: ClassVar[bool] = False
    Options: ClassVar[type[BaseModel]] = CsvOptions

    def __init__(self) -> None:
        self.default_dialect: str | None = None
        self.ignore_columns: frozenset[str] = frozenset()

    def configure(self, settings: Mapping[str, Any], data_dir: Path) -> None:
        """``[plugins.csv]`` in gateway.toml: ``dialect = "en"`` for customers with no
        preference; ``ignore_columns = ["internal_id"]`` for billing-system columns the
        import should skip (any other unknown column stops the file)."""
        dialect = settings.get("dialect")
        if dialect is not None:
            self.default_dialect = resolve_dialect(dialect).name
        ignore = settings.get("ignore_columns", [])
        if not isinstance(ignore, list) or not all(isinstance(n, str) for n in ignore):
            raise ConfigError("[plugins.csv] ignore_columns: expected a list of column names")
        clash = sorted(n for n in ignore if n.strip().lower() in BY_NAME)
        if clash:
            raise ConfigError(f"[plugins.csv] ignore_columns: {', '.join(clash)} are columns "
                              "of the specification, not extra ones")
        self.ignore_columns = frozenset(n.strip().lower() for n in ignore)

    def render(self, invoice: Invoice, context: RenderContext) -> bytes:
        dialect = resolve_dialect(context.options.get("dialect") or self.default_dialect,
                                  language=context.language)
        return b"".join(iter_csv([invoice], dialect))

    def sniff(self, head: bytes, filename: str) -> bool:
        if filename.lower().endswith(".csv"):
            return True
        # Without the extension, only a header with invoice_number as a column of its
        # own: a JSON or XML file that mentions the word is not a CSV.
        first = head.removeprefix(b"\xef\xbb\xbf").split(b"\n", 1)[0].lower()
        for delimiter in (b";", b","):
            cells = [c.strip().strip(b'"').strip() for c in first.split(delimiter)]
            if len(cells) > 1 and b"invoice_number" in cells:
                return True
        return False

    def parse(self, data: bytes, source: str) -> Iterator[Invoice | InvoiceRejected]:
        """Invoices from CSV bytes; see :meth:`parse_file` for the streaming path."""
        return iter(CsvInvoices(open_bytes(data, source), source,
                                ignore=self.ignore_columns))

    def parse_file(self, path: Path, source: str) -> Iterator[Invoice | InvoiceRejected]:
        """Invoices from a CSV file, read row by row: a 100,000-row batch needs no more
        memory than its largest invoice."""
        return iter(CsvInvoices(open_path(path), source, path, self.ignore_columns))

    def validate(self, data: bytes) -> list[Finding]:
        return []


@hookimpl
def gateway_register_formats(register: Any) -> None:
    register(CsvFormat())


@hookimpl
def gateway_register_commands(cli: Any) -> None:
    from .cli import register

    register(cli)
