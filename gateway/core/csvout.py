"""The one CSV writer: every CSV the gateway writes (the CSV format, the portal's
exports) goes through :class:`CsvWriter`, so no cell from an invoice opens as a formula.

A spreadsheet runs a cell that starts with ``= + - @``, a tab or a carriage return as a
formula (CWE-1236). Such a cell is written with a leading apostrophe, which spreadsheets
show as text; a cell that already starts with an apostrophe gets a second one, so that
:func:`restore` gives back exactly what was written. A plain number (``-12,50``) is left
alone: it is not a formula, and must stay a number.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any

FORMULA_TRIGGERS = frozenset("=+-@\t\r")
ESCAPE = "'"
_FIRST = FORMULA_TRIGGERS | {ESCAPE}
_PLAIN_NUMBER = re.compile(r"-?[0-9]+(?:[.,][0-9]+)?\Z")


def neutralise(text: str) -> str:
    if text and text[0] in _FIRST and not _PLAIN_NUMBER.match(text):
        return ESCAPE + text
    return text


def restore(cell: str) -> str:
    """The text :func:`neutralise` was given."""
    if len(cell) > 1 and cell[0] == ESCAPE and (cell[1] in FORMULA_TRIGGERS or cell[1] == ESCAPE):
        return cell[1:]
    return cell


class CsvWriter:
    """RFC 4180 rows (CRLF line ends, quoted where needed, quotes doubled) of neutralised
    cells, written to a text stream."""

    def __init__(self, stream: Any, *, delimiter: str = ",") -> None:
        self._writer = csv.writer(stream, delimiter=delimiter, quotechar='"',
                                  quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n",
                                  doublequote=True)

    def writerow(self, row: Iterable[str]) -> None:
        self._writer.writerow([neutralise(c) if c and c[0] in _FIRST else c for c in row])
