"""Benchmark: reading the world's e-invoices (../shared/corpus), against the factur-x library.

    nice python3 bench/bench_read.py [--rounds 3]

Cases, each in a fresh interpreter so that its peak resident memory (VmHWM) is its own:

* ``extract gateway``: the embedded XML of every Factur-X / ZUGFeRD PDF of the corpus by
  ``plugins.pdf.facturx_read.extract`` (bounded inflate, truncation check, PDF/A and /AF
  container findings);
* ``extract factur-x``: the same PDFs by the peer, ``facturx.get_xml_from_pdf`` of PyPI
  ``factur-x`` with ``check_xsd=False`` (extraction only);
* ``validate corpus``: ``gateway validate``'s work for every corpus file (detect the format
  by root element, XSD + EN 16931 + Peppol where claimed, read into the model and
  complete), schemas compiled before timing. No offline peer does the same checks, so no
  peer figure.

Figures are CPU seconds of the benchmark process (the machine is shared; CPU time is the
fair measure), per file, and VmHWM. Writes bench/results/read.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from plugins.xml_einvoice.resources import standards_dir  # noqa: E402

CORPUS = standards_dir().parent / "corpus"
CASES = ("extract gateway", "extract factur-x", "validate corpus")


def _files(suffix: str | None = None) -> list[Path]:
    verdicts = json.loads((CORPUS / "verdicts.json").read_text(encoding="utf-8"))
    return [CORPUS / v["file"] for v in verdicts
            if suffix is None or v["file"].endswith(suffix)]


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_case(case: str, rounds: int) -> dict[str, float]:
    if case.startswith("extract"):
        pdfs = [p.read_bytes() for p in _files(".pdf")]
        if case == "extract gateway":
            from gateway.errors import InputError
            from plugins.pdf.facturx_read import extract

            def one(data: bytes) -> None:
                with contextlib.suppress(InputError):
                    extract(data, "bench.pdf")
        else:
            import logging

            import facturx

            logging.getLogger("factur-x").setLevel(logging.CRITICAL)

            def one(data: bytes) -> None:
                # the peer raises plain exceptions on files it cannot read
                with contextlib.suppress(Exception):
                    facturx.get_xml_from_pdf(data, check_xsd=False)
        work = pdfs
    else:
        from gateway.cli.invoices import _validate_file
        from gateway.core.config import load_config
        from gateway.core.pipeline import Gateway
        from gateway.plugins import get_plugin_manager
        from plugins.xml_einvoice.validation import validator

        validator().warm_up()
        gw = Gateway(load_config(Path(tempfile.mkdtemp())), get_plugin_manager())
        paths = _files()

        def one(path: Path) -> None:  # type: ignore[misc]
            _validate_file(gw, path)

        one(paths[0])
        work = paths  # type: ignore[assignment]
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(rounds):
        for item in work:
            one(item)  # type: ignore[arg-type]
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    n = len(work) * rounds
    return {"files": len(work), "rounds": rounds, "cpu_s": round(cpu, 3),
            "wall_s": round(wall, 3), "cpu_ms_per_file": round(1000 * cpu / n, 2),
            "files_per_cpu_s": round(n / cpu, 1), "peak_rss_mb": round(_peak_mb(), 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--case", choices=CASES)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.rounds)))
        return 0
    if not (CORPUS / "verdicts.json").is_file():
        print(f"corpus not found at {CORPUS} (../shared/corpus)", file=sys.stderr)
        return 2
    results = {}
    for case in CASES:
        out = subprocess.run([sys.executable, __file__, "--case", case, "--rounds",
                              str(args.rounds if case != "validate corpus" else 1)],
                             check=True, capture_output=True, text=True)
        results[case] = json.loads(out.stdout.strip().splitlines()[-1])
        r = results[case]
        print(f"{case:18} {r['files']:4} files  {r['cpu_ms_per_file']:8.2f} CPU ms/file  "
              f"{r['files_per_cpu_s']:8.1f} files/CPU-s  peak {r['peak_rss_mb']:6.1f} MB")
    results["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count(),
                          "load_avg": os.getloadavg(), "shared": True}
    (REPO / "bench" / "results").mkdir(exist_ok=True)
    (REPO / "bench" / "results" / "read.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
