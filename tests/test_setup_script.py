"""scripts/setup.sh, the README's first step: a failing step says what and what to do."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import REPO


def run_setup(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(REPO / "scripts" / "setup.sh")], capture_output=True,
                          text=True, timeout=120,
                          env={**os.environ, "GATEWAY_VENV": str(tmp_path / "venv"), **env})


def test_a_missing_interpreter_is_named_with_what_to_do(tmp_path: Path) -> None:
    result = run_setup(tmp_path, PYTHON=str(tmp_path / "no-such-python"))
    assert result.returncode == 1
    assert result.stdout.splitlines() == ["python                      failed"]
    assert f"setup: no '{tmp_path / 'no-such-python'}' on PATH: install python3" in result.stderr
    assert "setup: the full output is in" in result.stderr
    assert not (tmp_path / "venv").exists()


def test_an_interpreter_older_than_3_11_is_refused(tmp_path: Path) -> None:
    old = tmp_path / "python3.9"
    old.write_text('#!/bin/sh\ncase "$1" in --version) echo "Python 3.9.2";; *) exit 1;; esac\n')
    old.chmod(0o755)
    result = run_setup(tmp_path, PYTHON=str(old))
    assert result.returncode == 1
    assert "setup: Python 3.9.2 is too old: the gateway needs Python 3.11 or newer" in result.stderr
    assert not (tmp_path / "venv").exists()
