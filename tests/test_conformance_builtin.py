"""The built-in formats, the folder channel and the utility source pass the same
conformance suites (gateway.testing) that third-party plugins run.

E-mail, SFTP push and the portal channel run them in their own test directories,
against their real servers (tests/email, tests/sftp, tests/portal).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from gateway.core.pipeline import Gateway
from gateway.testing import SAMPLES, ConformanceError, check_channel, check_format, check_source


@pytest.mark.parametrize("name", ["json", "ubl", "cii", "pdf", "facturx"])
def test_builtin_format_conforms(name: str) -> None:
    report = check_format(name)
    assert report.passed and not report.failed


def test_csv_conforms_within_its_columns() -> None:
    # docs/csv.md "What the CSV does not carry": line-level allowances and charges
    # (BG-27/28), which only the allowances-charges sample has.
    samples = [s for s in SAMPLES if s != "allowances-charges"]
    report = check_format("csv", samples=samples)
    assert "round trip household" in report.passed


def _tree(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def test_folder_channel_conforms(tmp_path: Path) -> None:
    target = tmp_path / "erp-inbox"
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the target directory should be")
    report = check_channel(
        "folder", {"path": str(target)}, observe=lambda: _tree(target),
        # a file in the way of the directory: an operator can fix it, so retry
        retryable={"path": str(blocked / "inbox")})
    assert "lost lease sends nothing" in report.passed
    assert report.skipped == {"permanent failure classified": "no permanent settings given"}


def test_a_nonconforming_channel_is_named_with_every_failed_check(tmp_path: Path) -> None:
    from pydantic import BaseModel

    from gateway import DeliveryError, Receipt, hookimpl
    from gateway.core.documents import Bundle, DeliveryState

    sent: list[str] = []

    class NoSettings(BaseModel):
        pass

    class Careless:
        name = "careless"
        description = "sends again on every call, new receipt each time"
        Settings = NoSettings

        def session(self) -> Any:
            import contextlib
            return contextlib.nullcontext()

        def deliver(self, bundle: Bundle, settings: Any, state: DeliveryState) -> Receipt:
            if bundle.customer_id.endswith("permanent"):
                raise DeliveryError("mailbox does not exist", retryable=True)
            sent.append(bundle.invoice.number)
            return Receipt(id=f"careless-{len(sent)}")

    class Plugin:
        @hookimpl
        def gateway_register_channels(self, register: Any) -> None:
            register(Careless())

    with pytest.raises(ConformanceError) as failure:
        check_channel("careless", {}, plugins=[("careless", Plugin())],
                      observe=lambda: list(sent), permanent={})
    message = str(failure.value)
    assert "channel 'careless' fails 2 conformance check(s)" in message
    assert "repeat after success changes nothing: receipt id 'careless-2'" in message
    assert "permanent failure classified: DeliveryError(retryable=True) for a permanent" \
        in message


def test_utility_source_conforms(gw: Gateway) -> None:
    import datetime as dt

    from plugins.utility.dates import Period
    from plugins.utility.synthetic import generate, month_readings

    store = gw.plugins.sources.get("utility").store
    month_readings(store, generate(store, 12, Period(2026, 10)), today=dt.date(2026, 11, 15))
    report = check_source("utility", {"period": "2026-10", "as_of": "2026-11-15",
                                      "paper_of": lambda customer: False},
                          gateway=gw, minimum=12)
    assert "yields complete invoices" in report.passed


def test_a_nonconforming_format_is_named_with_every_failed_check() -> None:
    import itertools
    import urllib.request
    from typing import ClassVar

    from gateway import Invoice, RenderContext, hookimpl

    counter = itertools.count()

    class Sloppy:
        name: ClassVar[str] = "sloppy"
        media_type: ClassVar[str] = "text/plain"
        extension: ClassVar[str] = "txt"
        description: ClassVar[str] = "stamps a counter, phones home, crashes on bad input"
        can_parse: ClassVar[bool] = True
        can_validate: ClassVar[bool] = False

        def render(self, invoice: Invoice, context: RenderContext) -> bytes:
            if invoice.number == "K2611-00007":  # the credit note
                urllib.request.urlopen("http://192.0.2.1/telemetry", timeout=1)
            return f"{invoice.number} #{next(counter)}".encode()

        def sniff(self, head: bytes, filename: str) -> bool:
            return False

        def parse(self, data: bytes, source: str) -> Any:
            yield Invoice.model_validate_json(data)  # raises pydantic's error on junk

    class Plugin:
        @hookimpl
        def gateway_register_formats(self, register: Any) -> None:
            register(Sloppy())

    with pytest.raises(ConformanceError) as failure:
        check_format("sloppy", plugins=[("sloppy", Plugin())], samples=["household",
                                                                         "credit-note"])
    message = str(failure.value)
    assert "deterministic household: two renders of the same invoice differ" in message
    assert "render credit-note: PluginError" in message and "network access attempted" \
        in message
    assert "refuses empty: ValidationError" in message
    assert "round trip household: ValidationError" in message
