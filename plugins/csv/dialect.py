"""CSV dialects that spreadsheets open without an import dialog, and cell encoding.

Excel and LibreOffice pick the field separator and the decimal mark from the user's
locale: Latvian (like most of continental Europe) uses ``;`` and a decimal comma,
English uses ``,`` and a decimal point. A file that matches the locale opens with
numbers as numbers; one that does not opens as one column of text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from gateway.core.csvout import ESCAPE, FORMULA_TRIGGERS, neutralise, restore

BOM = "\ufeff"
__all__ = ["BOM", "DIALECTS", "ESCAPE", "FORMULA_TRIGGERS", "Dialect", "dialect_for",
           "looks_like_date", "neutralise", "restore"]


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str
    delimiter: str
    decimal: str
    example: str

    def number(self, value: Decimal) -> str:
        text = format(value, "f")
        return text.replace(".", ",") if self.decimal == "," else text

    def parse_number(self, cell: str) -> Decimal | None:
        """The number in ``cell``, or None when it is not one in this dialect."""
        match = (_COMMA_NUMBER if self.decimal == "," else _POINT_NUMBER).match(cell)
        if match is None:
            return None
        return Decimal(cell.replace(",", "."))

    def expected_number(self) -> str:
        mark = "decimal comma" if self.decimal == "," else "decimal point"
        return (f"a number with a {mark} and no thousands separator, e.g. {self.example} "
                f"({self.name} dialect)")


_COMMA_NUMBER = re.compile(r"-?[0-9]+(?:,[0-9]+)?\Z")
_POINT_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?\Z")

DIALECTS: dict[str, Dialect] = {
    "lv": Dialect("lv", ";", ",", "1234,56"),
    "en": Dialect("en", ",", ".", "1234.56"),
}


def dialect_for(delimiter: str) -> Dialect:
    return DIALECTS["lv"] if delimiter == ";" else DIALECTS["en"]


_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")


def looks_like_date(cell: str) -> bool:
    return _DATE.match(cell) is not None
