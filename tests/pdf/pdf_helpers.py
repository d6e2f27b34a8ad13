"""Read-back helpers of the PDF tests (imported by the test modules)."""

from __future__ import annotations

import io
import subprocess

from pypdf import PdfReader


def pdf_text(data: bytes, *, layout: bool = False) -> str:
    """The text of a PDF as poppler's pdftotext reads it (what a search or a screen
    reader finds), with line breaks inside table cells joined by spaces."""
    args = ["pdftotext", "-enc", "UTF-8", *(["-layout"] if layout else []), "-", "-"]
    done = subprocess.run(args, input=data, capture_output=True, check=True, timeout=60)
    return done.stdout.decode("utf-8")


def page_texts(data: bytes) -> list[str]:
    reader = PdfReader(io.BytesIO(data))
    return [page.extract_text() or "" for page in reader.pages]


def page_count(data: bytes) -> int:
    return len(PdfReader(io.BytesIO(data)).pages)


def squash(text: str) -> str:
    """Whitespace (including the no-break spaces babel puts in amounts) as one space."""
    return " ".join(text.replace("\u00a0", " ").replace("\u202f", " ").split())


def rows(data: bytes) -> list[str]:
    """Each visual line of the PDF (pdftotext -layout), whitespace squashed."""
    return [squash(line) for line in pdf_text(data, layout=True).splitlines() if line.strip()]


def has_row(lines: list[str], fragment: str) -> bool:
    """True when one visual line holds ``fragment`` (label and value side by side)."""
    return any(fragment in line for line in lines)
