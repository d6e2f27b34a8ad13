"""Distributed chaos (see tests/distributed/chaos.py): 0 invoices lost, 0 duplicates.

Counted at the folder, SFTP and SMTP receivers, with workers killed, Redis restarted and
the database's connections dropped (and the server restarted). The CI-short round runs
here; the long rounds are marked slow.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.chaos.harness import available_channels
from tests.distributed.chaos import run_distributed_round
from tests.distributed.services import RedisServer, S3Server
from tests.pg_cluster import PostgresCluster

pytestmark = pytest.mark.skipif(
    "sftp-push" not in available_channels(),
    reason="needs OpenSSH's sshd and sftp-server (scripts/setup.sh installs them)")


def _check(report_dict: dict, tmp_path: Path) -> None:
    (tmp_path / "report.json").write_text(json.dumps(report_dict, indent=2))
    print(json.dumps(report_dict))  # the round's counts, for the log (-s / on failure)
    assert report_dict["problems"] == [], json.dumps(report_dict, indent=2)
    assert report_dict["verify_ok"]
    faults = report_dict["faults"]
    for kind in ("kill-worker", "kill-pool-process", "restart-redis", "drop-db-connections",
                 "restart-postgres"):
        assert faults.get(kind), (kind, faults)
    assert report_dict["db_connections_dropped"] > 0
    if report_dict["killed_by_smtp_server"]:  # stored, "250" never read: sent again
        assert report_dict["email_resent_same_message_id"] > 0
    for channel in ("folder", "sftp-push", "email"):
        assert report_dict["present"][channel] == report_dict["expected"][channel] > 0
        assert report_dict["duplicates"][channel] == 0
        assert report_dict["corrupt"][channel] == 0


def test_workers_killed_redis_restarted_and_database_dropped_lose_nothing_send_nothing_twice(
        tmp_path: Path, postgres_cluster: PostgresCluster, pg_store_url: str,
        redis: RedisServer, s3_env: S3Server, s3_bucket: str) -> None:
    """PostgreSQL + Redis + S3, three workers; folder, SFTP and e-mail receivers."""
    report = run_distributed_round(tmp_path, redis=redis, s3=s3_env, bucket=s3_bucket,
                                   seed=1, invoices=24, chaos_seconds=15,
                                   store_url=pg_store_url, postgres=postgres_cluster)
    _check(report.as_dict(), tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(2, 6))
def test_long_distributed_chaos(tmp_path: Path, postgres_cluster: PostgresCluster,
                                pg_store_url: str, redis: RedisServer, s3_env: S3Server,
                                s3_bucket: str, seed: int) -> None:
    report = run_distributed_round(tmp_path, redis=redis, s3=s3_env, bucket=s3_bucket,
                                   seed=seed, invoices=150, chaos_seconds=60,
                                   store_url=pg_store_url, postgres=postgres_cluster)
    _check(report.as_dict(), tmp_path)
