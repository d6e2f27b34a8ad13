"""Install plugin packages into a fresh virtual environment, as an integrator would.

The environment sees the gateway (and its dependencies) through
``--system-site-packages``; pip runs from the outer interpreter, offline and without
build isolation, so nothing is downloaded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def venv_with(env_dir: Path, *packages: Path) -> Path:
    """Create a virtual environment at ``env_dir`` with ``packages`` installed; return
    its python. The packages are installed from copies beside ``env_dir``.

    It sees the site-packages of *this* interpreter (the gateway as the test run has it
    installed, and its dependencies), after its own: ``--system-site-packages`` would
    show the base interpreter's instead, which in CI's virtual environment has neither.
    """
    sources = env_dir.parent / "sources"
    packages = tuple(copied(p, sources) for p in packages)
    venv.EnvBuilder(system_site_packages=False, with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    [inner] = (env_dir / "lib").glob("python3*/site-packages")
    outer = [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
    (inner / "_outer_site_packages.pth").write_text(
        "import site; " + "; ".join(f"site.addsitedir({p!r})" for p in outer) + "\n")
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
