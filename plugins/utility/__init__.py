"""Built-in plugin 'utility': an electricity supplier's monthly billing from meter readings.

Registers the ``utility`` invoice source, the ``gateway utility ...`` and
``gateway demo`` commands and, when the portal is installed, its meter-reading page.
The supplier's data (customers, contracts, metering points, tariffs and VAT rates with
validity dates, readings with who sent them and how, bills) lives in its own SQLite
file, ``utility.db`` in the data directory, or with a PostgreSQL store in that database,
schema ``utility`` (:mod:`plugins.utility.store`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

from pydantic import ValidationError

from gateway import Invoice, first_error, hookimpl
from gateway.errors import ConfigError
from plugins.utility.dates import local_today


class UtilitySource:
    """The invoice source: one invoice per contract and month."""

    name: ClassVar[str] = "utility"
    description: ClassVar[str] = ("Electricity supplier: meter readings to monthly invoices "
                                  "(Latvian billing rules)")

    def __init__(self) -> None:
        from plugins.utility.settings import UtilitySettings

        self.settings = UtilitySettings()
        self.data_dir = Path("gateway-data")
        self._store: Any = None
        # The Latvian day a reading arrives, by which its window is judged; replaceable
        # for tests and simulations (the demo lives through its own days).
        self.today: Callable[[], dt.date] = local_today

    def configure(self, settings: dict[str, Any], data_dir: Path) -> None:
        from plugins.utility.settings import UtilitySettings

        try:
            self.settings = UtilitySettings.model_validate(settings)
        except ValidationError as exc:
            loc, msg = first_error(exc)
            raise ConfigError(f"[plugins.utility] {loc}: {msg}") from None
        self.data_dir = data_dir
        self.close()

    @property
    def store(self) -> Any:
        """The utility database, opened on first use (``gateway --help`` opens nothing)."""
        if self._store is None:
            from plugins.utility.store import UtilityStore

            self._store = UtilityStore(self.data_dir / self.settings.database)
        return self._store

    def biller(self) -> Any:
        from plugins.utility.billing import Biller

        return Biller(self.store, self.settings)

    def invoices(self, options: dict[str, Any]) -> Iterable[Invoice]:
        """The month's invoices that are due: ``options`` has ``period`` ("2026-10"), and
        optionally ``as_of`` (a date; default today) and ``paper_of`` (customer id → whether
        the customer gets paper, None for unknown; default: read the gateway's customers).
        Invoice numbers are reserved; nothing is marked issued (``gateway utility bill``
        does that after a successful push)."""
        from plugins.utility.run import preview

        paper_of = options.get("paper_of")
        if paper_of is None:
            from gateway.core.config import load_config
            from gateway.core.storage import open_store

            core = open_store(load_config(self.data_dir))
            try:
                known = {c.id: c.paper for c in core.list_customers()}
            finally:
                core.close()
            paper_of = known.get
        return preview(self.biller(), options, paper_of)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


@hookimpl
def gateway_register_sources(register: Any) -> None:
    register(UtilitySource())


@hookimpl
def gateway_register_databases(register: Any, config: Any) -> None:
    import dataclasses

    from plugins.utility.store import DATABASE

    sqlite_file = config.plugin_settings("utility").get("database", DATABASE.sqlite_file)
    register(dataclasses.replace(DATABASE, sqlite_file=str(sqlite_file)))


@hookimpl
def gateway_register_commands(cli: Any) -> None:
    from plugins.utility.cli import demo, serve_readings, utility

    cli.add_command(utility)
    cli.add_command(demo)
    serve = cli.commands.get("serve")
    if serve is not None:
        serve.add_command(serve_readings)


@hookimpl(optionalhook=True)
def portal_register_pages(register: Any) -> None:
    """The customer portal's "Meter reading" page (when the portal is installed)."""
    from plugins.utility.portal import register_pages

    register_pages(register)
