"""Every text the templates ask for exists in Latvian and English."""

from __future__ import annotations

import re
from pathlib import Path

from plugins.portal import i18n

TEMPLATES = Path(i18n.__file__).parent / "templates"
SOURCES = Path(i18n.__file__).parent


def test_every_text_key_exists_in_both_languages() -> None:
    used: set[str] = set()
    for path in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"""\bt\(\s*["']([a-z_]+)["']""", path.read_text()))
    for path in SOURCES.glob("*.py"):
        text = path.read_text()
        used |= set(re.findall(r"""\b(?:fail|t|text)\(\s*["']([a-z_]+)["']""", text))
        used |= set(re.findall(r"""InvoiceStatus\(\s*["']([a-z_]+)["']""", text))
        used |= set(re.findall(r"""(?:message|error)=\(?\s*["']([a-z_]+)["']""", text))
    # "by_" + channel name is looked up with a fallback; invalid_token is an RFC 6750 code
    used -= {"error_text", "by_", "invalid_token"}
    assert used, "no text keys found: the pattern is broken"
    missing = sorted(k for k in used if k not in i18n.TEXTS)
    assert missing == []
    for key, (lv, en) in i18n.TEXTS.items():
        assert lv and en, key
        assert set(re.findall(r"\{(\w+)\}", lv)) == set(re.findall(r"\{(\w+)\}", en)), key


def test_formatting() -> None:
    assert i18n.money("1234.5", "EUR", "lv") == "1\xa0234,50\xa0€"
    assert i18n.money("1234.5", "EUR", "en") == "€1,234.50"
    assert i18n.date("2026-11-30", "lv") == "30.11.2026"
    assert i18n.date("2026-11-30", "en") == "30 Nov 2026"
    assert i18n.number("0.13890", "lv") == "0,1389"
    assert i18n.unit("KWH", "lv") == "kWh" and i18n.unit("MON", "en") == "month"
    assert i18n.unit("XYZ", "lv") == "XYZ"
