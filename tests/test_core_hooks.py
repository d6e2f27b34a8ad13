"""Every hook in the contract is documented and called as documented."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import click

from gateway import hookimpl, hookspecs
from gateway.core import Dispatcher, load_invoice
from gateway.plugins import get_plugin_manager
from tests.conftest import add_customer
from tests.test_core_pipeline import RefusingPlugin

HOOKS = sorted(name for name, fn in vars(hookspecs).items()
               if inspect.isfunction(fn) and hasattr(fn, "invoice_gateway_spec"))
DOCS = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"


def test_every_hook_is_documented_and_tested() -> None:
    assert len(HOOKS) == 10
    source = Path(__file__).read_text(encoding="utf-8")
    for name in HOOKS:
        doc = inspect.getdoc(getattr(hookspecs, name))
        assert doc and len(doc) > 30, f"{name} needs a docstring"
        assert f"def test_hook_{name}" in source, f"{name} needs a test"


def test_every_hook_has_a_reference_section_with_an_example() -> None:
    text = DOCS.read_text(encoding="utf-8")
    sections = text.split("\n### ")
    for name in HOOKS:
        [section] = [s for s in sections if s.startswith(f"`{name}`")] or [""]
        assert section, f"docs/plugins.md has no '### `{name}`' section"
        for part in ("When it is called", "Arguments", "Returns", "```python"):
            assert part in section, f"docs/plugins.md, {name}: no {part!r}"
        assert f"def {name}(" in section, f"docs/plugins.md, {name}: the example lacks it"


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    @hookimpl
    def gateway_invoice_accepted(self, invoice_id: str, invoice: Any, customer_id: str) -> None:
        self.calls.append(("accepted", {"number": invoice.number, "customer": customer_id}))

    @hookimpl
    def gateway_document_rendered(self, invoice_id: str, document: Any) -> None:
        self.calls.append(("rendered", {"format": document.format}))

    @hookimpl
    def gateway_delivery_succeeded(self, invoice_id: str, channel: str, label: str,
                                   receipt: Any) -> None:
        self.calls.append(("delivered", {"channel": channel, "label": label,
                                         "receipt": receipt.id}))

    @hookimpl
    def gateway_delivery_failed(self, channel: str, error: str, permanent: bool) -> None:
        # takes only a subset of the arguments: pluggy's opt-in arguments
        self.calls.append(("failed", {"channel": channel, "permanent": permanent}))


def _run(gateway_factory: Any, invoice_data: dict[str, Any]) -> Recorder:
    recorder = Recorder()
    gw = gateway_factory(extra_plugins=(("recorder", recorder), ("refusing", RefusingPlugin())))
    add_customer(gw, channels=[{"channel": "folder", "name": "erp-inbox"},
                               {"channel": "refusing", "settings": {"mode": "permanent"}}])
    gw.push(load_invoice(invoice_data), source="t")
    Dispatcher(gw).run()
    return recorder


def test_hook_gateway_invoice_accepted(gateway_factory: Any, invoice_data: Any) -> None:
    calls = _run(gateway_factory, invoice_data).calls
    assert ("accepted", {"number": "E2611-00123", "customer": "100234567"}) in calls


def test_hook_gateway_document_rendered(gateway_factory: Any, invoice_data: Any) -> None:
    calls = _run(gateway_factory, invoice_data).calls
    assert ("rendered", {"format": "json"}) in calls


def test_hook_gateway_delivery_succeeded(gateway_factory: Any, invoice_data: Any) -> None:
    calls = _run(gateway_factory, invoice_data).calls
    delivered = [c for kind, c in calls if kind == "delivered"]
    assert delivered[0]["channel"] == "folder"  # the channel type
    assert delivered[0]["label"] == "erp-inbox"  # the customer's name for it
    assert delivered[0]["receipt"].startswith("folder:")


def test_hook_gateway_delivery_failed(gateway_factory: Any, invoice_data: Any) -> None:
    calls = _run(gateway_factory, invoice_data).calls
    assert ("failed", {"channel": "refusing", "permanent": True}) in calls


def test_hook_gateway_register_formats() -> None:
    plugins = get_plugin_manager()
    assert plugins.formats.items["json"].plugin == "json"


def test_hook_gateway_register_channels() -> None:
    plugins = get_plugin_manager()
    assert plugins.channels.items["folder"].plugin == "folder"


class ListSource:
    name = "list"
    description = "invoices from a list"

    def __init__(self, invoices: list[Any]) -> None:
        self._invoices = invoices

    def invoices(self, options: dict[str, Any]) -> list[Any]:
        return self._invoices


def test_hook_gateway_register_sources(invoice_data: Any) -> None:
    class SourcePlugin:
        @hookimpl
        def gateway_register_sources(self, register: Any) -> None:
            register(ListSource([load_invoice(invoice_data)]))

    plugins = get_plugin_manager(extra=(("src", SourcePlugin()),), load_entry_points=False)
    [invoice] = plugins.sources.get("list").invoices({})
    assert invoice.number == "E2611-00123"


def test_hook_gateway_register_commands() -> None:
    group = click.Group("gateway")

    class CommandPlugin:
        @hookimpl
        def gateway_register_commands(self, cli: click.Group) -> None:
            cli.add_command(click.Command("hello", callback=lambda: None))

    plugins = get_plugin_manager(extra=(("cmd", CommandPlugin()),), load_entry_points=False)
    plugins.hook.gateway_register_commands(cli=group)
    assert "hello" in group.commands


def test_hook_gateway_register_databases(tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from gateway.cli import cli
    from gateway.core.storage import PluginDatabase

    folder = tmp_path / "migrations" / "sqlite"
    folder.mkdir(parents=True)
    (folder / "ledger-0001-entries.sql").write_text("CREATE TABLE entries (id INTEGER);\n")
    seen: list[Any] = []

    class LedgerPlugin:
        @hookimpl
        def gateway_register_databases(self, register: Any, config: Any) -> None:
            seen.append(config.data_dir)
            register(PluginDatabase("ledger", folder.parent, "ledger.db"))

    plugins = get_plugin_manager(extra=(("ledger", LedgerPlugin()),), load_entry_points=False)
    data = tmp_path / "data"
    upgraded = CliRunner().invoke(cli, ["--data-dir", str(data), "db", "upgrade"],
                                  obj=plugins, catch_exceptions=False)
    assert "ledger: database" in upgraded.output and "applied ledger-0001-entries" in \
        upgraded.output
    status = CliRunner().invoke(cli, ["--data-dir", str(data), "db", "status", "--json"],
                                obj=plugins, catch_exceptions=False)
    names = [d["name"] for d in json.loads(status.output)["databases"]]
    assert names == ["core", "ledger"]
    assert [Path(d).resolve() for d in seen] == [data.resolve()] * 2  # config, each command
    assert (data / "ledger.db").exists()


def test_misspelt_hook_fails_at_once() -> None:
    class Typo:
        @hookimpl
        def gateway_register_format(self, register: Any) -> None:  # missing "s"
            pass

    import pluggy
    import pytest

    with pytest.raises(pluggy.PluginValidationError):
        get_plugin_manager(extra=(("typo", Typo()),), load_entry_points=False)


def test_hook_portal_register_pages() -> None:
    from plugins.portal.extensions import collect

    def show(request: Any) -> Any:
        return None

    class Pages:
        @hookimpl
        def portal_register_pages(self, register: Any) -> None:
            register(path="/meters", label=("Skaitītāji", "Meters"), get=show)

    # the spec is in the one contract: no portal import is needed to implement it
    plugins = get_plugin_manager(extra=(("pages", Pages()),), load_entry_points=False)
    [page] = collect(plugins, taken={"/invoices"})
    assert (page.path, page.plugin, page.get) == ("/meters", "pages", show)


def test_the_plugin_docs_name_every_setting_and_public_name() -> None:
    import gateway
    from gateway.core.config import ChannelLimits, DispatcherSettings, RetrySettings
    from gateway.plugins import RESERVED_CHANNEL_KEYS
    from gateway.testing import __all__ as testing_names

    text = DOCS.read_text(encoding="utf-8")
    for model in (DispatcherSettings, RetrySettings, ChannelLimits):
        for key in model.model_fields:
            if key not in ("limits", "retry"):
                assert f"`{key}`" in text, f"docs/plugins.md does not name {key}"
    for key in RESERVED_CHANNEL_KEYS:
        assert f"`{key}`" in text
    for name in ("Bundle", "DeliveryError", "DeliveryState", "Receipt", "RenderContext",
                 "RetryPolicy", "secret_from_env", "hookimpl"):
        assert name in gateway.__all__ and name in text, name
    for name in ("check_format", "check_channel", "check_source", "add_customer",
                 "RecordingChannel", "Clock"):
        assert name in testing_names and name in text, name
