"""Fixtures for the CSV plugin's tests: completed example invoices and CSV helpers."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway import Invoice, complete, load_invoice
from plugins.csv import CsvFormat
from tests.conftest import EXAMPLES

EXAMPLE_NAMES = ("electricity-household.json", "electricity-paper.json",
                 "electricity-business.json", "credit-note.json")


def completed_example(name: str) -> Invoice:
    data = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    return complete(load_invoice(data))


@pytest.fixture
def examples() -> list[Invoice]:
    return [completed_example(n) for n in EXAMPLE_NAMES]


@pytest.fixture
def fmt() -> CsvFormat:
    return CsvFormat()


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[..., Path]:
    """Write rows (lists of cells) as a ``;`` CSV with BOM, the way a billing system would."""
    import csv
    import io

    def write(header: list[str], rows: list[list[str]], name: str = "batch.csv",
              delimiter: str = ";", bom: bool = True) -> Path:
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
        writer.writerow(header)
        writer.writerows(rows)
        path = tmp_path / name
        path.write_bytes(b"\xef\xbb\xbf" * bom + buffer.getvalue().encode("utf-8"))
        return path

    return write
