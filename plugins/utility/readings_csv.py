"""Reading import from CSV: one reading a row, each row accepted or refused on its own.

Columns (header row required, any order; ``,`` or ``;`` separated, UTF-8 with or
without BOM)::

    metering_point,date,value[,meter_change,old_meter_final,new_meter_start,new_meter,by]

``date`` is 2026-10-28 or 28.10.2026; numbers take a decimal point or comma;
``meter_change`` is yes/no (1/0, true/false, jā/nē). ``by`` overrides who sent the row.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from gateway import first_error
from gateway.errors import InputError
from plugins.utility.models import Reading
from plugins.utility.store import ReadingOutcome, UtilityError, UtilityStore

REQUIRED = ("metering_point", "date", "value")
OPTIONAL = ("meter_change", "old_meter_final", "new_meter_start", "new_meter", "by")
TRUE = {"1", "yes", "true", "y", "jā", "ja", "x"}
FALSE = {"", "0", "no", "false", "n", "nē", "ne"}


@dataclass(frozen=True)
class RowResult:
    row: int  # line number in the file (the header is line 1)
    outcome: ReadingOutcome | None
    error: str | None = None


def _date(text: str) -> dt.date:
    text = text.strip()
    for fmt in ("%Y-%m-%d", "%d.%m.%Y"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"expected a date like 2026-10-28 or 28.10.2026 (got {text!r})")


def _number(text: str) -> Decimal:
    cleaned = text.strip().replace(" ", "").replace(",", ".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError(f"expected a number like 12345 or 12345,6 (got {text!r})") from None
    if not value.is_finite():
        raise ValueError(f"expected a number like 12345 (got {text!r})")
    return value


def _flag(text: str) -> bool:
    t = text.strip().lower()
    if t in TRUE:
        return True
    if t in FALSE:
        return False
    raise ValueError(f"expected yes or no (got {text!r})")


def parse_rows(data: bytes, source: str) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start})", source=source) from None
    first = text.splitlines()[0] if text.strip() else ""
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise InputError("empty file; expected a header row with "
                         f"{', '.join(REQUIRED)}", source=source) from None
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise InputError(f"header lacks column(s) {', '.join(missing)}; expected "
                         f"{', '.join(REQUIRED)} and optionally {', '.join(OPTIONAL)} "
                         f"(got {', '.join(header)})", source=source)
    unknown = [c for c in header if c not in REQUIRED + OPTIONAL]
    if unknown:
        raise InputError(f"unknown column(s) {', '.join(unknown)}; known: "
                         f"{', '.join(REQUIRED + OPTIONAL)}", source=source)
    rows = []
    for values in reader:
        if not any(v.strip() for v in values):
            continue
        rows.append((reader.line_num, dict(zip(header, values, strict=False))))
    return header, rows


def reading_from_row(row: dict[str, str], *, by: str, how: str) -> Reading:
    """A :class:`Reading` from CSV text; ValueError names the field and what was expected."""
    fields: dict[str, Any] = {"metering_point": row.get("metering_point", "").strip(),
                              "by": (row.get("by") or "").strip() or by, "how": how}
    converters = {"date": _date, "value": _number, "old_meter_final": _number,
                  "new_meter_start": _number, "meter_change": _flag}
    for name, convert in converters.items():
        raw = row.get(name)
        if raw is None or (raw.strip() == "" and name != "value" and name != "date"):
            continue
        try:
            fields[name] = convert(raw)
        except ValueError as exc:
            raise ValueError(f"field {name}: {exc}") from None
    if (row.get("new_meter") or "").strip():
        fields["new_meter"] = row["new_meter"].strip()
    try:
        return Reading.model_validate(fields)
    except ValidationError as exc:
        loc, msg = first_error(exc)
        raise ValueError(f"field {loc}: {msg}") from None


def import_csv(store: UtilityStore, data: bytes, *, source: str, by: str,
               today: dt.date | None = None, correction: str | None = None
               ) -> list[RowResult]:
    """Each row through :meth:`UtilityStore.add_reading`; ``today`` is the day the file
    arrived, ``correction`` an operator's reason for counting every row by its date."""
    if correction is not None:
        correction = correction.strip()
        if not 1 <= len(correction) <= 200:
            raise InputError("correction: expected the reason for correcting history, 1 to "
                             "200 characters", source=source)
    _, rows = parse_rows(data, source)
    results = []
    # One transaction for the file (one disk sync), a savepoint per row.
    with store.tx():
        for line, row in rows:
            try:
                reading = reading_from_row(row, by=by, how="csv")
                if correction:
                    reading = reading.model_copy(update={"correction": correction})
                results.append(RowResult(line, store.add_reading(reading, today=today)))
            except (ValueError, UtilityError) as exc:
                results.append(RowResult(line, None, f"{source} row {line}: {exc}"))
    return results
