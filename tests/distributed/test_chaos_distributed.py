"""Distributed chaos (see tests/distributed/chaos.py): 0 invoices lost, 0 duplicates.

The CI-short round runs here; the long rounds are marked slow.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.chaos.harness import available_channels
from tests.distributed.chaos import run_distributed_round
from tests.distributed.services import RedisServer, S3Server

pytestmark = pytest.mark.skipif(
    "sftp-push" not in available_channels(),
    reason="needs OpenSSH's sshd and sftp-server (scripts/setup.sh installs them)")


def _check(report_dict: dict, tmp_path: Path) -> None:
    (tmp_path / "report.json").write_text(json.dumps(report_dict, indent=2))
    assert report_dict["problems"] == [], json.dumps(report_dict, indent=2)
    assert report_dict["verify_ok"]
    assert sum(report_dict["faults"].values()) > 0


def test_workers_killed_and_redis_restarted_lose_nothing_and_send_nothing_twice(
        tmp_path: Path, pg_store_url: str, redis: RedisServer, s3_env: S3Server,
        s3_bucket: str) -> None:
    """PostgreSQL + Redis + S3, three workers."""
    report = run_distributed_round(tmp_path, redis=redis, s3=s3_env, bucket=s3_bucket,
                                   seed=1, invoices=24, chaos_seconds=15)
    _check(report.as_dict(), tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(2, 6))
def test_long_distributed_chaos(tmp_path: Path, pg_store_url: str, redis: RedisServer,
                                s3_env: S3Server, s3_bucket: str, seed: int) -> None:
    report = run_distributed_round(tmp_path, redis=redis, s3=s3_env, bucket=s3_bucket,
                                   seed=seed, invoices=150, chaos_seconds=60)
    _check(report.as_dict(), tmp_path)
