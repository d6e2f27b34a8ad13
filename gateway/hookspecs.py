"""The whole plugin contract of the invoice gateway.

A plugin is a module (or any object) with functions marked ``@hookimpl``, named after
the specs below, registered through the ``invoice_gateway`` entry-point group. The
built-in plugins (JSON, UBL/CII, PDF, CSV, folder, e-mail, SFTP, portal) use this
contract and nothing else.

Hooks are called with keyword arguments; an implementation may accept any subset of
them, so new arguments can be added without breaking existing plugins.

Three kinds of objects are registered through hooks, and their shape is part of the
contract too: :class:`Format`, :class:`Channel` and :class:`Source` below. Any of them
may also have a method ``configure(settings: dict, data_dir: Path) -> None``; the core
calls it once at start with the ``[plugins.<name>]`` table of ``gateway.toml`` and the
data directory (for example to find a template directory or an SMTP server).

Order of calls for one pushed invoice::

    gateway_register_*          (once, when the plugin manager is built; databases only
                                 for ``gateway db``)
    Source.read / Format.parse  (input → Invoice)
    gateway_invoice_accepted    (after validation and idempotency check)
    Format.render, Format.validate  → gateway_document_rendered   (per format)
    Channel.session → Channel.deliver → gateway_delivery_succeeded | gateway_delivery_failed

One word, one meaning: a *channel* is a registered delivery channel type
(``Channel.name``: ``"email"``, ``"sftp-push"``), which is also what a customer's
preference names in ``channel = ...``; a *label* is the customer's own name for one of
their channels (``name = "accounting"``; it defaults to the channel). Hooks about a
delivery get both.

docs/plugins.md has a reference section per hook, with an example; ``gateway.testing``
(a pytest plugin) has fixtures and conformance suites for plugin authors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import pluggy

if TYPE_CHECKING:
    import click
    from pydantic import BaseModel

    from gateway.core.config import Config
    from gateway.core.documents import Bundle, DeliveryState, Document, Receipt, RenderContext
    from gateway.core.model import Invoice
    from gateway.core.storage import PluginDatabase
    from gateway.errors import Finding, InvoiceRejected

PROJECT = "invoice_gateway"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --------------------------------------------------------------------------- objects


@runtime_checkable
class Format(Protocol):
    """A document format: renders an invoice to bytes, and may read and check them.

    ``name`` is what customers put in their preferences (``"ubl"``, ``"pdf"``).
    A format may have an ``Options`` pydantic model: a customer's
    ``format_options[name]`` is validated with it when the customer is saved, and
    reaches :meth:`render` as ``context.options`` (merged over ``[plugins.<name>]``).
    ``can_parse`` / ``can_validate`` say whether :meth:`parse` / :meth:`validate` do
    anything; a render-only format sets both to ``False``. A format whose output must
    carry the time of rendering sets ``deterministic = False`` (the conformance suite
    then does not compare two renders).
    """

    name: ClassVar[str]
    media_type: ClassVar[str]
    extension: ClassVar[str]
    description: ClassVar[str]
    can_parse: ClassVar[bool]
    can_validate: ClassVar[bool]

    def render(self, invoice: Invoice, context: RenderContext) -> bytes:
        """Render a completed invoice. Pure: no I/O, same input → same bytes (where the
        format allows: PDFs may carry a creation date)."""

    def sniff(self, head: bytes, filename: str) -> bool:
        """True when ``head`` and the file name look like this format.

        ``head`` is the first 4 KiB; when no format recognises that, the whole input (up to
        64 MiB) is offered once more, so a format can read past a long prolog (an XML licence
        comment before the root element)."""

    def parse(self, data: bytes, source: str) -> Iterator[Invoice | InvoiceRejected]:
        """Read invoices from ``data``.

        Raise :class:`~gateway.errors.InputError` when the whole input is unreadable.
        For one bad invoice in a batch, *yield* (do not raise) an
        :class:`~gateway.errors.InvoiceRejected` naming its row or position, and go on:
        a generator that raises is finished, and the invoices after it would be lost.

        A format may also offer ``parse_file(path: Path, source: str)`` with the same
        result; :meth:`Gateway.read_file` prefers it, so a large batch file can be read
        as a stream in constant memory rather than handed over as one bytes object."""

    def validate(self, data: bytes) -> list[Finding]:
        """Check a document in this format by its official rules; every finding has a
        rule id. An empty list means valid."""


@runtime_checkable
class Channel(Protocol):
    """A delivery channel: carries a :class:`Bundle` to one customer.

    ``Settings`` is a pydantic model of the per-customer settings (addresses, SFTP
    target, ...); the core validates each customer's settings with it when the
    customer is saved, so a typo fails at once and not at delivery time.

    Optional class attributes: ``requires_formats`` (format names the channel cannot
    work without, e.g. ``("ubl",)``; a customer whose formats for this channel lack one
    is refused when saved) and ``retry`` (a :class:`~gateway.core.documents.RetryPolicy`
    over the ``[dispatcher]`` defaults; ``[dispatcher.retry.<name>]`` overrides it).
    """

    name: ClassVar[str]
    description: ClassVar[str]
    Settings: ClassVar[type[BaseModel]]

    def deliver(self, bundle: Bundle, settings: Any, state: DeliveryState,
                session: Any = None) -> Receipt:
        """Deliver the bundle; return a :class:`Receipt` with a stable id.

        Must be idempotent: the dispatcher may call it again for the same bundle after
        a crash. Use ``state`` to remember per-recipient progress durably. Raise
        :class:`~gateway.errors.DeliveryError` with ``retryable=True`` for a temporary
        failure (it will be retried with backoff, or after ``retry_after`` seconds when
        given) or ``retryable=False`` for a permanent one (the customer's fallback
        applies). ``session`` is the value the channel's :meth:`session` context
        yielded for this dispatcher run; it is passed only when ``deliver`` declares
        the parameter."""

    def session(self) -> AbstractContextManager[Any]:
        """A context held open around a batch of deliveries, e.g. to reuse connections;
        what it yields reaches :meth:`deliver` as ``session``. Return
        ``contextlib.nullcontext()`` when there is nothing to share."""


@runtime_checkable
class Source(Protocol):
    """An invoice source: turns some input (meter readings, an ERP export) into invoices."""

    name: ClassVar[str]
    description: ClassVar[str]

    def invoices(self, options: dict[str, Any]) -> Iterable[Invoice]:
        """Yield invoices (not yet completed; the core computes and checks totals).
        Bad ``options`` raise :class:`~gateway.errors.ConfigError` naming the option."""


# --------------------------------------------------------------------------- registration


@hookspec
def gateway_register_formats(register: Callable[[Format], None]) -> None:
    """Register document formats by calling ``register(format_instance)``.

    :param register: validates the object against :class:`Format` and records which
        plugin registered it; raises :class:`~gateway.errors.PluginError` when another
        plugin already registered a format of the same name.
    """


@hookspec
def gateway_register_channels(register: Callable[[Channel], None]) -> None:
    """Register delivery channels by calling ``register(channel_instance)``.

    :param register: as for formats; names must be unique across plugins.
    """


@hookspec
def gateway_register_sources(register: Callable[[Source], None]) -> None:
    """Register invoice sources by calling ``register(source_instance)``."""


@hookspec
def gateway_register_databases(register: Callable[[PluginDatabase], None],
                               config: Config) -> None:
    """Declare the plugin's own tables by calling ``register(plugin_database)``.

    A plugin that keeps tables (the portal's accounts, the SFTP mailbox index) declares
    them once as a :class:`~gateway.core.storage.PluginDatabase` (its name, its folder
    of migrations, its SQLite file) and opens them with ``DATABASE.open(config)`` or
    ``DATABASE.open_in(data_dir)``; opening applies what is pending. Registering the
    same object here lets ``gateway db status`` list its migrations and ``gateway db
    upgrade`` apply them (before a release is rolled out to every worker, say) on the
    embedded default (the file in the data directory) and on PostgreSQL (the schema
    named after the plugin).

    Called only by the ``gateway db`` commands, so it may import the plugin's storage
    code. An exception is reported with the plugin's name; the other databases are
    still shown or upgraded.

    :param register: takes one :class:`PluginDatabase`; names must be unique.
    :param config: the gateway's configuration, for a plugin whose file is a setting.
    """


@hookspec
def gateway_register_commands(cli: click.Group) -> None:
    """Add commands to the ``gateway`` command line (e.g. ``gateway serve sftp``).

    :param cli: the root click group; add to ``cli.commands["serve"]`` for servers.
    """


# --------------------------------------------------------------------------- lifecycle


@hookspec
def gateway_invoice_accepted(invoice_id: str, invoice: Invoice, customer_id: str) -> None:
    """An invoice passed validation and was stored (not called for a repeated push).

    This and the other lifecycle hooks observe: an exception is logged with the plugin's
    name and ignored, and the other implementations still run.
    """


@hookspec
def gateway_document_rendered(invoice_id: str, document: Document) -> None:
    """A document was rendered, validated and archived."""


@hookspec
def gateway_delivery_succeeded(invoice_id: str, channel: str, label: str,
                               receipt: Receipt) -> None:
    """A delivery was confirmed by its channel.

    :param channel: the channel type (``Channel.name``, e.g. ``"email"``).
    :param label: the customer's label for this channel (``"accounting"``; the channel
        type when the customer gave none).
    :param receipt: what the channel returned, with its structured ``data``.
    """


@hookspec
def gateway_delivery_failed(
    invoice_id: str, channel: str, label: str, error: str, permanent: bool,
    retry_at: float | None,
) -> None:
    """A delivery attempt failed.

    :param channel: the channel type; :param label: the customer's label for it.
    :param permanent: True when it will not be retried (the fallback, if any, is queued).
    :param retry_at: when the next attempt is due (epoch seconds), or None.
    """


# --------------------------------------------------------------------------- extensions


@hookspec
def portal_register_pages(register: Callable[..., None]) -> None:
    """Add customer pages to the portal (called when the portal's web app is made).

    ``register(path, label, get, post=None, templates=None, texts=None)``, one call per
    page: ``path`` (``/readings``; not the portal's own, nor under ``/api``, ``/static``
    or ``/operator``), ``label`` (``(lv, en)``, the navigation tab), ``get`` / ``post``
    (``handler(request: PageRequest) -> Response``, called after the portal checked the
    customer's login and, for POST, the CSRF token), ``templates`` (a directory of
    Jinja2 templates extending ``base.html``) and ``texts`` (``{key: (lv, en)}``).
    Mark the implementation ``@hookimpl(optionalhook=True)`` when the plugin should also
    load without the portal's page support.
    """
