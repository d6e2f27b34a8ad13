"""A long-running process keeps flat memory: pushing 4N invoices costs no more resident
memory than pushing N (plus a generous margin), whatever the PDF engine.

Each measurement runs in a fresh subprocess, so nothing else the test session loaded
counts. Not a timing test: only resident set sizes are compared.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Pushes ``count`` distinct invoices (each its own number, amount and so its own QR
# code) for a customer that gets PDF + UBL + CSV, and prints the resident set size after
# a warm-up and at the end, in MiB.
PROBE = r"""
import copy, json, sys, tempfile
from decimal import Decimal
from pathlib import Path
import psutil
sys.path.insert(0, {repo!r})
from gateway import load_invoice
from gateway.core import Gateway, load_config
from gateway.plugins import get_plugin_manager
from tests.conftest import add_customer

warmup, count, engine = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
base = json.loads(Path({example!r}).read_text(encoding="utf-8"))
with tempfile.TemporaryDirectory() as work:
    data = Path(work)
    (data / "gateway.toml").write_text(f'[plugins.pdf]\nengine = "{{engine}}"\n')
    gw = Gateway(load_config(data), get_plugin_manager())
    add_customer(gw, formats=["pdf", "ubl", "csv"])
    process = psutil.Process()

    def push(i):
        raw = copy.deepcopy(base)
        raw["number"] = f"M{{i:06d}}"
        raw["lines"][0]["quantity"] = str(100 + i)
        result = gw.push(load_invoice(raw, source="probe"), source="probe")
        assert result.status == "accepted", result.error

    for i in range(warmup):
        push(i)
    after_warmup = process.memory_info().rss / 2**20
    for i in range(warmup, warmup + count):
        push(i)
    print(json.dumps({{"warm": after_warmup, "end": process.memory_info().rss / 2**20}}))
    gw.close()
"""


def _growth(engine: str, warmup: int, count: int) -> float:
    script = PROBE.format(repo=str(REPO),
                          example=str(REPO / "examples" / "electricity-household.json"))
    done = subprocess.run([sys.executable, "-c", script, str(warmup), str(count), engine],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return figures["end"] - figures["warm"]


@pytest.mark.parametrize("engine", [
    "typst",
    # The engine that leaked; about three minutes on a busy machine.
    pytest.param("weasyprint", marks=pytest.mark.slow),
])
def test_memory_does_not_grow_with_the_number_of_invoices(engine: str) -> None:
    # Before the fix, weasyprint kept ~3.5 MB per invoice (its image cache, shared across
    # invoices, held every QR code's SVG with the whole layout of its invoice): 60 more
    # invoices grew by ~210 MB. Allocator noise and warm caches stay well under 40 MB.
    n = 20
    grown_n = _growth(engine, n, n)
    grown_4n = _growth(engine, n, 4 * n)
    assert grown_4n < 40, (f"{engine}: resident memory grew {grown_4n:.0f} MiB over "
                           f"{4 * n} invoices ({grown_n:.0f} MiB over {n})")
    assert grown_4n - grown_n < 30, (f"{engine}: growth depends on the number of invoices: "
                                     f"{grown_n:.0f} MiB over {n}, {grown_4n:.0f} over {4 * n}")
