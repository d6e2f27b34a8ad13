"""Shared fixtures: a gateway on a temporary data directory, example invoices, the CLI."""

from __future__ import annotations

import copy
import json
import os
import site
import sys
import venv
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from gateway.core.config import load_config
from gateway.core.customers import Customer
from gateway.core.pipeline import Gateway
from gateway.plugins import get_plugin_manager

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
# Customers that get JSON to a folder (examples/customers.toml shows PDF, UBL and CSV)
JSON_CUSTOMERS = REPO / "tests" / "fixtures" / "customers-json.toml"
STANDARDS = Path(os.environ.get("GATEWAY_STANDARDS_DIR", REPO.parent / "shared" / "standards"))


def child_venv(env_dir: Path) -> Path:
    """A fresh virtual environment that sees every package of the running interpreter.

    ``--system-site-packages`` is not enough when the tests themselves run in a virtual
    environment (the README's ``.venv``): it exposes the base interpreter's packages, not
    this environment's. A ``.pth`` line that calls ``site.addsitedir`` adds ours, with their
    own ``.pth`` files (the editable gateway among them). Returns the new ``python``.
    """
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    outer = [p for p in site.getsitepackages() if Path(p).is_dir()]
    lines = "".join(f"import site; site.addsitedir({p!r})\n" for p in outer)
    (env_dir / "lib" / version / "site-packages" / "_outer_env.pth").write_text(lines)
    return python


@pytest.fixture(scope="session")
def standards_dir() -> Path:
    """The official artefacts and example invoices (../shared/standards)."""
    if not STANDARDS.exists():
        pytest.fail(f"official standards not found at {STANDARDS}; set GATEWAY_STANDARDS_DIR")
    return STANDARDS


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    return EXAMPLES


def _load_example(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


_HOUSEHOLD = _load_example("electricity-household.json")


@pytest.fixture
def invoice_data() -> dict[str, Any]:
    """A fresh, valid invoice as JSON data (a Latvian household electricity bill)."""
    return copy.deepcopy(_HOUSEHOLD)


@pytest.fixture
def load_example() -> Callable[[str], dict[str, Any]]:
    return _load_example


GatewayFactory = Callable[..., Gateway]


@pytest.fixture
def gateway_factory(tmp_path: Path) -> Iterator[GatewayFactory]:
    """Build gateways on ``tmp_path/data``; extra plugins are registered by name."""
    made: list[Gateway] = []

    def make(*, extra_plugins: tuple[tuple[str, object], ...] = (), config: str = "",
             data_dir: Path | None = None) -> Gateway:
        directory = data_dir or tmp_path / "data"
        directory.mkdir(parents=True, exist_ok=True)
        if config:
            (directory / "gateway.toml").write_text(config, encoding="utf-8")
        plugins = get_plugin_manager(extra=extra_plugins)
        gw = Gateway(load_config(directory), plugins)
        made.append(gw)
        return gw

    yield make
    for gw in made:
        gw.close()


@pytest.fixture
def gw(gateway_factory: GatewayFactory) -> Gateway:
    return gateway_factory()


def add_customer(gw: Gateway, **data: Any) -> Customer:
    """Add a customer; defaults: id 100234567 (the household example), JSON, a folder."""
    data.setdefault("id", "100234567")
    data.setdefault("name", "Jānis Bērziņš")
    data.setdefault("formats", ["json"])
    data.setdefault("match", ["C-100234567"])
    data.setdefault("channels", [{"channel": "folder", "name": "mailbox"}])
    customer = Customer.model_validate(data)
    gw.check_customer(customer)
    gw.store.put_customer(customer, actor="test")
    return customer


@pytest.fixture
def run_cli(tmp_path: Path) -> Callable[..., Result]:
    """Run the gateway CLI in-process on ``tmp_path/data`` (plugin commands included)."""
    from gateway.cli import cli

    plugins = get_plugin_manager()
    plugins.hook.gateway_register_commands(cli=cli)

    def run(*args: str, input: str | None = None) -> Result:
        runner = CliRunner()
        return runner.invoke(cli, ["--data-dir", str(tmp_path / "data"), *args],
                             obj=plugins, input=input, catch_exceptions=False)

    return run
