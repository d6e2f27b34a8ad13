"""CSV rows → invoices, streamed: only the rows of the invoice being read are in memory.

Consecutive rows with the same ``invoice_number`` form one invoice. A bad invoice is
reported with the row and column of every problem and skipped as a whole; the
iteration then goes on with the next invoice.
"""

from __future__ import annotations

import contextlib
import csv
import difflib
import io
import re
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from gateway import Finding, InputError, Invoice, InvoiceRejected, complete, load_invoice
from gateway.core import VatCategory, limits, line_net_amount
from gateway.core.calc import compute_vat_breakdown, vat_key

from .columns import BY_NAME, INVOICE_COLUMNS, ROW_COLUMNS, ROW_TYPES, Column, Step
from .dialect import Dialect, dialect_for, looks_like_date, restore

RULE = "GW-CSV"
TOTALS_REQUIRED = ("line_net_total", "total_without_vat", "total_with_vat", "amount_due")
#: No line of a real batch comes near this; a longer one is an attack or a broken file,
#: and reading it whole would defeat the constant memory of streaming.
MAX_LINE_BYTES = 4 * 2**20
RECENT_NUMBERS = 10_000

Opener = Callable[[], TextIO]


def open_path(path: Path) -> Opener:
    # newline="" lets the csv module see line breaks inside quoted fields as data.
    return lambda: path.open(encoding="utf-8-sig", newline="")


def open_bytes(data: bytes, source: str) -> Opener:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not valid UTF-8 at byte {exc.start}; save the CSV as UTF-8",
                         source=source) from None
    return lambda: io.StringIO(text, newline="")


# --------------------------------------------------------------------------- header


class Header:
    """The columns of one file, in file order, with the lookups the reader needs per row."""

    def __init__(self, columns: tuple[Column | None, ...], dialect: Dialect) -> None:
        self.columns = columns  # None: a column the configuration says to ignore
        self.dialect = dialect
        known = [(i, c) for i, c in enumerate(columns) if c is not None]
        self.index = {c.name: i for i, c in known}
        self.invoice_level = [(i, c) for i, c in known if c.level == "invoice"]
        self.row_level = [(i, c) for i, c in known
                          if c.level == "row" and c.name != "row_type" and not c.derived]
        self.row_type_at = self.index.get("row_type")

    def has(self, name: str) -> bool:
        return name in self.index


def read_header(first_line: str, source: str, ignore: frozenset[str] = frozenset()) -> Header:
    """The header's columns and dialect; raises :class:`InputError` naming every unknown,
    repeated or missing column, since guessing would put data in the wrong field."""
    line = first_line.rstrip("\r\n")
    if not line.strip():
        raise InputError("row 1: expected a header row with column names such as "
                         "invoice_number, got an empty line", source=source)
    delimiter = sniff_delimiter(line)
    names = next(csv.reader([line], delimiter=delimiter, strict=True))
    cleaned = [n.strip().lower() for n in names]
    problems = []
    unknown = [n for n in cleaned if n not in BY_NAME and n not in ignore]
    for name in unknown:
        close = difflib.get_close_matches(name, BY_NAME, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        problems.append(f"unknown column {name!r}{hint}")
    if unknown:
        problems.append("a column the gateway should skip goes into ignore_columns of "
                        "[plugins.csv] in gateway.toml")
    repeated = sorted({n for n in cleaned if cleaned.count(n) > 1})
    if repeated:
        problems.append(f"repeated column(s) {', '.join(repeated)}")
    if "invoice_number" not in cleaned:
        problems.append("column invoice_number is missing")
    if problems:
        raise InputError("row 1 (header): " + "; ".join(problems) +
                         ". The columns are listed in docs/csv.md", source=source)
    return Header(tuple(BY_NAME.get(n) for n in cleaned), dialect_for(delimiter))


def sniff_delimiter(first_line: str) -> str:
    return ";" if first_line.count(";") >= first_line.count(",") and ";" in first_line else ","


# --------------------------------------------------------------------------- rows → invoices


@dataclass
class Row:
    number: int  # the row as a spreadsheet shows it: the header is row 1
    cells: list[str]


class InvoiceBuilder:
    """Builds one invoice from its rows and collects every problem with row and column."""

    def __init__(self, header: Header, rows: list[Row], source: str) -> None:
        self.header = header
        self.rows = rows
        self.source = source
        self.findings: list[Finding] = []
        self.number = rows[0].cells[header.index["invoice_number"]].strip() or None
        # Which row became which list item, to point findings back at the row.
        self.line_rows: list[int] = []
        self.ac_rows: dict[str, list[int]] = {"charges": [], "allowances": []}
        self.vat_rows: dict[Any, int] = {}
        self.vat_keys: dict[str, list[Any]] = {"lines": [], "charges": [], "allowances": []}

    # .............................................................. cells

    def problem(self, row: int, column: str | None, message: str, *,
                rule: str = RULE, term: str | None = None) -> None:
        where = f"row {row}, column {column}" if column else f"row {row}"
        if column and not self.header.has(column):
            message += " (the column is not in the file)"
        if term is None and column in BY_NAME and not BY_NAME[column].derived:
            bt = BY_NAME[column].term
            term = bt if bt.startswith("BT") else None
        self.findings.append(Finding(rule, where, message, term=term))

    def value(self, row: Row, column: Column) -> Any:
        return self.convert(row.number, column, row.cells[self.header.index[column.name]])

    def convert(self, row: int, column: Column, raw: str) -> Any:
        if not raw or not (raw := raw.strip()):
            return None
        kind = column.kind
        if kind == "text" or kind == "code":
            return restore(raw) if raw[0] == "'" else raw
        if kind == "date":
            if looks_like_date(raw):
                return raw  # pydantic checks that the day exists
            self.problem(row, column.name,
                         f"expected an ISO date YYYY-MM-DD, e.g. 2026-11-30, got {raw!r}")
            return None
        number = self.header.dialect.parse_number(raw)
        if number is None:
            self.problem(row, column.name,
                         f"expected {self.header.dialect.expected_number()}, got {raw!r}")
        return number

    # .............................................................. invoice

    def build(self) -> Invoice:
        first = self.rows[0]
        for row in self.rows:
            if len(row.cells) != len(self.header.columns):
                self.problem(row.number, None,
                             f"has {len(row.cells)} cells but the header has "
                             f"{len(self.header.columns)} columns (a missing delimiter or "
                             "an unquoted line break?)")
        if self.findings:
            raise self.rejected()
        if self.number is None:
            self.problem(first.number, "invoice_number",
                         "expected the invoice number, got an empty cell")
        data: dict[str, Any] = {"seller": {"address": {}}, "buyer": {"address": {}},
                                "lines": [], "charges": [], "allowances": []}
        invoice_level = self.header.invoice_level
        repeated = [first.cells[i] for i, _ in invoice_level]
        for row in self.rows[1:]:
            if [row.cells[i] for i, _ in invoice_level] != repeated:
                for i, column in invoice_level:
                    self._same_on_every_row(i, column)
                break
        for i, column in invoice_level:
            value = self.convert(first.number, column, first.cells[i])
            if value is not None:
                set_path(data, column.path, value)
        self._check_totals(first, data)
        reasons: dict[Any, tuple[str | None, str | None]] = {}
        for row in self.rows:
            self._add_row(row, data, reasons)
        if self.findings:
            raise self.rejected()
        invoice = self._validated(data)
        if invoice.totals is not None or any(r != (None, None) for r in reasons.values()):
            invoice = self._with_breakdown(invoice, reasons)
        try:
            complete(invoice)
        except InvoiceRejected as exc:
            for finding in exc.findings:
                self._relocate(finding)
            raise self.rejected() from None
        return invoice

    def rejected(self) -> InvoiceRejected:
        return InvoiceRejected(self.findings, invoice=self.number, source=self.source)

    def _same_on_every_row(self, i: int, column: Column) -> None:
        expected = self.rows[0].cells[i].strip()
        for row in self.rows[1:]:
            if row.cells[i].strip() != expected:
                self.problem(row.number, column.name,
                             f"expected the same value as on row {self.rows[0].number} "
                             f"({expected!r}), since every row of invoice {self.number} "
                             f"repeats it; got {row.cells[i].strip()!r}")
                return

    def _check_totals(self, first: Row, data: dict[str, Any]) -> None:
        given = data.get("totals")
        if not given:
            return
        missing = [c for c in TOTALS_REQUIRED if BY_NAME[c].path[1] not in given]
        if missing:
            self.problem(first.number, missing[0],
                         "expected a value: the totals line_net_total, total_without_vat, "
                         "total_with_vat and amount_due go together (give all or none; "
                         f"missing: {', '.join(missing)})")

    def _add_row(self, row: Row, data: dict[str, Any], reasons: dict[Any, Any]) -> None:
        at = self.header.row_type_at
        kind = (row.cells[at].strip().lower() if at is not None else "") or "line"
        if kind not in ROW_TYPES:
            self.problem(row.number, "row_type",
                         f"expected one of {', '.join(ROW_TYPES)} (or empty for line), "
                         f"got {kind!r}")
            return
        cells, number = row.cells, row.number
        values = {c.name: value for i, c in self.header.row_level
                  if (value := self.convert(number, c, cells[i])) is not None}
        if kind == "line":
            item: dict[str, Any] = {"price": {}, "vat": {}, "item": {}}
            for name, value in values.items():
                column = BY_NAME[name]
                if column.path:
                    set_path(item, column.path, value)
                elif name == "reason_code":
                    self.problem(row.number, name, "expected an empty cell: a reason code "
                                 "belongs to a charge or allowance row")
            self.line_rows.append(row.number)
            data["lines"].append(item)
            category, rate = item["vat"].get("category"), item["vat"].get("rate")
        else:
            ac: dict[str, Any] = {}
            for name, value in values.items():
                column = BY_NAME[name]
                if name.startswith("vat_exemption"):
                    continue
                if column.ac_path is None:
                    self.problem(row.number, name,
                                 f"expected an empty cell on a {kind} row (it is used on line "
                                 "rows only)")
                    continue
                if name == "line_net_amount" and kind == "allowance":
                    value = -value  # shown negative so that the column sums up
                set_path(ac, column.ac_path, value)
            plural = f"{kind}s"
            self.ac_rows[plural].append(row.number)
            data[plural].append(ac)
            category, rate = ac.get("vat_category"), ac.get("vat_rate")
        reason = (values.get("vat_exemption_reason"), values.get("vat_exemption_reason_code"))
        if category is not None:
            key = _key(category, rate)
            self.vat_rows.setdefault(key, row.number)
            self.vat_keys["lines" if kind == "line" else f"{kind}s"].append(key)
            previous = reasons.setdefault(key, reason)
            if previous != reason:
                self.problem(row.number, "vat_exemption_reason",
                             f"expected the same exemption reason and code as row "
                             f"{self.vat_rows[key]} (VAT category {category}, rate "
                             f"{rate}), got {reason[0]!r} / {reason[1]!r}")

    def _validated(self, data: dict[str, Any]) -> Invoice:
        for name in ("charges", "allowances"):
            if not data[name]:
                del data[name]
        try:
            return load_invoice(data)
        except InvoiceRejected as exc:
            for finding in exc.findings:
                self._relocate(finding)
            raise self.rejected() from None

    def _with_breakdown(self, invoice: Invoice, reasons: dict[Any, Any]) -> Invoice:
        """State the VAT breakdown, as the exporting gateway had it: computed from the
        rows, with the exemption reasons the rows carry (a CSV has no breakdown rows)."""
        nets = [line.net_amount if line.net_amount is not None else line_net_amount(line)
                for line in invoice.lines]
        breakdown = []
        for entry in compute_vat_breakdown(invoice, nets):
            reason, code = reasons.get(_key(entry.category, entry.rate), (None, None))
            breakdown.append(entry.model_copy(update={"exemption_reason": reason,
                                                      "exemption_reason_code": code}))
        return invoice.model_copy(update={"vat_breakdown": breakdown})

    # .............................................................. findings

    def _relocate(self, finding: Finding) -> None:
        """Point a model finding (``lines[2].price.net``) at its row and column."""
        row, column = self._locate(finding.path)
        self.problem(row, column, finding.message, rule=finding.rule, term=finding.term)

    def _locate(self, path: str) -> tuple[int, str | None]:
        first = self.rows[0].number
        match = _LIST_ITEM.match(path)
        if match:
            name, index, rest = match.group(1), int(match.group(2)), match.group(3)
            if name == "lines" and index < len(self.line_rows):
                return self.line_rows[index], _column_for(rest, _LINE_PATHS, "line_id")
            if name in self.ac_rows and index < len(self.ac_rows[name]):
                return self.ac_rows[name][index], _column_for(rest, _AC_PATHS, "item_name")
            if name == "vat_breakdown":
                column = "vat_exemption_reason" if "exemption" in rest else "vat_category"
                return self._vat_row(index), column
        if path == "vat_breakdown":
            return first, "vat_category"
        return first, _column_for(path, _INVOICE_PATHS, None)

    def _vat_row(self, index: int) -> int:
        # The breakdown lists keys as the core computes it: lines, charges, allowances.
        order = list(dict.fromkeys(self.vat_keys["lines"] + self.vat_keys["charges"] +
                                   self.vat_keys["allowances"]))
        if index < len(order):
            return self.vat_rows[order[index]]
        return self.rows[0].number


_LIST_ITEM = re.compile(r"(lines|charges|allowances|vat_breakdown)\[(\d+)\]\.?(.*)\Z")


def _key(category: Any, rate: Any) -> Any:
    try:
        return vat_key(VatCategory(category), Decimal(rate) if rate is not None else None)
    except ValueError:
        return (category, rate)


def _dotted(path: tuple[Step, ...]) -> str:
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else step)
    return out


_INVOICE_PATHS = {_dotted(c.path): c.name for c in INVOICE_COLUMNS} | {
    "seller": "seller_vat_id", "buyer": "buyer_name", "payment": "payment_means_code",
    "payment.credit_transfers": "iban", "seller.vat_id": "seller_vat_id",
    "lines": "line_id",
}
_LINE_PATHS = {_dotted(c.path): c.name for c in ROW_COLUMNS if c.path} | {
    "vat": "vat_category", "price": "price", "item": "item_name", "": "line_id",
}
_AC_PATHS = {_dotted(c.ac_path): c.name for c in ROW_COLUMNS if c.ac_path} | {
    "": "item_name", "vat_category": "vat_category",
}


def _column_for(path: str, paths: dict[str, str], default: str | None) -> str | None:
    if path in paths:
        return paths[path]
    for known, name in paths.items():  # a parent object: name its first column
        if known.startswith(path + ".") or known.startswith(path + "["):
            return name
    parent = path.rpartition(".")[0]
    while parent:
        if parent in paths:
            return paths[parent]
        parent = parent.rpartition(".")[0]
    return default


def set_path(data: dict[str, Any], path: tuple[Step, ...], value: Any) -> None:
    target: Any = data
    last = len(path) - 1
    for k in range(last):
        step = path[k]
        if isinstance(step, int):
            while len(target) <= step:
                target.append({})
            target = target[step]
            continue
        following = target.get(step)
        if following is None:
            following = target[step] = [] if isinstance(path[k + 1], int) else {}
        target = following
    target[path[last]] = value


# --------------------------------------------------------------------------- the stream


class CsvInvoices:
    """The invoices of one CSV input, each an :class:`Invoice` or, for a bad one, an
    :class:`InvoiceRejected` that names the row and column of every problem."""

    def __init__(self, opener: Opener, source: str, path: Path | None = None,
                 ignore: frozenset[str] = frozenset()) -> None:
        self.source = source
        self._opener = opener
        self._path = path
        self._ignore = ignore

    def __iter__(self) -> Iterator[Invoice | InvoiceRejected]:
        # Recent invoice numbers and their last row, to catch an invoice whose rows are
        # not together; bounded, so memory stays flat however long the file is.
        recent: OrderedDict[str, int] = OrderedDict()
        for header, rows, cut in self._read(self._opener):
            builder = InvoiceBuilder(header, rows, self.source)
            number = builder.number
            try:
                if cut:
                    limits.check_lines(len(rows) + cut, number=number,
                                       source=f"{self.source} row {rows[0].number}",
                                       setting="rows_per_csv_invoice", path="invoice_number")
                if number is not None and number in recent:
                    builder.problem(rows[0].number, "invoice_number",
                                    f"expected the rows of invoice {number} together: it "
                                    f"already ended at row {recent[number]}")
                    raise builder.rejected()
                yield builder.build()
            except InvoiceRejected as exc:
                yield exc
            if number is not None:
                recent[number] = rows[-1].number
                recent.move_to_end(number)
                if len(recent) > RECENT_NUMBERS:
                    recent.popitem(last=False)

    def _read(self, opener: Opener) -> Iterator[tuple[Header, list[Row], int]]:
        """Each invoice's header and rows, and how many rows past the limit were
        counted but not kept (one invoice's rows are all in memory at once)."""
        check_structure(opener, self.source, self._path, self._ignore)
        limit = limits.current().rows_per_csv_invoice
        with opener() as fh:
            first = fh.readline()
            header = read_header(first, self.source, self._ignore)
            reader = csv.reader(fh, delimiter=header.dialect.delimiter, strict=True)
            number_at = header.index["invoice_number"]
            rows: list[Row] = []
            cut = 0
            current: str | None = None
            for i, cells in enumerate(reader, start=2):
                if not any(c.strip() for c in cells):
                    continue
                key = cells[number_at].strip() if len(cells) > number_at else ""
                if rows and key != current:
                    yield header, rows, cut
                    rows, cut = [], 0
                current = key
                if len(rows) < limit:
                    rows.append(Row(i, cells))
                else:
                    cut += 1
            if rows:
                yield header, rows, cut


def check_structure(opener: Opener, source: str, path: Path | None = None,
                    ignore: frozenset[str] = frozenset()) -> None:
    """Read the whole file once, cheaply, before any invoice is handed out, so that a file
    that is not UTF-8 or not well-formed CSV imports nothing rather than a part."""
    row = 1
    data_rows = 0
    try:
        with _checked_lines(opener, source, path) as lines:
            first = next(lines, "")
            if not first:
                raise InputError("the file is empty; expected a header row and invoice rows",
                                 source=source)
            read_header(first, source, ignore)
            reader = csv.reader(lines, delimiter=sniff_delimiter(first), strict=True)
            for cells in reader:
                row += 1
                data_rows += any(c.strip() for c in cells)
        if not data_rows:
            raise InputError("no invoice rows follow the header", source=source)
    except csv.Error as exc:
        raise InputError(f"row {row + 1}: not well-formed CSV ({exc}); a quote inside a "
                         "field must be doubled and the field quoted", source=source) from None
    except OSError as exc:
        raise InputError(exc.strerror or str(exc), source=source) from None


@contextlib.contextmanager
def _checked_lines(opener: Opener, source: str, path: Path | None) -> Iterator[Iterator[str]]:
    if path is None:  # text already decoded (and checked) in memory
        with opener() as fh:
            yield iter(fh)
        return
    with path.open("rb") as fh:
        yield _decoded(fh, source)


def _decoded(fh: BinaryIO, source: str) -> Iterator[str]:
    # Line by line, so that an encoding error names the line it is on.
    number = 0
    carry = b""
    while chunk := fh.readline(MAX_LINE_BYTES + 1):
        # Split at a lone CR too, as the text reader does (old Mac line ends).
        pieces = (carry + chunk).splitlines(keepends=True)
        carry = b""
        if len(chunk) > MAX_LINE_BYTES:  # cut at the read limit: finish it next time
            carry = pieces.pop()
            if len(carry) > MAX_LINE_BYTES:
                raise InputError(f"line {number + 1} is longer than "
                                 f"{MAX_LINE_BYTES // 2**20} MiB; expected one CSV row per "
                                 "line", source=source)
        for raw in pieces:
            number += 1
            yield _decode(raw, number, source)
    if carry:
        yield _decode(carry, number + 1, source)


def _decode(raw: bytes, number: int, source: str) -> str:
    try:
        return raw.decode("utf-8-sig" if number == 1 else "utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"line {number}: not valid UTF-8 (byte {exc.start + 1} of the "
                         "line); save the CSV as UTF-8", source=source) from None

