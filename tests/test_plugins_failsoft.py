"""A broken installed plugin is skipped with one line; strict mode makes it fatal.

Five real packages, each broken in one way an integrator's plugin can break (import
error, hook signature, misspelt hook name, exception in a register hook, exception in
the command hook), are installed into a fresh virtual environment beside the gateway.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.plugin_venv import run_gateway, venv_with

BROKEN = REPO / "tests" / "fixtures" / "broken-plugins"
REASONS = {
    "broken-import": ("gateway-broken-import",
                      "import of broken_import failed: ModuleNotFoundError"),
    "broken-signature": ("gateway-broken-signature", "bad hook signature"),
    "broken-hookname": ("gateway-broken-hookname",
                        "unknown hook 'gateway_register_format' (did you mean "
                        "'gateway_register_formats'?)"),
    "broken-register": ("gateway-broken-register",
                        "gateway_register_formats raised RuntimeError: licence server "
                        "unreachable"),
    "broken-command": ("gateway-broken-command",
                       "gateway_register_commands raised KeyError: 'config'"),
}


@pytest.fixture(scope="module")
def broken_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return venv_with(tmp_path_factory.mktemp("venv") / "env",
                     *sorted(p for p in BROKEN.iterdir() if p.is_dir()))


def test_each_broken_plugin_is_skipped_with_one_line(broken_venv: Path,
                                                     tmp_path: Path) -> None:
    result = run_gateway(broken_venv, tmp_path, "formats")
    assert result.returncode == 0, result.stderr
    assert "ubl" in result.stdout and "json" in result.stdout
    # registered before its hook raised, then taken back
    assert "half" not in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == len(REASONS), result.stderr
    for name, (dist, reason) in REASONS.items():
        [line] = [x for x in lines if f"plugin {name!r}" in x]
        assert f"(distribution {dist} 0.1.0) skipped: " in line
        assert reason in line
        assert "Traceback" not in line


def test_plugins_command_lists_the_broken_ones(broken_venv: Path, tmp_path: Path) -> None:
    result = run_gateway(broken_venv, tmp_path, "plugins", "--json")
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    for name, (dist, reason) in REASONS.items():
        assert rows[name]["status"] == "broken"
        assert rows[name]["distribution"] == dist
        assert reason in rows[name]["error"]
        assert rows[name]["provides"] == []
    assert rows["xml"]["status"] == "ok"
    table = run_gateway(broken_venv, tmp_path, "plugins")
    assert "broken" in table.stdout


def test_commands_of_healthy_plugins_still_work(broken_venv: Path, tmp_path: Path) -> None:
    result = run_gateway(broken_venv, tmp_path, "serve", "--help")
    assert result.returncode == 0, result.stderr
    assert "portal" in result.stdout
    half = run_gateway(broken_venv, tmp_path, "half-command")
    assert half.returncode == 2  # taken back: click does not know it


@pytest.mark.parametrize("how", ["flag", "env"])
def test_strict_mode_makes_a_broken_plugin_fatal(broken_venv: Path, tmp_path: Path,
                                                 how: str) -> None:
    if how == "flag":
        result = run_gateway(broken_venv, tmp_path, "--strict-plugins", "formats")
    else:
        result = run_gateway(broken_venv, tmp_path, "formats", GATEWAY_STRICT_PLUGINS="1")
    assert result.returncode == 1
    assert result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Error: broken plugins (strict mode")
    for name, (dist, _) in REASONS.items():
        assert f"plugin {name!r} (distribution {dist} 0.1.0)" in line
    assert "Traceback" not in result.stderr


def test_disabling_the_broken_plugins_silences_them(broken_venv: Path, tmp_path: Path) -> None:
    result = run_gateway(broken_venv, tmp_path, "--strict-plugins", "formats",
                         GATEWAY_DISABLE_PLUGINS=",".join(REASONS))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_a_channel_may_not_use_a_reserved_key() -> None:

    from pydantic import BaseModel

    from gateway import hookimpl
    from gateway.errors import PluginError
    from gateway.plugins import RESERVED_CHANNEL_KEYS, get_plugin_manager

    class Clashing(BaseModel):
        name: str  # the customer's label for the channel is called name already

    class Channel:
        name = "clash"
        description = "uses name as a setting"
        Settings = Clashing

        def deliver(self, *args: Any) -> Any: ...

    class Plugin:
        @hookimpl
        def gateway_register_channels(self, register: Any) -> None:
            register(Channel())

    assert {"name", "formats", "fallback"} <= RESERVED_CHANNEL_KEYS
    with pytest.raises(PluginError, match="channel 'clash' settings use the reserved key"):
        get_plugin_manager(extra=(("clash", Plugin()),), load_entry_points=False)


def test_an_observer_that_raises_stops_neither_the_push_nor_the_others(
        gateway_factory: Any, invoice_data: dict[str, Any],
        caplog: pytest.LogCaptureFixture) -> None:
    from gateway import hookimpl, load_invoice
    from gateway.core import Dispatcher
    from gateway.testing import add_customer

    seen: list[str] = []

    class Faulty:
        @hookimpl
        def gateway_invoice_accepted(self, invoice: Any) -> None:
            raise RuntimeError("audit database is down")

        @hookimpl
        def gateway_delivery_succeeded(self, label: str) -> None:
            raise RuntimeError("metrics endpoint is down")

    class Healthy:
        @hookimpl
        def gateway_invoice_accepted(self, invoice: Any) -> None:
            seen.append(f"accepted {invoice.number}")

        @hookimpl
        def gateway_delivery_succeeded(self, label: str) -> None:
            seen.append(f"delivered {label}")

    gw = gateway_factory(extra_plugins=(("healthy", Healthy()), ("faulty", Faulty())))
    add_customer(gw)
    result = gw.push(load_invoice(invoice_data), source="t")
    assert result.status == "accepted"
    assert Dispatcher(gw).run().delivered == 1
    assert seen == ["accepted E2611-00123", "delivered mailbox"]
    logged = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert "plugin faulty: gateway_invoice_accepted raised; ignored" in logged
    assert "plugin faulty: gateway_delivery_succeeded raised; ignored" in logged
