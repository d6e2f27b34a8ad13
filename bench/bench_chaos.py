"""The long chaos run: many seeds, a large batch each, SIGKILL at random moments.

    python3 bench/bench_chaos.py                      # 20 rounds x 1,000 invoices
    python3 bench/bench_chaos.py --rounds 3 --invoices 200 --kills 8   # a quicker look

Each round pushes the batch to real receivers (folder, SMTP on 127.0.0.1 via aiosmtpd,
SFTP via OpenSSH's sshd on 127.0.0.1, whichever plugins are installed), kills
``gateway push`` / ``gateway deliver`` with SIGKILL, reruns until the outbox is empty
and counts at the receivers (see tests/chaos/harness.py). Prints a table and writes
bench/results/chaos.json. Exit code 1 when any round lost, corrupted or (outside
e-mail's documented window) duplicated anything.
"""

from __future__ import annotations

import argparse
import collections
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.chaos.harness import RoundReport, available_channels, run_round  # noqa: E402


def write_results(args: argparse.Namespace, channels: list[str], rounds: list[RoundReport],
                  started: float) -> dict[str, object]:
    """Totals over the rounds so far, written to the JSON file (after every round, so a
    long run that is stopped still leaves its figures)."""
    kills_by: collections.Counter[str] = collections.Counter()
    for r in rounds:
        kills_by.update(r.kills_by)
    total = {
        "rounds": len(rounds),
        "invoices_per_round": args.invoices,
        "invoices_pushed": sum(r.invoices for r in rounds),
        "channels": channels,
        "runs": sum(r.runs for r in rounds),
        "kills": sum(r.kills for r in rounds),
        "kills_by": dict(sorted(kills_by.items())),
        "deliveries_expected": sum(sum(r.expected.values()) for r in rounds),
        "invoices_lost": sum(r.invoices - r.invoices_stored for r in rounds),
        "deliveries_lost": sum(sum(r.lost.values()) for r in rounds),
        "deliveries_corrupt": sum(sum(r.corrupt.values()) for r in rounds),
        "duplicates_folder": sum(r.duplicates.get("folder", 0) for r in rounds),
        "duplicates_sftp": sum(r.duplicates.get("sftp-push", 0) for r in rounds),
        "duplicates_email": sum(r.duplicates.get("email", 0) for r in rounds),
        "email_received": sum(r.received.get("email", 0) for r in rounds),
        "email_unique": sum(r.unique.get("email", 0) for r in rounds),
        "hidden_temp_files_left": sum(sum(r.temp_left.values()) for r in rounds),
        "verify_failures": sum(1 for r in rounds if not r.verify_ok),
        "rounds_with_problems": sum(1 for r in rounds if r.problems),
        "seconds": round(time.monotonic() - started, 1),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({
        "benchmark": "chaos", "machine": platform.platform(), "python": platform.python_version(),
        "settings": vars(args) | {"output": str(args.output)}, "total": total,
        "rounds": [r.as_dict() for r in rounds]}, indent=2, default=str) + "\n")
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--invoices", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=10, help="SIGKILLs wanted per round")
    parser.add_argument("--files", type=int, default=20, help="batch files per round")
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "chaos.json")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()

    channels = available_channels()
    print(f"chaos: {args.rounds} rounds x {args.invoices} invoices, channels "
          f"{', '.join(channels)}, {args.kills} kills wanted per round", flush=True)
    header = (f"{'seed':>4} {'runs':>4} {'kills':>5} {'lost':>4} {'dup f/s':>7} "
              f"{'dup mail':>8} {'mail rcvd/uniq':>15} {'tmp left':>8} {'verify':>6} "
              f"{'s':>6}  problems")
    print(header)
    rounds = []
    started = time.monotonic()
    for seed in range(args.first_seed, args.first_seed + args.rounds):
        with tempfile.TemporaryDirectory(prefix=f"chaos-{seed}-") as work:
            report = run_round(Path(work), seed=seed, invoices=args.invoices, kills=args.kills,
                               files=args.files, channels=channels,
                               log=print if args.verbose else None)
        rounds.append(report)
        write_results(args, channels, rounds, started)
        lost = sum(report.lost.values()) + args.invoices - report.invoices_stored
        dup_files = report.duplicates.get("folder", 0) + report.duplicates.get("sftp-push", 0)
        mail = (f"{report.received.get('email', 0)}/{report.unique.get('email', 0)}"
                if "email" in channels else "-")
        print(f"{seed:>4} {report.runs:>4} {report.kills:>5} {lost:>4} {dup_files:>7} "
              f"{report.duplicates.get('email', 0):>8} {mail:>15} "
              f"{sum(report.temp_left.values()):>8} {'ok' if report.verify_ok else 'FAIL':>6} "
              f"{report.seconds:>6.0f}  {'; '.join(report.problems)[:120]}", flush=True)

    total = write_results(args, channels, rounds, started)
    print()
    for key, value in total.items():
        print(f"{key:>24}: {value}")
    print(f"\nwritten {args.output}")
    return 1 if total["rounds_with_problems"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
