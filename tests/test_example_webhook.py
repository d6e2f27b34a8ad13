"""examples/plugins/webhook, installed and tested the way an integrator would: pip
installs it into a fresh virtual environment, its own tests (gateway.testing, a real
HTTP server) pass there, and the ``gateway`` command of that environment delivers an
invoice to a receiver on 127.0.0.1 with a verified signature."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLES, REPO
from tests.plugin_venv import run_gateway, venv_with

WEBHOOK = REPO / "examples" / "plugins" / "webhook"
SECRET = "integrators-signing-key"


@pytest.fixture(scope="module")
def webhook_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return venv_with(tmp_path_factory.mktemp("venv") / "env", WEBHOOK)


@pytest.fixture(scope="module")
def webhook_copy(webhook_venv: Path) -> Path:
    """The copy the package was installed from, where its tests run as in a checkout of
    the integrator's own repository."""
    return webhook_venv.parents[2] / "sources" / WEBHOOK.name


@pytest.fixture
def receiver() -> Iterator[Any]:
    # The example ships the receiving side's signature check and a test receiver.
    sys.path.insert(0, str(WEBHOOK))
    try:
        from gateway_webhook.receiver import Receiver
    finally:
        sys.path.remove(str(WEBHOOK))
    with Receiver(SECRET.encode()) as running:
        yield running


def test_the_examples_own_tests_pass_installed(webhook_venv: Path, webhook_copy: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "PYTEST_"))}
    result = subprocess.run([str(webhook_venv), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                            cwd=webhook_copy, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 passed" in result.stdout


def test_the_gateway_command_delivers_through_the_webhook(webhook_venv: Path, tmp_path: Path,
                                                          receiver: Any) -> None:
    env = {"WEBHOOK_SECRET": SECRET}
    added = run_gateway(webhook_venv, tmp_path, "--strict-plugins", "customer", "add",
                        "40103987654", "--name", "Ziemeļu Ceptuve SIA", "--format", "ubl",
                        "--match", "LV40103987654", "--channel",
                        f"webhook url={receiver.url} secret_env=WEBHOOK_SECRET", **env)
    assert added.returncode == 0, added.stderr
    pushed = run_gateway(webhook_venv, tmp_path, "push",
                         str(EXAMPLES / "electricity-business.json"), **env)
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    [request] = receiver.requests
    assert request.signed
    assert request.headers["Idempotency-Key"].endswith(":webhook")
    assert b"<cbc:ID>E2611-00125</cbc:ID>" in request.body
    story = json.loads(run_gateway(webhook_venv, tmp_path, "status", "E2611-00125",
                                   "--json").stdout)
    [delivery] = story["deliveries"]
    assert delivery["status"] == "delivered" and delivery["channel"] == "webhook"
    assert delivery["receipt_data"]["data"] == {"status": 200, "request_id": "req-1",
                                                "bytes": len(request.body)}
    shown = run_gateway(webhook_venv, tmp_path, "status", "E2611-00125").stdout
    assert "status=200, request_id=req-1" in shown


def test_a_customer_without_ubl_is_refused_when_saved(webhook_venv: Path,
                                                      tmp_path: Path) -> None:
    added = run_gateway(webhook_venv, tmp_path, "customer", "add", "c1", "--name", "X",
                        "--format", "pdf", "--channel",
                        "webhook url=https://erp.example/in secret_env=WEBHOOK_SECRET")
    assert added.returncode == 1
    assert "the webhook channel needs the format(s) ubl" in added.stderr
