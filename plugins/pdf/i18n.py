"""Message catalogues and locale formatting for the PDF invoice.

One TOML catalogue per language in ``messages/``; an integrator's template directory
may hold ``messages/<lang>.toml`` with just the keys it wants to change. Numbers,
money and dates go through babel so that a Latvian bill reads ``1 234,56 €`` and
``30.11.2026`` and an English one ``€1,234.56`` and ``30 Nov 2026``.
"""

from __future__ import annotations

import datetime as dt
import functools
import tomllib
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal, parse_pattern

from gateway import PluginError

MESSAGES_DIR = Path(__file__).with_name("messages")
DEFAULT_LANGUAGE = "en"


def available_languages() -> list[str]:
    return sorted(p.stem for p in MESSAGES_DIR.glob("*.toml"))


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PluginError(f"pdf: message catalogue {path}: {exc}") from None


class Section(dict[str, Any]):
    """A catalogue section whose keys read as attributes in templates (``t.label.iban``).

    A missing key shows as ``[section.key]`` on the page instead of an empty cell, so
    a gap in an override catalogue is visible on the first proof print.
    """

    def __init__(self, name: str, data: Mapping[str, Any]) -> None:
        super().__init__({k: Section(f"{name}.{k}", v) if isinstance(v, Mapping) else v
                          for k, v in data.items()})
        self._name = name

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            return f"[{self._name}.{key}]"


# Number patterns do not depend on the language (the locale fills in the symbols):
# parsed once for all catalogues.
_AMOUNT = parse_pattern("#,##0.00")
_PRICE = parse_pattern("#,##0.00##")
_QUANTITY = parse_pattern("#,##0.###")
_PERCENT = parse_pattern("0.##")


class Messages:
    """The labels and formatting rules of one language."""

    def __init__(self, language: str, data: Mapping[str, Any]) -> None:
        self.language = language
        self.data = Section(language, data)
        meta = data.get("meta", {})
        self.locale: str = meta.get("locale", "en_IE")
        # Parsed once: babel would parse the identifier, and the currency pattern, again
        # for every number it formats (a page has about fifty).
        self._locale = Locale.parse(self.locale)
        self._currency_pattern = self._locale.currency_formats["standard"]
        self.date_format: str = meta.get("date_format", "yyyy-MM-dd")
        self.html_lang: str = meta.get("html_lang", language)

    def __getattr__(self, key: str) -> Any:
        return getattr(self.data, key)

    def money(self, amount: Decimal | None, currency: str) -> str:
        if amount is None:
            return ""
        return format_currency(amount, currency, format=self._currency_pattern,
                               locale=self._locale)

    def amount(self, amount: Decimal | None) -> str:
        """An amount without currency sign, two decimals, for table columns."""
        if amount is None:
            return ""
        return format_decimal(amount, format=_AMOUNT, locale=self._locale)

    def price(self, value: Decimal) -> str:
        """Unit prices keep up to four significant decimals (0,1389 €/kWh)."""
        return format_decimal(value, format=_PRICE, locale=self._locale)

    def quantity(self, value: Decimal) -> str:
        return format_decimal(value, format=_QUANTITY, locale=self._locale)

    def percent(self, value: Decimal | None) -> str:
        if value is None:
            return ""
        return format_decimal(value, format=_PERCENT, locale=self._locale) + "%"

    def date(self, value: dt.date | None) -> str:
        if value is None:
            return ""
        return format_date(value, self.date_format, locale=self._locale)

    def unit(self, code: str) -> str:
        units = self.data.get("units", {})
        return units.get(code, code)


@functools.lru_cache(maxsize=32)
def load_messages(language: str, override_dir: str | None = None) -> Messages:
    """The catalogue for ``language`` (English when there is none), with overrides."""
    lang = language.lower().split("-")[0].split("_")[0] or DEFAULT_LANGUAGE
    path = MESSAGES_DIR / f"{lang}.toml"
    if not path.exists():
        lang, path = DEFAULT_LANGUAGE, MESSAGES_DIR / f"{DEFAULT_LANGUAGE}.toml"
    data = _read(path)
    if override_dir:
        extra = Path(override_dir) / "messages" / f"{lang}.toml"
        if extra.exists():
            data = _merge(data, _read(extra))
    return Messages(lang, data)


@functools.lru_cache(maxsize=1)
def note_markers() -> tuple[str, ...]:
    """Every language's ``payment.note_marker``: a note may be in another language."""
    return tuple(str(_read(p).get("payment", {}).get("note_marker", ""))
                 for p in sorted(MESSAGES_DIR.glob("*.toml")))
