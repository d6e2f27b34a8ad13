"""A plugin that hangs while importing or registering is given up after a bounded time.

Real packages, installed into a fresh virtual environment beside the gateway: one whose
import never returns (with a second entry point in the same package, which would wait
for the hung import's module lock), one whose register hook stalls half-way.

The limit is two seconds here (``GATEWAY_PLUGIN_TIMEOUT``; 20 s by default), and of the
built-in plugins only ``json`` is loaded: on a busy machine importing the heavier ones
(Peppol's cryptography, the PDF engines) can itself take seconds of wall time.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.plugin_venv import run_gateway, venv_with

HANGING = REPO / "tests" / "fixtures" / "hanging-plugins"
TIMEOUT = "GATEWAY_PLUGIN_TIMEOUT"
BUILT_IN = ("folder", "xml", "pdf", "csv", "email", "sftp", "portal", "utility", "peppol")
LIMIT = {TIMEOUT: "2", "GATEWAY_DISABLE_PLUGINS": ",".join(BUILT_IN)}
REASONS = {
    "hangs-import": ("gateway-hangs-import",
                     "import of hangs_import did not finish in 2 s (it hangs; "
                     "GATEWAY_PLUGIN_TIMEOUT sets the limit)"),
    "hangs-import-too": ("gateway-hangs-import",
                         "import of hangs_import.extra skipped: hangs_import hangs on import"),
    "hangs-register": ("gateway-hangs-register",
                       "gateway_register_sources did not finish in 2 s"),
}


@pytest.fixture(scope="module")
def hanging_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return venv_with(tmp_path_factory.mktemp("venv") / "env",
                     *sorted(p for p in HANGING.iterdir() if p.is_dir()))


def test_hanging_plugins_are_skipped_and_the_command_works(hanging_venv: Path,
                                                           tmp_path: Path) -> None:
    result = run_gateway(hanging_venv, tmp_path, "formats", **LIMIT)
    assert result.returncode == 0, result.stderr
    assert "json" in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == len(REASONS), result.stderr
    for name, (dist, reason) in REASONS.items():
        [line] = [x for x in lines if f"plugin {name!r}" in x]
        assert f"(distribution {dist} 0.1.0) skipped: {reason}" in line
        assert "Traceback" not in line


def test_a_hook_that_wakes_up_later_registers_nothing(hanging_venv: Path,
                                                      tmp_path: Path) -> None:
    """The stalled hook registered a source, then returns after three seconds and
    registers another; the plugin was given up after two, so neither is there."""
    script = ("import time; from gateway.plugins import get_plugin_manager\n"
              "plugins = get_plugin_manager(report=lambda line: None)\n"
              "time.sleep(4)\n"
              "print(' '.join(plugins.formats.names()))\n"
              "print(' '.join(plugins.sources.names()) or '-')\n"
              "print(' '.join(sorted(b.name for b in plugins.broken)))\n")
    result = subprocess.run(
        [str(hanging_venv), "-c", script], capture_output=True, text=True, timeout=300,
        cwd=REPO, env={**_environ(tmp_path), **LIMIT, "HANGS_REGISTER_SECONDS": "3"})
    assert result.returncode == 0, result.stderr
    formats, sources, broken = result.stdout.splitlines()
    assert "json" in formats.split()
    assert sources == "-"  # neither "stalled" (taken back) nor "late" (refused)
    assert broken.split() == sorted(REASONS)


def test_plugins_command_lists_them_as_broken(hanging_venv: Path, tmp_path: Path) -> None:
    result = run_gateway(hanging_venv, tmp_path, "plugins", "--json", **LIMIT)
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    for name, (dist, reason) in REASONS.items():
        assert (rows[name]["status"], rows[name]["distribution"]) == ("broken", dist)
        assert reason in rows[name]["error"]
        assert rows[name]["provides"] == []


def test_strict_mode_makes_a_hanging_plugin_fatal(hanging_venv: Path, tmp_path: Path) -> None:
    result = run_gateway(hanging_venv, tmp_path, "--strict-plugins", "formats", **LIMIT)
    assert result.returncode == 1
    assert result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Error: broken plugins (strict mode")
    for name, (dist, reason) in REASONS.items():
        assert f"plugin {name!r} (distribution {dist} 0.1.0) skipped: {reason}" in line


def test_a_limit_that_is_not_seconds_is_one_clear_line(hanging_venv: Path,
                                                       tmp_path: Path) -> None:
    result = run_gateway(hanging_venv, tmp_path, "formats", **{**LIMIT,
                                                               TIMEOUT: "soon"})
    assert result.returncode == 1
    assert result.stderr.strip() == ("Error: GATEWAY_PLUGIN_TIMEOUT='soon': expected "
                                     "seconds, e.g. 20")


def _environ(data_dir: Path) -> dict[str, str]:
    import os

    environ = {**os.environ, "GATEWAY_DATA_DIR": str(data_dir)}
    for name in ("GATEWAY_LOAD_PLUGINS", "GATEWAY_STRICT_PLUGINS", "GATEWAY_DISABLE_PLUGINS"):
        environ.pop(name, None)
    return environ


def test_a_hook_that_wakes_up_while_its_plugin_is_given_up_registers_nothing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The hung hook wakes up at the worst moment: after the loader has dropped what the
    plugin registered, before it has marked the plugin broken. In-process, with the
    loader's own registries: the wake-up is timed from inside the drop, the one moment a
    test outside the loader cannot reach otherwise."""
    import sys
    import threading
    import types
    from importlib import metadata

    import gateway.plugins
    from gateway import hookimpl
    from gateway.registry import Registry

    wake, finished = threading.Event(), threading.Event()
    refused: list[str] = []

    class Source:
        def __init__(self, name: str) -> None:
            self.name = name

        def invoices(self, *args: object, **kwargs: object) -> object:
            return iter(())

    class WakesUpLate:
        @hookimpl
        def gateway_register_sources(self, register: object) -> None:
            assert callable(register)
            register(Source("stalled"))
            wake.wait(60)
            try:
                register(Source("late"))
            except Exception as exc:
                refused.append(str(exc))
            finished.set()

    module = types.ModuleType("gateway_test_wakes_up_late")
    module.plugin = WakesUpLate()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    entry_point = metadata.EntryPoint(name="wakes-up-late", value=f"{module.__name__}:plugin",
                                      group=gateway.plugins.ENTRY_POINT_GROUP)
    monkeypatch.setattr(gateway.plugins, "_entry_points", lambda: [entry_point])
    monkeypatch.setenv(TIMEOUT, "0.5")
    for name in ("GATEWAY_LOAD_PLUGINS", "GATEWAY_DISABLE_PLUGINS", "GATEWAY_STRICT_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    drop = Registry.drop_plugin

    def drop_then_wake(self: Registry[object], plugin: str) -> None:
        drop(self, plugin)
        if self.kind == "source" and not wake.is_set():  # the last registry dropped
            wake.set()
            finished.wait(5)

    monkeypatch.setattr(Registry, "drop_plugin", drop_then_wake)
    plugins = gateway.plugins.get_plugin_manager(report=lambda line: None)
    assert finished.wait(30), "the hung hook never woke up"
    assert plugins.sources.names() == []
    assert [b.name for b in plugins.broken] == ["wakes-up-late"]
    assert refused == ["plugin 'wakes-up-late' was skipped as broken"]
