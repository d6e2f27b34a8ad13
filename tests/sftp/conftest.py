"""Fixtures for the SFTP tests; the servers and clients are in sftp_servers.py."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sftp_servers import SSHD, OpenSshServer, RunningMailbox, keygen

from gateway.core import Gateway


@pytest.fixture(scope="session")
def client_keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("keys")
    return {name: keygen(d / name) for name in ("erp", "other", "stranger")}


@pytest.fixture
def sshd(tmp_path: Path, client_keys: dict[str, Path]) -> Iterator[OpenSshServer]:
    if not shutil.which("ssh-keygen") or not Path(SSHD).exists():
        pytest.fail("OpenSSH (openssh-server, openssh-client) is required; run scripts/setup.sh")
    server = OpenSshServer(tmp_path / "sshd", client_keys["erp"])
    server.start()
    yield server
    server.stop()


@pytest.fixture
def mailbox_server(tmp_path: Path) -> Iterator[Any]:
    """Start the gateway's SFTP server for a gateway: ``mailbox_server(gw)``."""
    started: list[RunningMailbox] = []

    def start(gw: Gateway) -> RunningMailbox:
        running = RunningMailbox(gw, tmp_path / f"mailbox{len(started)}")
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()
