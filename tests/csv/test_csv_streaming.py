"""Streaming import: memory does not grow with the number of rows in a batch file."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import pytest

from gateway import Invoice
from plugins.csv import CsvFormat, export_many

REPO = Path(__file__).resolve().parents[2]


def write_batch(path: Path, invoice: Invoice, rows: int) -> Path:
    """A batch of ``rows`` rows: the invoice's rows again and again under new numbers."""
    exported = export_many([invoice], "lv").decode("utf-8")
    header, *body = exported.split("\r\n")
    body = [line for line in body if line]
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        fh.write(header.removeprefix("\ufeff") + "\r\n")
        written = 0
        n = 0
        while written < rows:
            n += 1
            for line in body[: rows - written]:
                fh.write(line.replace(invoice.number, f"B{n:07d}") + "\r\n")
                written += 1
    return path


def peak_while_parsing(path: Path) -> tuple[int, int]:
    tracemalloc.start()
    try:
        count = sum(1 for item in CsvFormat().parse_file(path, str(path))
                    if isinstance(item, Invoice))
        return count, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_peak_memory_does_not_grow_with_the_file(tmp_path: Path,
                                                 examples: list[Invoice]) -> None:
    household = examples[0]  # three lines per invoice
    small = write_batch(tmp_path / "small.csv", household, 300)
    large = write_batch(tmp_path / "large.csv", household, 3000)
    small_count, small_peak = peak_while_parsing(small)
    large_count, large_peak = peak_while_parsing(large)
    assert (small_count, large_count) == (100, 1000)
    assert large.stat().st_size > 2_000_000
    # Ten times the rows, about the same peak (allowing for allocator noise).
    assert large_peak < small_peak * 1.5 + 256 * 1024, (small_peak, large_peak)
    assert large_peak < large.stat().st_size / 4


@pytest.mark.slow
def test_a_100000_row_file_imports_in_constant_memory(tmp_path: Path,
                                                      examples: list[Invoice]) -> None:
    path = write_batch(tmp_path / "big.csv", examples[0], 100_000)
    size = path.stat().st_size
    assert size > 70_000_000
    # A fresh interpreter, so that the peak resident size belongs to this import alone.
    script = textwrap.dedent(f"""
        import resource, sys
        from pathlib import Path
        from plugins.csv import CsvFormat
        from gateway import Invoice
        items = iter(CsvFormat().parse_file(Path({str(path)!r}), "big.csv"))
        first = [next(items) for _ in range(300)]  # warm up: caches, validators
        warm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        count = len(first) + sum(1 for _ in items)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        bad = [x for x in first if not isinstance(x, Invoice)]
        print(count, warm, peak, len(bad))
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                          text=True, check=True, timeout=900)
    count, warm_kib, peak_kib, bad = map(int, done.stdout.split())
    assert count == 33_334 and bad == 0
    growth = (peak_kib - warm_kib) * 1024
    assert growth < 16 * 2**20, f"resident memory grew by {growth / 2**20:.1f} MiB"
    assert growth < size / 4
