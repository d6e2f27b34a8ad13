"""Shared fixtures: a gateway on a temporary data directory, example invoices, the CLI."""

from __future__ import annotations

import copy
import json
import os
import shutil
import site
import sys
import tempfile
import venv
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from gateway.core.pipeline import Gateway
from gateway.plugins import get_plugin_manager
from gateway.testing import add_customer

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


@pytest.fixture(autouse=True)
def _process_wide_settings_reset() -> Iterator[None]:
    """A gateway sets its process's limits and network policy when it starts; no test
    leaves its own (a tiny limit, an allow-list) to the tests after it."""
    from gateway.core import limits, netguard

    yield
    limits.configure(limits.Limits())
    netguard.configure(netguard.NetworkPolicy())
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
        pytest.skip(f"official standards not found at {STANDARDS} (../shared/standards; CI "
                    "has it, or set GATEWAY_STANDARDS_DIR)")
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


# pytester runs plugin authors' test files against gateway.testing (test_testing_plugin.py)
pytest_plugins = ["pytester"]

# gateway_factory, gw, customer, sample_invoice, clock and run_dispatcher come from the
# gateway's own pytest plugin, gateway.testing (the one plugin authors use).
GatewayFactory = Callable[..., Gateway]
__all__ = ["GatewayFactory", "add_customer"]

STORE_BACKENDS = ("sqlite", "postgresql")


def pytest_configure(config: pytest.Config) -> None:
    """The run keeps what the gateway caches per user (the Typst engine's unhinted font
    copies) in a folder of its own, not in the home of whoever runs the tests; processes
    the tests start inherit it."""
    if not os.environ.get("GATEWAY_TEST_CACHE"):
        before = os.environ.get("XDG_CACHE_HOME")
        os.environ["GATEWAY_TEST_CACHE"] = tempfile.mkdtemp(prefix="gateway-test-cache-")
        os.environ["XDG_CACHE_HOME"] = os.environ["GATEWAY_TEST_CACHE"]

        def restore() -> None:
            shutil.rmtree(os.environ.pop("GATEWAY_TEST_CACHE"), ignore_errors=True)
            if before is None:
                os.environ.pop("XDG_CACHE_HOME", None)
            else:
                os.environ["XDG_CACHE_HOME"] = before

        config.add_cleanup(restore)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", default=False,
                     help="also run the long runs marked slow (a 10,000-contract month end, "
                          "long chaos rounds; each has a short version that always runs)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Long runs stay out of the default run (and so out of CI's) unless asked for with
    --run-slow or GATEWAY_RUN_SLOW=1; each has a short version in the default run."""
    if config.getoption("--run-slow") or os.environ.get("GATEWAY_RUN_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="long run: add --run-slow (or GATEWAY_RUN_SLOW=1)")
    for item in items:
        if item.get_closest_marker("slow"):
            item.add_marker(skip)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``pytestmark = pytest.mark.both_stores`` runs a module's tests on the embedded
    SQLite store and on PostgreSQL; ``@pytest.mark.sqlite_only`` keeps one test on
    SQLite (it checks something only SQLite has, such as its file locks)."""
    if ("store_backend" in metafunc.fixturenames
            and metafunc.definition.get_closest_marker("both_stores")
            and not metafunc.definition.get_closest_marker("sqlite_only")):
        metafunc.parametrize("store_backend", STORE_BACKENDS)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Any]:
    """A throwaway PostgreSQL cluster for the whole session (tests/pg_cluster.py)."""
    from tests.pg_cluster import running_cluster

    with running_cluster() as cluster:
        yield cluster


@pytest.fixture
def store_backend() -> str:
    return "sqlite"


@pytest.fixture
def store_url(request: pytest.FixtureRequest, store_backend: str,
              monkeypatch: pytest.MonkeyPatch) -> str | None:
    """None on the embedded default; on PostgreSQL a fresh database, also named in
    GATEWAY_STORE_URL so that CLI subprocesses use it too."""
    if store_backend == "sqlite":
        monkeypatch.delenv("GATEWAY_STORE_URL", raising=False)
        return None
    url: str = request.getfixturevalue("postgres_cluster").new_database()
    monkeypatch.setenv("GATEWAY_STORE_URL", url)
    return url


@pytest.fixture
def gateway_factory(store_url: str | None, gateway_factory: GatewayFactory) -> GatewayFactory:
    """gateway.testing's factory, on the store this test runs on (``store_url`` names it
    in GATEWAY_STORE_URL before any gateway is made)."""
    return gateway_factory


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
