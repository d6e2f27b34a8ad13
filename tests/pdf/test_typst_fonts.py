"""The Typst engine embeds Liberation Sans without hinting, from copies cached once."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pikepdf
import pytest
from fontTools.ttLib import TTFont

from gateway import Invoice
from gateway.core.pipeline import Gateway
from plugins.pdf import typst_fonts

REGULAR = Path("/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf")
HINTING = {"fpgm", "prep", "cvt "}
needs_liberation = pytest.mark.skipif(not REGULAR.is_file(),
                                      reason="fonts-liberation is not installed")


def embedded_fonts(pdf: bytes) -> dict[str, TTFont]:
    fonts = {}
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        for obj in doc.objects:
            if isinstance(obj, pikepdf.Dictionary) and obj.get("/Type") == "/FontDescriptor":
                data = obj.get("/FontFile2").read_bytes()
                fonts[str(obj.get("/FontName")).split("+")[-1]] = TTFont(io.BytesIO(data))
    return fonts


@pytest.fixture
def fresh_font_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty font cache, and a font set that is looked up again."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    typst_fonts.font_set.cache_clear()
    yield cache / "invoice-gateway" / "fonts"
    typst_fonts.font_set.cache_clear()


@needs_liberation
def test_unhinted_keeps_outlines_metrics_and_names() -> None:
    original = TTFont(REGULAR)
    copy = TTFont(io.BytesIO(typst_fonts.unhinted(REGULAR.read_bytes())))
    assert HINTING & set(original.keys()) == HINTING
    assert not HINTING & set(copy.keys())
    assert copy["maxp"].maxSizeOfInstructions == 0
    for name in ("A", "g", "aring", "scaron", "Euro", "at"):
        before, after = original["glyf"][name], copy["glyf"][name]
        assert before.program.getBytecode()  # hinted in the system's file
        assert not getattr(after, "program", None) or not after.program.getBytecode()
        assert (after.getCoordinates(copy["glyf"])[0]
                == before.getCoordinates(original["glyf"])[0])
    assert copy["hmtx"].metrics == original["hmtx"].metrics
    assert copy.getBestCmap() == original.getBestCmap()
    assert copy["GPOS"].compile(copy) == original["GPOS"].compile(original)  # kerning
    assert copy["name"].getDebugName(4) == original["name"].getDebugName(4)
    assert copy["head"].modified == original["head"].modified  # no "made now" stamp


@needs_liberation
def test_typst_pdfs_embed_liberation_sans_without_hinting(
        gw: Gateway, completed: Callable[..., Invoice]) -> None:
    pdf = gw.render(completed(), "pdf", language="lv").content
    fonts = embedded_fonts(pdf)
    assert set(fonts) == {"LiberationSans", "LiberationSans-Bold"}
    for name, font in fonts.items():
        assert not HINTING & set(font.keys()), name
        assert font["maxp"].maxSizeOfInstructions == 0, name


@needs_liberation
def test_copies_are_made_once_and_follow_the_system_font(fresh_font_set: Path) -> None:
    typst_fonts.font_set()
    copies = sorted(fresh_font_set.glob("*/*.ttf"))
    assert {c.name for c in copies} == {"LiberationSans-Regular.ttf", "LiberationSans-Bold.ttf",
                                        "LiberationSans-Italic.ttf",
                                        "LiberationSans-BoldItalic.ttf"}
    stamps = {c: c.stat().st_mtime_ns for c in copies}
    typst_fonts.font_set.cache_clear()
    families: dict[tuple[str, int, str], str | None] = {}
    for f in typst_fonts.font_set().fonts():  # Typst takes the first of equal fonts
        families.setdefault((f.family, f.weight, f.style), f.path)
    assert {c: c.stat().st_mtime_ns for c in copies} == stamps  # not made again
    assert families[("Liberation Sans", 400, "normal")] == str(
        next(c for c in copies if c.name == "LiberationSans-Regular.ttf"))
    assert str(families[("DejaVu Sans", 400, "normal")]).startswith("/usr/share/fonts")
    # Another file (an updated package) gets its own copy beside the old one.
    changed = fresh_font_set.parent / "LiberationSans-Regular.ttf"
    changed.write_bytes(REGULAR.read_bytes() + b"\0\0\0\0")
    made = typst_fonts.unhinted_copy(changed, fresh_font_set)
    assert made.parent not in {c.parent for c in copies}


@needs_liberation
def test_without_a_writable_cache_the_system_fonts_are_used(
        fresh_font_set: Path, caplog: pytest.LogCaptureFixture) -> None:
    fresh_font_set.parent.parent.mkdir(parents=True)
    fresh_font_set.parent.write_text("a file where the cache folder should be")
    with caplog.at_level(logging.WARNING, logger="gateway.pdf"):
        fonts = typst_fonts.font_set().fonts()
    regular = [f.path for f in fonts if (f.family, f.weight, f.style, f.stretch)
               == ("Liberation Sans", 400, "normal", 1.0)]
    assert regular == [str(REGULAR)]
    assert any("with its hinting" in r.getMessage() for r in caplog.records)
