"""The fonts the Typst engine sees: the system's, with the built-in layout's family unhinted.

TrueType hinting (the ``fpgm``, ``prep`` and ``cvt`` tables and each glyph's instructions)
tells a rasteriser how to snap outlines to a screen's pixel grid. Typst embeds it in every
PDF, but a PDF is printed or zoomed, and viewers rarely run it. For Liberation Sans it is
half of every embedded subset: a one-page invoice was 61 KB instead of 43 KB, and deflating
the larger subsets cost about a twelfth of Typst's CPU per invoice. weasyprint embeds fonts
without hinting unless told otherwise, so the weasyprint engine's PDFs never carried it.

So the families in :data:`UNHINTED_FAMILIES` are given to Typst without hinting: the same
outlines, metrics, kerning and names, made once per machine with fontTools into the user's
cache folder (``$XDG_CACHE_HOME/invoice-gateway/fonts``, else ``~/.cache/...``), named by a
hash of the original file so that an updated system font gets a new copy. The copies are
written atomically (processes may make them at the same time) and keep the original's
timestamps, so the PDFs' bytes do not depend on when or where a copy was made.

Typst takes the first of two equal fonts it finds, and it finds the system's folders before
any folder it is given. The engine therefore hands it a font set without the system search:
the cache folder first, then the folders where the system search found fonts. When a copy
cannot be made (no fontTools, a read-only home), the original is used, with one warning.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import os
from pathlib import Path
from typing import Any

from gateway import atomic_write

log = logging.getLogger("gateway.pdf")

UNHINTED_FAMILIES = ("Liberation Sans",)
# The tables that only a rasteriser's hinting reads; glyph programs are emptied as well.
_HINTING_TABLES = ("fpgm", "prep", "cvt ", "hdmx", "LTSH", "VDMX")
# A font file larger than this is not copied (the Liberation faces are about 140 KB).
MAX_FONT_BYTES = 32 * 1024 * 1024


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "invoice-gateway" / "fonts"


def unhinted(data: bytes) -> bytes:
    """The font file ``data`` without its hinting; everything else is kept as it was."""
    from fontTools.ttLib import TTFont

    font = TTFont(io.BytesIO(data), recalcTimestamp=False, recalcBBoxes=False)
    if "glyf" not in font:  # CFF outlines carry no TrueType instructions
        return data
    for tag in _HINTING_TABLES:
        if tag in font:
            del font[tag]
    glyphs = font["glyf"]
    for name in font.getGlyphOrder():
        glyphs[name].removeHinting()
    limits = font["maxp"]
    for field in ("maxFunctionDefs", "maxInstructionDefs", "maxStackElements",
                  "maxSizeOfInstructions", "maxStorage", "maxTwilightPoints"):
        setattr(limits, field, 0)
    limits.maxZones = 1
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()


def unhinted_copy(source: Path, folder: Path) -> Path:
    """The cached unhinted copy of ``source`` (made now if it is missing)."""
    data = source.read_bytes()
    if len(data) > MAX_FONT_BYTES:
        raise ValueError(f"{source} is {len(data)} bytes, more than {MAX_FONT_BYTES}")
    digest = hashlib.sha256(data).hexdigest()[:16]
    target = folder / digest / source.name
    if not target.is_file():
        atomic_write(target, unhinted(data))
    return target


@functools.cache
def font_set() -> Any:
    """The ``typst.Fonts`` every Typst compiler of this process uses (found once)."""
    import typst

    system = [info for info in typst.Fonts(include_system_fonts=True,
                                           include_embedded_fonts=False).fonts()
              if info.path]
    folders = list(dict.fromkeys(str(Path(info.path).parent) for info in system))
    # Normal width only: the narrow faces share the family name, but no layout of ours
    # uses them. Single-font files only: a collection (.ttc) would need each face copied.
    sources = sorted({Path(info.path) for info in system
                      if info.family in UNHINTED_FAMILIES and info.stretch == 1.0
                      and info.index == 0 and Path(info.path).suffix.lower() == ".ttf"})
    made: list[str] = []
    for source in sources:
        try:  # any failure (no home folder, a read-only one): the system's font as it is
            made.append(str(unhinted_copy(source, cache_dir()).parent))
        except Exception as exc:
            log.warning("pdf: Typst embeds %s with its hinting: no unhinted copy (%s)",
                        source, exc, extra={"font": str(source)})
    return typst.Fonts(include_system_fonts=False, include_embedded_fonts=True,
                       font_paths=list(dict.fromkeys(made)) + folders)
