"""Fixtures for the distributed set-up: an S3 server (SeaweedFS) per session, a bucket
per test, and the archive parametrized over the embedded folder and S3."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.core.archive import ArchiveBackend, FolderArchive
from gateway.core.archive_s3 import S3Archive
from tests.distributed.cluster import Cluster
from tests.distributed.services import RedisServer, S3Server, redis_server, seaweedfs


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """This process reaches the S3 server through the standard AWS variables."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    return s3_server


@pytest.fixture
def s3_bucket(s3_env: S3Server) -> str:
    name = f"t-{uuid.uuid4().hex[:16]}"
    s3_env.create_bucket(name)
    return name


@pytest.fixture(params=["folder", "s3"])
def archive_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """``[archive] url`` for each backend: a folder, and a fresh S3 bucket."""
    if request.param == "folder":
        return str(tmp_path / "archive-folder")
    bucket = request.getfixturevalue("s3_bucket")
    return f"s3://{bucket}/invoices"


@pytest.fixture
def archive(archive_url: str) -> ArchiveBackend:
    if archive_url.startswith("s3://"):
        return S3Archive.from_url(archive_url)
    return FolderArchive(Path(archive_url))


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh redis-server on a free loopback port (restartable on the same port)."""
    with redis_server(tmp_path / "redis") as server:
        yield server


@pytest.fixture
def cluster_factory(tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    made: list[Cluster] = []

    def make(**kwargs: Any) -> Cluster:
        cluster = Cluster(tmp_path / f"cluster{len(made)}", **kwargs)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        cluster.stop_workers(kill=True)


@pytest.fixture
def pg_store_url(postgres_cluster: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """The distributed set-up's store: a fresh PostgreSQL database, also named in
    GATEWAY_STORE_URL so that worker and CLI processes use it."""
    url: str = postgres_cluster.new_database()
    monkeypatch.setenv("GATEWAY_STORE_URL", url)
    return url
