"""gateway.testing as plugin authors meet it: a test file in a project of their own,
run by pytest with nothing but the installed gateway (the pytest11 entry point)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from gateway import testing
from tests.conftest import REPO

AUTHOR_TESTS = '''
import contextlib
from typing import ClassVar

from pydantic import BaseModel

from gateway import DeliveryError, Receipt, hookimpl
from gateway.testing import add_customer, check_channel

calls = []


class Settings(BaseModel):
    busy_for: int = 0


class Flaky:
    """Says 'busy, come back in 90 s' until it has been asked busy_for times."""

    name: ClassVar[str] = "flaky"
    description: ClassVar[str] = "a receiver that is busy at first"
    Settings: ClassVar[type[BaseModel]] = Settings

    def session(self):
        return contextlib.nullcontext("the-session")

    def deliver(self, bundle, settings, state, session):
        calls.append(session)
        if len(calls) <= settings.busy_for:
            raise DeliveryError("busy", retryable=True, retry_after=90)
        if state.done("flaky"):
            return Receipt(id="flaky:" + bundle.idempotency_key, data={"status": 200})
        state.mark_done("flaky", "ok")
        return Receipt(id="flaky:" + bundle.idempotency_key, data={"status": 200})


class Plugin:
    @hookimpl
    def gateway_register_channels(self, register):
        register(Flaky())


def test_fixtures(gw, customer, sample_invoice):
    assert customer.id == "100234567"
    invoice = sample_invoice("multi-page")
    assert len(invoice.lines) == 62 and invoice.totals is not None
    result = gw.push(sample_invoice("household", completed=False), source="t")
    assert result.status == "accepted" and result.customer_id == customer.id


def test_retry_after_with_the_clock(gateway_factory, sample_invoice, clock, run_dispatcher):
    gw = gateway_factory(extra_plugins=(("flaky", Plugin()),))
    add_customer(gw, channels=[{"channel": "flaky", "settings": {"busy_for": 1}}])
    gw.push(sample_invoice(completed=False), source="t")
    assert run_dispatcher(gw).retrying == 1
    assert run_dispatcher(gw, advance=60).attempted == 0  # Retry-After not over
    assert run_dispatcher(gw, advance=31).delivered == 1
    assert calls == ["the-session", "the-session"]


def test_conformance(tmp_path):
    calls.clear()
    report = check_channel("flaky", {}, plugins=[("flaky", Plugin())],
                           retryable={"busy_for": 100})
    assert "retryable failure classified" in report.passed
'''


def test_the_pytest_plugin_is_registered_by_entry_point() -> None:
    [ep] = [e for e in metadata.entry_points(group="pytest11") if e.name == "invoice_gateway"]
    assert ep.value == "gateway.testing.pytest_plugin"


def test_an_authors_test_file_runs_with_the_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_my_plugin=AUTHOR_TESTS)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_public_names_are_listed_once() -> None:
    for name in testing.__all__:
        assert getattr(testing, name) is not None
    assert {"check_format", "check_channel", "check_source", "sample_invoice",
            "Clock", "add_customer", "make_gateway"} <= set(testing.__all__)


def test_the_wheel_ships_the_testing_kit(tmp_path: Path) -> None:
    """What ``pip install invoice-gateway`` gives an integrator: the package, its
    sample invoices and the pytest11 entry point (not just what an editable install of
    this checkout happens to see)."""
    # Built from a copy: setuptools writes build/ into the source tree it builds.
    source = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for part in ("gateway", "plugins"):
        shutil.copytree(REPO / part, source / part, ignore=ignore)
    for part in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / part, source / part)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--wheel-dir", str(tmp_path), str(source)],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    [wheel] = tmp_path.glob("invoice_gateway-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        text = archive.read(entry_points).decode()
    for sample in testing.SAMPLES:
        assert f"gateway/testing/invoices/{sample}.json" in names
    assert "gateway/testing/pytest_plugin.py" in names and "gateway/scaffold.py" in names
    assert "[pytest11]\ninvoice_gateway = gateway.testing.pytest_plugin" in text
    # Every file the code reads at run time (templates, catalogues, migrations, ...) is
    # in the wheel: the Typst templates once were not, and PDFs failed outside a checkout.
    data = {path.relative_to(source).as_posix()
            for part in ("gateway", "plugins") for path in (source / part).rglob("*")
            if path.is_file() and path.suffix not in (".py", ".pyc")}
    assert "plugins/pdf/templates/typst/layout.typ" in data
    assert sorted(data - names) == []


def test_the_recording_channel_records_once_and_conforms(
        gateway_factory: Any, recording_channel: testing.RecordingChannel,
        sample_invoice: Any, run_dispatcher: Any) -> None:
    gw = gateway_factory(extra_plugins=[("recording", recording_channel)])
    testing.add_customer(gw, formats=["json", "ubl"], channels=[{"channel": "recording"}])
    gw.push(sample_invoice(completed=False), source="t")
    assert run_dispatcher(gw).delivered == 1
    [bundle] = recording_channel.bundles
    assert [d.filename for d in bundle.documents] == ["E2611-00123.json",
                                                       "E2611-00123.ubl.xml"]
    checked = testing.RecordingChannel()
    report = testing.check_channel(
        "recording", {}, plugins=[("recording", checked)],
        observe=lambda: [b.idempotency_key for b in checked.bundles],
        retryable={"fail": "retryable", "retry_after": 5}, permanent={"fail": "permanent"})
    assert not report.skipped
    assert len(checked.bundles) == 2  # the first delivery and the one after the lost lease
