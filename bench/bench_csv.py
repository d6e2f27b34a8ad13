"""Benchmark: CSV export and import, rows per second, against Python's csv module.

    python3 bench/bench_csv.py [--rows 100000] [--dialect lv]

The batch is the four example invoices (household, paper with its fee, business,
credit note) repeated under new numbers until it has ``--rows`` rows (about 3.5 rows
per invoice). Each case runs in a fresh interpreter, so that its peak resident memory
(VmHWM) is its own:

* export, gateway: completed invoices → ``plugins.csv.iter_export`` → file (cells
  formatted per dialect, formula triggers neutralised, streamed in chunks);
* export, yardstick: ``csv.writer`` writing the very same rows, already as strings,
  to a file — the ceiling for writing these rows from Python;
* import, gateway: ``CsvFormat.parse_file`` over that file → invoices (structure
  pre-check, per-cell parsing, pydantic model validation and the EN 16931 calculation
  rules for every invoice, errors mapped to row and column);
* import, yardstick: ``csv.reader`` over the same file, rows as lists of strings
  (no conversion, no validation);
* import, for scale: the same invoices as JSON through the gateway's JSON format,
  which reads a file whole (so the batch is cut into files of 5,000 invoices) and
  checks the model only (the rules run later, at push).

Prints a table and writes bench/results/csv.json.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

EXAMPLES = ("electricity-household.json", "electricity-paper.json",
            "electricity-business.json", "credit-note.json")
JSON_PART = 5000
CASES = ("export-gateway", "export-csv-module", "import-gateway", "import-csv-module",
         "import-json-format")


def peak_mb() -> float:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def templates() -> list[Any]:
    from gateway import complete, load_invoice

    return [complete(load_invoice(json.loads((REPO / "examples" / name).read_text("utf-8"))))
            for name in EXAMPLES]


def invoices(rows: int) -> Iterator[Any]:
    """Completed invoices, lazily, until ``rows`` rows are reached."""
    base = templates()
    sizes = [len(t.lines) + len(t.charges) + len(t.allowances) for t in base]
    made, n = 0, 0
    while made < rows:
        template = base[n % len(base)]
        n += 1
        made += sizes[(n - 1) % len(base)]
        yield template.model_copy(update={"number": f"B{n:07d}"})


def _count(rows: int, sizes: list[int]) -> int:
    made = n = 0
    while made < rows:
        made += sizes[n % len(sizes)]
        n += 1
    return n


def run_case(case: str, rows: int, dialect_name: str, path: Path) -> dict[str, Any]:
    from plugins.csv import CsvFormat, Dialect, iter_export, resolve_dialect
    from plugins.csv.columns import HEADER
    from plugins.csv.writer import invoice_rows

    dialect: Dialect = resolve_dialect(dialect_name)
    count_rows = count_invoices = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    if case == "export-gateway":
        sizes = [len(t.lines) + len(t.charges) + len(t.allowances) for t in templates()]
        batch = invoices(rows)
        started, cpu_started = time.perf_counter(), time.process_time()
        with path.open("wb") as fh:
            for chunk in iter_export(batch, dialect):
                fh.write(chunk)
        count_invoices = _count(rows, sizes)
        count_rows = sum(sizes[i % len(sizes)] for i in range(count_invoices))
    elif case == "export-csv-module":
        # The same cells as strings, made before the clock starts for each invoice's
        # template, so that only writing is measured.
        cells = [list(invoice_rows(t, dialect)) for t in templates()]
        number_at = HEADER.index("invoice_number")
        started, cpu_started = time.perf_counter(), time.process_time()
        with path.open("w", encoding="utf-8-sig", newline="") as fh:
            writer = csv.writer(fh, delimiter=dialect.delimiter, lineterminator="\r\n")
            writer.writerow(HEADER)
            n = 0
            while count_rows < rows:  # whole invoices, as the gateway export writes them
                n += 1
                for row in cells[(n - 1) % len(cells)]:
                    row[number_at] = f"B{n:07d}"
                    writer.writerow(row)
                    count_rows += 1
            count_invoices = n
    elif case == "import-gateway":
        for item in CsvFormat().parse_file(path, str(path)):
            if not hasattr(item, "lines"):
                raise SystemExit(f"import failed: {item}")
            count_invoices += 1
            count_rows += len(item.lines) + len(item.charges) + len(item.allowances)
    elif case == "import-json-format":
        # The same invoices through the gateway's JSON format, for scale. It reads each
        # file whole (and refuses files over 64 MiB), so the batch is cut into files of
        # JSON_PART invoices; it checks the model only (the rules run later, at push).
        from plugins.json_format import JsonFormat

        parts: list[Path] = []
        fh = None
        for i, invoice in enumerate(invoices(rows)):
            if i % JSON_PART == 0:
                if fh is not None:
                    fh.write("]")
                    fh.close()
                parts.append(path.with_suffix(f".{len(parts)}.json"))
                fh = parts[-1].open("w", encoding="utf-8")
                fh.write("[")
            fh.write(("," if i % JSON_PART else "") + invoice.model_dump_json(exclude_none=True))
        if fh is not None:
            fh.write("]")
            fh.close()
        started, cpu_started = time.perf_counter(), time.process_time()
        for part in parts:
            for item in JsonFormat().parse(part.read_bytes(), str(part)):
                count_invoices += 1
                count_rows += len(item.lines) + len(item.charges) + len(item.allowances)
        size = sum(part.stat().st_size for part in parts)
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        return {"case": case, "rows": count_rows, "invoices": count_invoices,
                "seconds": round(seconds, 3), "rows_per_s": round(count_rows / seconds),
                "cpu_seconds": round(cpu, 3), "rows_per_cpu_s": round(count_rows / cpu),
                "peak_rss_mb": round(peak_mb(), 1), "file_mb": round(size / 2**20, 1),
                "files": len(parts)}
    elif case == "import-csv-module":
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh, delimiter=dialect.delimiter)
            next(reader)
            numbers = set()
            for row in reader:
                count_rows += 1
                numbers.add(row[0])
            count_invoices = len(numbers)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    return {"case": case, "rows": count_rows, "invoices": count_invoices or None,
            "seconds": round(seconds, 3), "rows_per_s": round(count_rows / seconds),
            "cpu_seconds": round(cpu, 3), "rows_per_cpu_s": round(count_rows / cpu),
            "peak_rss_mb": round(peak_mb(), 1), "file_mb": round(path.stat().st_size / 2**20, 1)}


def child(case: str, rows: int, dialect: str, path: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--case", case, "--rows", str(rows), "--dialect", dialect,
         "--file", str(path)], capture_output=True, text=True, check=False, cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(f"{case} failed:\n{done.stderr}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dialect", choices=("lv", "en"), default="lv")
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "csv.json")
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.rows, args.dialect, args.file)))
        return 0

    with tempfile.TemporaryDirectory(prefix="bench-csv-") as work:
        ours, theirs = Path(work) / "gateway.csv", Path(work) / "csv-module.csv"
        results = [child("export-gateway", args.rows, args.dialect, ours),
                   child("export-csv-module", args.rows, args.dialect, theirs),
                   child("import-gateway", args.rows, args.dialect, ours),
                   child("import-csv-module", args.rows, args.dialect, ours),
                   child("import-json-format", args.rows, args.dialect, ours)]
        same = ours.read_bytes() == theirs.read_bytes()
    print(f"CSV benchmark: {args.rows:,} rows, dialect {args.dialect}; the csv module wrote "
          f"{'the same bytes' if same else 'DIFFERENT bytes'} as the gateway")
    print(f"{'case':<20} {'rows':>8} {'invoices':>8} {'seconds':>8} {'rows/s':>9} "
          f"{'inv/s':>7} {'rows/cpu-s':>10} {'peak RSS MB':>11} {'file MB':>7}")
    for r in results:
        inv_s = f"{r['invoices'] / r['seconds']:.0f}" if r["invoices"] else "-"
        print(f"{r['case']:<20} {r['rows']:>8,} {r['invoices'] or '-':>8} {r['seconds']:>8.2f} "
              f"{r['rows_per_s']:>9,} {inv_s:>7} {r['rows_per_cpu_s']:>10,} "
              f"{r['peak_rss_mb']:>11} {r['file_mb']:>7}")
    by = {r["case"]: r for r in results}
    # CPU seconds: steadier than wall time on a shared machine.
    ratios = {
        "export_vs_csv_module": round(by["export-gateway"]["rows_per_cpu_s"]
                                      / by["export-csv-module"]["rows_per_cpu_s"], 3),
        "import_vs_csv_module": round(by["import-gateway"]["rows_per_cpu_s"]
                                      / by["import-csv-module"]["rows_per_cpu_s"], 3),
    }
    print(f"gateway / csv module (rows per CPU second): export "
          f"{ratios['export_vs_csv_module']:.2f}, import {ratios['import_vs_csv_module']:.3f}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({
        "benchmark": "csv", "rows": args.rows, "dialect": args.dialect,
        "same_bytes_as_csv_module": same, "results": results, "ratios": ratios,
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": os.cpu_count(), "load_average": os.getloadavg()},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
