"""push → validate → render → archive → outbox → deliver, on a real SQLite store."""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel

from gateway import Bundle, DeliveryError, DeliveryState, Finding, Receipt, hookimpl
from gateway.core import Dispatcher, load_invoice
from gateway.core.pipeline import Gateway
from gateway.errors import ConfigError, DuplicateInvoice, InvoiceRejected, PluginError
from gateway.plugins import get_plugin_manager
from tests.conftest import add_customer

pytestmark = pytest.mark.both_stores

NO_WAIT = "[dispatcher]\nbase_delay = 0\n"


def push_and_deliver(gw: Gateway, data: dict[str, Any], **kw: Any) -> Any:
    result = gw.push(load_invoice(data), source="test", **kw)
    Dispatcher(gw).run()
    return result


def test_push_archives_and_delivers(gw: Gateway, invoice_data: dict[str, Any]) -> None:
    add_customer(gw)
    result = push_and_deliver(gw, invoice_data)
    assert result.status == "accepted"
    [doc] = gw.store.documents(result.invoice_id)
    archived = gw.archive.get(doc.sha256)
    delivered = gw.config.data_dir / "deliveries" / "100234567" / "E2611-00123.json"
    assert delivered.read_bytes() == archived
    assert hashlib.sha256(archived).hexdigest() == doc.sha256
    [delivery] = gw.store.deliveries(invoice_id=result.invoice_id)
    assert delivery.status == "delivered"
    assert delivery.receipt_id and delivery.receipt_id.startswith("folder:")
    kinds = [e.kind for e in gw.store.events(result.invoice_id)]
    assert kinds == ["accepted", "rendered", "queued", "delivered"]
    assert gw.store.verify_events(result.invoice_id) is None
    assert not list(delivered.parent.glob(".tmp-*"))


def test_same_invoice_twice_changes_nothing(gw: Gateway, invoice_data: dict[str, Any]) -> None:
    add_customer(gw)
    first = push_and_deliver(gw, invoice_data)
    second = push_and_deliver(gw, invoice_data)
    assert second.status == "unchanged"
    assert second.invoice_id == first.invoice_id
    [delivery] = gw.store.deliveries(invoice_id=first.invoice_id)
    assert len(gw.store.attempts(delivery.id)) == 1
    assert len(gw.store.events(first.invoice_id)) == 4


def test_other_content_under_same_number_is_refused(gw: Gateway,
                                                    invoice_data: dict[str, Any]) -> None:
    add_customer(gw)
    push_and_deliver(gw, invoice_data)
    invoice_data["lines"][0]["quantity"] = "313"
    result = gw.push(load_invoice(invoice_data), source="again.json")
    assert result.status == "rejected"
    assert isinstance(result.error, DuplicateInvoice)
    assert "E2611-00123" in str(result.error) and "different content" in str(result.error)


def test_unknown_buyer_is_refused_with_a_hint(gw: Gateway, invoice_data: dict[str, Any]) -> None:
    result = gw.push(load_invoice(invoice_data), source="x.json")
    assert result.status == "rejected"
    assert isinstance(result.error, InvoiceRejected)
    assert result.error.findings[0].rule == "GW-CUSTOMER"
    assert "gateway customer add" in result.error.findings[0].message


def test_wrong_totals_are_refused_and_nothing_is_stored(gw: Gateway,
                                                        invoice_data: dict[str, Any]) -> None:
    add_customer(gw)
    invoice_data["totals"] = {"line_net_total": "65.06", "total_without_vat": "65.06",
                              "vat_total": "13.66", "total_with_vat": "99.99",
                              "amount_due": "99.99"}
    result = gw.push(load_invoice(invoice_data), source="bad.json")
    assert result.status == "rejected"
    assert "BR-CO-15" in str(result.error)
    assert gw.store.list_invoices() == []


def test_preferences_apply_from_the_next_invoice(gw: Gateway, invoice_data: dict[str, Any],
                                                 tmp_path: Path) -> None:
    customer = add_customer(gw)
    first = push_and_deliver(gw, invoice_data)
    changed = customer.model_copy(update={"channels": [
        customer.channels[0].model_copy(update={"settings": {"path": str(tmp_path / "new")}})]})
    gw.store.put_customer(changed, actor="portal:janis")
    invoice_data["number"] = "E2611-00999"
    second = push_and_deliver(gw, invoice_data)
    assert (gw.config.data_dir / "deliveries" / "100234567" / "E2611-00123.json").exists()
    assert (tmp_path / "new" / "E2611-00999.json").exists()
    assert gw.store.deliveries(invoice_id=first.invoice_id)[0].settings == {}
    changes = gw.store.customer_changes("100234567")
    assert [c["actor"] for c in changes] == ["test", "portal:janis"]
    assert second.status == "accepted"


class _Settings(BaseModel):
    mode: str = "permanent"


class RefusingChannel:
    """A channel whose receiver refuses everything — like an e-mail server saying 550."""

    name: ClassVar[str] = "refusing"
    description: ClassVar[str] = "always refuses"
    Settings: ClassVar[type[BaseModel]] = _Settings
    calls = 0

    def session(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def deliver(self, bundle: Bundle, settings: Any, state: DeliveryState) -> Receipt:
        RefusingChannel.calls += 1
        if settings.mode == "flaky" and RefusingChannel.calls > 1:
            return Receipt(id=f"ok:{bundle.idempotency_key}")
        raise DeliveryError("550 mailbox unavailable",
                            retryable=settings.mode != "permanent",
                            recipients={"janis@example.lv": "550 no such user"})


class RefusingPlugin:
    @hookimpl
    def gateway_register_channels(self, register: Any) -> None:
        register(RefusingChannel())


def test_permanent_failure_applies_the_fallback(gateway_factory: Any,
                                                invoice_data: dict[str, Any]) -> None:
    gw = gateway_factory(extra_plugins=(("refusing", RefusingPlugin()),))
    add_customer(gw, channels=[
        {"channel": "refusing", "name": "e-mail", "fallback": "archive"},
        {"channel": "folder", "name": "archive", "settings": {"path": "fallback"},
         "formats": ["json"]},
    ])
    RefusingChannel.calls = 0
    result = push_and_deliver(gw, invoice_data)
    deliveries = {d.label: d for d in gw.store.deliveries(invoice_id=result.invoice_id)}
    assert deliveries["e-mail"].status == "failed"
    assert "janis@example.lv: 550 no such user" in (deliveries["e-mail"].last_error or "")
    fallbacks = [d for d in gw.store.deliveries(invoice_id=result.invoice_id)
                 if d.fallback_for == deliveries["e-mail"].id]
    assert len(fallbacks) == 1 and fallbacks[0].status == "delivered"
    assert "550" in (fallbacks[0].reason or "")
    assert "fallback" in [e.kind for e in gw.store.events(result.invoice_id)]


def test_temporary_failure_is_retried_and_delivered_once(gateway_factory: Any,
                                                         invoice_data: dict[str, Any]) -> None:
    gw = gateway_factory(extra_plugins=(("refusing", RefusingPlugin()),), config=NO_WAIT)
    add_customer(gw, channels=[{"channel": "refusing", "settings": {"mode": "flaky"}}])
    RefusingChannel.calls = 0
    result = gw.push(load_invoice(invoice_data), source="t")
    first = Dispatcher(gw).run()
    assert (first.retrying, first.delivered) == (1, 0)
    second = Dispatcher(gw).run()
    assert second.delivered == 1
    [delivery] = gw.store.deliveries(invoice_id=result.invoice_id)
    assert delivery.status == "delivered"
    assert [a.outcome for a in gw.store.attempts(delivery.id)] == ["retry", "delivered"]
    assert Dispatcher(gw).run().attempted == 0


class BrokenFormat:
    """Renders documents its own validator rejects: they must never be delivered."""

    name: ClassVar[str] = "broken"
    media_type: ClassVar[str] = "text/plain"
    extension: ClassVar[str] = "txt"
    description: ClassVar[str] = "invalid output"
    can_parse: ClassVar[bool] = False
    can_validate: ClassVar[bool] = True

    def render(self, invoice: Any, context: Any) -> bytes:
        return b"not an invoice"

    def sniff(self, head: bytes, filename: str) -> bool:
        return False

    def validate(self, data: bytes) -> list[Finding]:
        return [Finding("XSD", "/Invoice", "root element missing")]


class BrokenFormatPlugin:
    @hookimpl
    def gateway_register_formats(self, register: Any) -> None:
        register(BrokenFormat())


def test_invalid_rendered_document_is_never_delivered(gateway_factory: Any,
                                                      invoice_data: dict[str, Any]) -> None:
    gw = gateway_factory(extra_plugins=(("broken", BrokenFormatPlugin()),))
    add_customer(gw, formats=["broken"])
    result = push_and_deliver(gw, invoice_data)
    assert result.status == "rejected"
    assert "XSD" in str(result.error)
    assert not (gw.config.data_dir / "deliveries").exists()


def test_unknown_format_in_preferences_lists_the_known_ones(gw: Gateway) -> None:
    with pytest.raises(PluginError, match=r"unknown format 'docx'; known: .*json"):
        add_customer(gw, formats=["docx"])


def test_bad_channel_settings_fail_when_the_customer_is_saved(gw: Gateway) -> None:
    with pytest.raises(ConfigError, match="setting colour"):
        add_customer(gw, channels=[{"channel": "folder", "settings": {"colour": "red"}}])


def test_two_plugins_cannot_claim_one_name() -> None:
    class Twin:
        @hookimpl
        def gateway_register_channels(self, register: Any) -> None:
            register(RefusingChannel())

    with pytest.raises(PluginError, match="registered by both"):
        get_plugin_manager(extra=(("a", Twin()), ("b", Twin())), load_entry_points=False)


def test_folder_refuses_to_overwrite_other_content(gw: Gateway,
                                                   invoice_data: dict[str, Any]) -> None:
    add_customer(gw)
    target = gw.config.data_dir / "deliveries" / "100234567" / "E2611-00123.json"
    target.parent.mkdir(parents=True)
    target.write_text("someone else's file")
    result = push_and_deliver(gw, invoice_data)
    [delivery] = gw.store.deliveries(invoice_id=result.invoice_id)
    assert delivery.status == "failed"
    assert "not overwritten" in (delivery.last_error or "")
    assert target.read_text() == "someone else's file"


def test_invoice_number_cannot_escape_the_folder(gw: Gateway, invoice_data: dict[str, Any],
                                                 tmp_path: Path) -> None:
    add_customer(gw)
    invoice_data["number"] = "../../../etc/passwd"
    result = push_and_deliver(gw, invoice_data)
    assert result.status == "accepted"
    [doc] = gw.store.documents(result.invoice_id)
    assert "/" not in doc.filename and not doc.filename.startswith(".")
    delivered = list((gw.config.data_dir / "deliveries" / "100234567").iterdir())
    assert [p.name for p in delivered] == [doc.filename]
    assert json.loads(delivered[0].read_text())["number"] == "../../../etc/passwd"


def test_format_options_are_checked_when_the_customer_is_saved(gw: Gateway) -> None:
    with pytest.raises(ConfigError, match="format csv option dialect"):
        add_customer(gw, formats=["csv"], format_options={"csv": {"dialect": "de"}})
    with pytest.raises(ConfigError, match="format csv option delimiter"):
        add_customer(gw, formats=["csv"], format_options={"csv": {"delimiter": "|"}})
    assert add_customer(gw, formats=["csv"], format_options={"csv": {"dialect": "en"}})


def test_a_dead_workers_lease_is_taken_over_at_once(gw: Gateway,
                                                    invoice_data: dict[str, Any]) -> None:
    import socket
    import subprocess
    import sys

    add_customer(gw)
    result = gw.push(load_invoice(invoice_data), source="t")
    # A worker on this host that died while delivering (its pid no longer exists).
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_worker = f"{socket.gethostname()}:{dead.stdout.strip()}:crashed"
    claimed = gw.store.claim_delivery(dead_worker, 300)
    assert claimed is not None
    gw.store.start_attempt(claimed.id, dead_worker)
    # Its lease has 300 s to run, yet a rerun delivers now.
    summary = Dispatcher(gw).run()
    assert summary.delivered == 1
    [delivery] = gw.store.deliveries(invoice_id=result.invoice_id)
    assert delivery.status == "delivered"
    assert [a.outcome for a in gw.store.attempts(delivery.id)] == ["abandoned", "delivered"]


def test_a_live_workers_lease_is_respected(gw: Gateway, invoice_data: dict[str, Any]) -> None:
    import os
    import socket

    add_customer(gw)
    gw.push(load_invoice(invoice_data), source="t")
    live_worker = f"{socket.gethostname()}:{os.getpid()}:busy"
    assert gw.store.claim_delivery(live_worker, 300) is not None
    assert Dispatcher(gw).run().attempted == 0


def test_a_gateway_that_fails_to_start_closes_the_store_it_opened(tmp_path: Path) -> None:
    """An archive that cannot be opened (a bad url here) must not leave the store's
    connection behind: a service retrying its start would pile them up."""
    import os

    from gateway.core.config import load_config

    data = tmp_path / "data"
    data.mkdir()
    (data / "gateway.toml").write_text('[archive]\nurl = "ftp://example.com/x"\n',
                                       encoding="utf-8")

    def open_files() -> set[str]:
        fds = Path("/proc/self/fd")
        return {os.readlink(fd) for fd in fds.iterdir() if fd.exists()
                and os.readlink(fd).startswith(str(data))}

    with pytest.raises(ConfigError, match="archive url") as failed:
        Gateway(load_config(data), get_plugin_manager())
    assert failed.traceback  # the failed gateway's frame is still alive here
    assert list(data.glob("*.db")), "the store was opened before the archive"
    assert open_files() == set()
