"""Install plugin packages into a fresh virtual environment, as an integrator would.

The environment sees the gateway (and its dependencies) as the test run has them; pip
runs from the outer interpreter, offline and without build isolation, so nothing is
downloaded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import child_venv

REPO = Path(__file__).resolve().parents[1]


def venv_with(env_dir: Path, *packages: Path) -> Path:
    """Create a virtual environment at ``env_dir`` that sees this interpreter's packages
    (:func:`tests.conftest.child_venv`), install ``packages`` into it from copies beside
    ``env_dir``, and return its python."""
    packages = tuple(copied(p, env_dir.parent / "sources") for p in packages)
    python = child_venv(env_dir)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
         "--no-deps", "--no-build-isolation", "--no-index", *map(str, packages)],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    return python


def copied(package: Path, directory: Path) -> Path:
    """A copy of ``package`` in ``directory``: pip's build writes build/ and egg-info
    into the tree it installs from, which must not be the checkout."""
    target = directory / package.name
    if not target.exists():
        shutil.copytree(package, target, ignore=shutil.ignore_patterns(
            "build", "*.egg-info", "__pycache__", ".pytest_cache"))
    return target


def run_gateway(python: Path, data_dir: Path, *args: str,
                **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m gateway ARGS`` on ``data_dir``, with every installed plugin loaded."""
    environ = {**os.environ, "GATEWAY_DATA_DIR": str(data_dir), **env}
    environ.pop("GATEWAY_LOAD_PLUGINS", None)
    for name in ("GATEWAY_STRICT_PLUGINS", "GATEWAY_DISABLE_PLUGINS"):
        if name not in env:
            environ.pop(name, None)
    return subprocess.run([str(python), "-m", "gateway", *args], capture_output=True,
                          text=True, env=environ, cwd=REPO, timeout=300)
