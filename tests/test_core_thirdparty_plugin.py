"""A third-party package adds a format and a channel without any change to the core.

The example package in tests/fixtures/gateway-plugin-example is installed with pip into a
fresh virtual environment (which sees the gateway's environment, see ``child_venv``); the
gateway then finds it through the ``invoice_gateway`` entry-point group, exactly as it
finds its built-in plugins.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, REPO
from tests.plugin_venv import run_gateway, venv_with

FIXTURE = REPO / "tests" / "fixtures" / "gateway-plugin-example"


@pytest.fixture(scope="module")
def plugin_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return venv_with(tmp_path_factory.mktemp("venv") / "env", FIXTURE)


def gateway(python: Path, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_gateway(python, data_dir, *args)


def test_third_party_plugin_is_listed_with_its_distribution(plugin_venv: Path,
                                                            tmp_path: Path) -> None:
    result = gateway(plugin_venv, tmp_path, "plugins", "--json")
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    example = rows["example"]
    assert example["distribution"] == "gateway-plugin-example"
    assert example["version"] == "1.2.0"
    assert {"kind": "format", "name": "markdown"} in example["provides"]
    assert {"kind": "channel", "name": "ledger"} in example["provides"]
    # built-ins come through the same group
    assert rows["folder"]["distribution"] == "invoice-gateway"


def test_invoice_flows_through_third_party_format_and_channel(plugin_venv: Path,
                                                              tmp_path: Path) -> None:
    data = tmp_path / "data"
    ledger = tmp_path / "ledger.jsonl"
    added = gateway(plugin_venv, data, "customer", "add", "100234567", "--name", "Jānis",
                    "--format", "markdown", "--match", "C-100234567",
                    "--channel", f"ledger path={ledger}")
    assert added.returncode == 0, added.stderr
    pushed = gateway(plugin_venv, data, "push", str(EXAMPLES / "electricity-household.json"))
    assert pushed.returncode == 0, pushed.stderr + pushed.stdout
    entries = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert len(entries) == 1
    assert entries[0]["invoice"] == "E2611-00123"
    assert list(entries[0]["documents"]) == ["E2611-00123.md"]
    archived = gateway(plugin_venv, data, "status", "E2611-00123", "--json")
    story = json.loads(archived.stdout)
    assert story["deliveries"][0]["status"] == "delivered"
    assert story["documents"][0]["format"] == "markdown"
    # pushing again delivers nothing new
    again = gateway(plugin_venv, data, "push", str(EXAMPLES / "electricity-household.json"))
    assert again.returncode == 0
    assert len(ledger.read_text().splitlines()) == 1


def test_plugin_can_be_switched_off_without_touching_code(plugin_venv: Path,
                                                         tmp_path: Path) -> None:
    env_off = {**os.environ, "GATEWAY_DISABLE_PLUGINS": "example"}
    result = subprocess.run([str(plugin_venv), "-m", "gateway", "formats"],
                            capture_output=True, text=True, env=env_off)
    assert result.returncode == 0
    assert "markdown" not in result.stdout
    assert "json" in result.stdout
