"""Benchmark: what a hostile or careless input costs before it is refused.

    nice python3 bench/bench_limits.py

Each case runs in a fresh interpreter, so its CPU time and peak resident memory
(``ru_maxrss``) are its own. The inputs are made once into a temporary directory:

* ``json-60mb-lines``: a 60 MiB JSON invoice of ~240,000 lines (under the 64 MiB file
  limit), refused by ``limits.lines_per_invoice``; yardstick: Python's ``json.loads``
  of the same file, which any reader must at least do;
* ``json-10001-lines``: one line over the default line limit;
* ``json-200mb``: a 200 MB file, refused by ``limits.bytes_per_file`` before it is read;
* ``csv-200000-rows``: 200,000 line rows of one CSV invoice, refused by
  ``limits.rows_per_csv_invoice`` while streaming; yardstick: ``csv.reader`` over it;
* ``csv-validate-20000-invoices``: ``gateway validate`` of a CSV of 20,000 valid
  invoices (constant memory: one invoice at a time);
* ``pattern-bomb``: a saved file-name pattern ``{number:>200000000}`` (refused);
* ``push-N-lines``: an accepted invoice of N lines (1,000, the default limit, and 2,000)
  pushed to a customer who wants PDF, UBL and CSV: what the largest allowed invoice
  costs one API request.

Prints a table and writes bench/results/limits.json.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MEASURE = """
import resource, time, sys
sys.path.insert(0, {repo!r})
start = time.process_time()
{body}
cpu = time.process_time() - start
print("RESULT", cpu, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, repr(outcome))
"""

GATEWAY_READ = """
from pathlib import Path
from gateway.core.config import Config
from gateway.core.pipeline import Gateway
from gateway.errors import GatewayError
gw = Gateway(Config(data_dir=Path({data!r})))
try:
    items = list(gw.read_file(Path({path!r})))
    outcome = str(items[0])[:160] if len(items) == 1 else f"{{len(items)}} items"
except GatewayError as exc:
    outcome = str(exc)[:160]
"""


PUSH = """
import json
from pathlib import Path
from gateway.core import Customer, load_invoice
from gateway.core.config import Config
from gateway.core.limits import Limits
from gateway.core.pipeline import Gateway
gw = Gateway(Config(data_dir=Path({data!r}), limits=Limits(lines_per_invoice={lines})))
gw.store.put_customer(Customer.model_validate({{"id": "100234567", "name": "J",
    "formats": ["pdf", "ubl", "csv"], "match": ["C-100234567"]}}), actor="bench")
data = json.loads(Path("examples/electricity-household.json").read_text())
data["lines"] = [{{**data["lines"][0], "id": str(i + 1)}} for i in range({lines})]
data.pop("totals", None)
data.pop("vat_breakdown", None)
result = gw.push(load_invoice(data), source="bench")
outcome = f"{{result.status}} {{result.error or ''}}"[:160]
"""


def run(body: str) -> dict[str, Any]:
    script = MEASURE.format(repo=str(REPO), body=textwrap.dedent(body))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=REPO, check=False)
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT")), None)
    if line is None:
        raise SystemExit(done.stderr[-2000:])
    _, cpu, rss, outcome = line.split(" ", 3)
    return {"cpu_s": round(float(cpu), 2), "peak_rss_mib": round(float(rss)), "outcome": outcome}


def make_inputs(work: Path) -> dict[str, Path]:
    from tests.corpus.make_corpus import base_json, render

    paths = {}
    data = base_json()
    line = json.dumps(data["lines"][0])
    head, tail = json.dumps({**data, "lines": ["@"]}).split('"@"')
    path = work / "json-60mb-lines.json"
    with path.open("w", encoding="utf-8") as fh:
        fh.write(head)
        written = i = 0
        while written < 60 * 2**20:
            piece = ("," if i else "") + line
            fh.write(piece)
            written += len(piece)
            i += 1
        fh.write(tail)
    paths["json-60mb-lines"] = path
    path = work / "json-10001-lines.json"
    path.write_text(json.dumps({**data, "lines": [{**data["lines"][0], "id": str(i)}
                                                  for i in range(10_001)]}))
    paths["json-10001-lines"] = path
    path = work / "json-200mb.json"
    with path.open("wb") as fh:
        fh.write(b'{"number": "E1", "notes": [{"text": "')
        for _ in range(200):
            fh.write(b"x" * 2**20)
        fh.write(b'"}]}')
    paths["json-200mb"] = path
    csv_text = render("csv")
    csv_head, csv_row = csv_text.split(b"\n")[:2]
    path = work / "csv-200000-rows.csv"
    with path.open("wb") as fh:
        fh.write(csv_head + b"\n")
        for _ in range(200_000):
            fh.write(csv_row + b"\n")
    paths["csv-200000-rows"] = path
    header, *body = csv_text.split(b"\n")
    body = [b for b in body if b.strip()]
    path = work / "csv-20000-invoices.csv"
    with path.open("wb") as fh:
        fh.write(header + b"\n")
        for n in range(20_000):
            for row in body:
                fh.write(row.replace(b"E2611-00123", b"B%07d" % n) + b"\n")
    paths["csv-20000-invoices"] = path
    return paths


def main() -> None:
    results: dict[str, Any] = {"machine": f"{platform.node()} (2 cores, shared with other "
                               "engineers' work: CPU time, not wall time)", "cases": {}}
    with tempfile.TemporaryDirectory(prefix="bench-limits-") as tmp:
        work = Path(tmp)
        paths = make_inputs(work)
        data = str(work / "data")
        cases = {
            "json-60mb-lines": GATEWAY_READ.format(data=data, path=str(paths["json-60mb-lines"])),
            "json-60mb-lines (yardstick: json.loads)": f"""
                import json
                doc = json.loads(open({str(paths['json-60mb-lines'])!r}, 'rb').read())
                outcome = f"{{len(doc['lines'])}} lines parsed"
            """,
            "json-10001-lines": GATEWAY_READ.format(data=data,
                                                    path=str(paths["json-10001-lines"])),
            "json-200mb": GATEWAY_READ.format(data=data, path=str(paths["json-200mb"])),
            "csv-200000-rows": GATEWAY_READ.format(data=data, path=str(paths["csv-200000-rows"])),
            "csv-200000-rows (yardstick: csv.reader)": f"""
                import csv
                with open({str(paths['csv-200000-rows'])!r}, newline='') as fh:
                    outcome = f"{{sum(1 for _ in csv.reader(fh))}} rows read"
            """,
            "csv-validate-20000-invoices": f"""
                from click.testing import CliRunner
                from gateway.cli import cli
                r = CliRunner().invoke(cli, ["--data-dir", {data!r}, "validate",
                                             {str(paths['csv-20000-invoices'])!r}])
                outcome = f"exit {{r.exit_code}}: {{r.output.strip()[-80:]}}"
            """,
            "pattern-bomb": """
                from plugins.sftp.naming import check_pattern
                try:
                    check_pattern("{number:>200000000}")
                    outcome = "accepted"
                except ValueError as exc:
                    outcome = str(exc)[:160]
            """,
        }
        for lines in (1000, 2000):
            cases[f"push-{lines}-lines (pdf, ubl, csv)"] = PUSH.format(
                data=str(work / f"push-{lines}"), lines=lines)
        for name, body in cases.items():
            results["cases"][name] = run(body)
            r = results["cases"][name]
            print(f"{name:42} {r['cpu_s']:7.2f} s CPU {r['peak_rss_mib']:6} MiB  "
                  f"{r['outcome'][:90]}", flush=True)
    out = REPO / "bench" / "results" / "limits.json"
    out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
