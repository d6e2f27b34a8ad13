"""The push pipeline: validate → render → archive → queue deliveries.

Everything a push changes is written in one database transaction after the documents
are safely in the archive, so a crash at any point leaves either nothing (rerun does it
all) or the whole invoice with its outbox (rerun finds it and sends what is due).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.core import limits, netguard
from gateway.core.archive import ArchiveBackend, open_archive
from gateway.core.config import Config
from gateway.core.customers import ChannelPreference, Customer, buyer_keys
from gateway.core.documents import Document, RenderContext, document_stem
from gateway.core.model import Invoice
from gateway.core.storage import (
    DocumentRecord,
    InvoiceRecord,
    NewDelivery,
    Store,
    open_store,
)
from gateway.core.text import quoted
from gateway.core.validation import complete, first_error
from gateway.errors import (
    ConfigError,
    DuplicateInvoice,
    Finding,
    GatewayError,
    InputError,
    InvoiceRejected,
    PluginError,
)
from gateway.plugins import Plugins, get_plugin_manager

log = logging.getLogger("gateway.pipeline")
SNIFF_BYTES = 4096
#: A file no format recognises by its head is read whole for a second look only up to
#: this size (the XML formats' own limit for one document).
DETECT_MAX_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class PushResult:
    """What became of one pushed invoice."""

    status: str  # "accepted", "unchanged" or "rejected"
    number: str | None
    source: str
    invoice_id: str | None = None
    customer_id: str | None = None
    error: GatewayError | None = None
    documents: tuple[str, ...] = ()


@dataclass(frozen=True)
class Prepared:
    """An invoice's documents rendered and validated ahead of its push, by
    :meth:`Gateway.prepare` (e.g. in a worker process with the same configuration).

    A push uses them only for the very invoice (``digest``) and customer they were made
    for; anything else is rendered again."""

    digest: str
    customer_id: str
    documents: tuple[Document, ...]


def invoice_id_for(seller_key: str, number: str) -> str:
    """Stable id of an invoice: the same (seller, number) always maps to the same id."""
    return hashlib.sha256(f"{seller_key}\x1f{number}".encode()).hexdigest()[:24]


def content_hash(invoice: Invoice) -> str:
    canonical = invoice.model_dump_json(exclude_none=True, by_alias=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


class Gateway:
    """One gateway instance: configuration, plugins, store and archive together."""

    def __init__(self, config: Config, plugins: Plugins | None = None,
                 store: Store | None = None) -> None:
        self.config = config
        self.plugins = plugins or get_plugin_manager()
        self.store: Store = store or open_store(config)
        try:
            self.archive: ArchiveBackend = open_archive(config)
            limits.configure(config.limits)
            netguard.configure(config.network)
            for registry in (self.plugins.formats, self.plugins.channels,
                             self.plugins.sources):
                for obj in registry:
                    configure = getattr(obj, "configure", None)
                    if callable(configure):
                        configure(settings=config.plugin_settings(obj.name),
                                  data_dir=config.data_dir)
        except BaseException:
            # A gateway that does not start leaves no connection behind (a service that
            # retries its start would pile them up); a store it was given stays open.
            if store is None:
                self.store.close()
            raise

    def close(self) -> None:
        self.store.close()

    # ------------------------------------------------------------------ reading input

    def read_file(self, path: Path) -> Iterator[Invoice | InvoiceRejected]:
        """Parse a file with the first format that recognises it.

        Yields invoices, or :class:`InvoiceRejected` for one unreadable invoice so that
        the rest of a batch file still goes through. Raises :class:`InputError` when no
        format reads the file.
        """
        source = str(path)
        fmt = self.detect_file(path)
        # An optional parse_file(path, source) lets a format stream a large batch file
        # instead of receiving it as one bytes object.
        parse_file = getattr(fmt, "parse_file", None)
        if callable(parse_file):
            yield from self._parsed(parse_file(path, source), fmt, source)
            return
        data = self._read_all(path, source)
        yield from self._parsed(fmt.parse(data, source), fmt, source)

    def detect_file(self, path: Path) -> Any:
        """The format of a file, from its first 4 KiB, else (a long prolog, such as an XML
        licence comment, can hide the root element) from the whole file, bounded like the
        largest document a format reads whole. Raises :class:`InputError`."""
        source = str(path)
        try:
            with path.open("rb") as fh:
                head = fh.read(SNIFF_BYTES)
        except OSError as exc:
            raise InputError(exc.strerror or str(exc), source=source) from None
        try:
            return self.detect_format(head, path.name, source=source)
        except InputError:
            if len(head) < SNIFF_BYTES or path.stat().st_size > DETECT_MAX_BYTES:
                raise
            return self.detect_format(self._read_all(path, source), path.name, source=source)

    @staticmethod
    def _read_all(path: Path, source: str) -> bytes:
        try:
            limits.check_file_size(path.stat().st_size, source=source)
            return path.read_bytes()
        except OSError as exc:
            raise InputError(exc.strerror or str(exc), source=source) from None

    def read_bytes(self, data: bytes, *, source: str,
                   filename: str = "") -> Iterator[Invoice | InvoiceRejected]:
        limits.check_file_size(len(data), source=source)
        fmt = self.detect_format(data, filename or source, source=source)
        yield from self._parsed(fmt.parse(data, source), fmt, source)

    @staticmethod
    def _parsed(
        parsed: Iterable[Invoice | InvoiceRejected], fmt: Any = None, source: str = "",
    ) -> Iterator[Invoice | InvoiceRejected]:
        try:
            yield from parsed
        except InvoiceRejected as exc:
            # A parser that raises instead of yielding ends its batch here; keep the error.
            yield exc
        except GatewayError:
            raise
        except RecursionError:
            raise InputError("nested too deeply to read", source=source) from None
        except Exception as exc:
            # A parser's own crash on hostile input is a plugin bug, but the user still
            # gets one line naming the input, and the rest of the batch goes on.
            name = getattr(fmt, "name", "?")
            log.exception("format %s failed to read %s", name, source)
            raise InputError(f"format {name!r} could not read this input "
                             f"({type(exc).__name__}: {exc})", source=source) from None

    def detect_format(self, data: bytes, filename: str, *, source: str) -> Any:
        """The format whose ``sniff`` recognises the first 4 KiB of ``data``, or, when none
        does and there is more, the whole of ``data`` up to :data:`DETECT_MAX_BYTES` (a
        format such as XML may need to read past a long prolog to its root element)."""
        heads = [data[:SNIFF_BYTES]] + (
            [data] if SNIFF_BYTES < len(data) <= DETECT_MAX_BYTES else [])
        for head in heads:
            matches = [fmt for fmt in self.plugins.formats
                       if getattr(fmt, "can_parse", False) and fmt.sniff(head, filename)]
            if matches:
                # A format derived from another one (``base = "ubl"``) is the more specific
                # reading of a document both recognise.
                names = {fmt.name for fmt in matches}
                derived = [fmt for fmt in matches if getattr(fmt, "base", None) in names]
                return (derived or matches)[0]
        readable = [f.name for f in self.plugins.formats if getattr(f, "can_parse", False)]
        raise InputError(
            f"not a format the gateway can read (readable: {', '.join(sorted(readable))})",
            source=source,
        )

    # ------------------------------------------------------------------ rendering

    def render(self, invoice: Invoice, format_name: str, *, language: str = "en",
               options: dict[str, Any] | None = None, customer_id: str | None = None,
               validate: bool | None = None,
               rendered: dict[str, bytes] | None = None) -> Document:
        """Render a completed invoice in one format, validating the output if the format can.

        ``rendered``: bytes already rendered for this invoice and customer by format name
        (see :meth:`push_many`); used instead of rendering again, still validated.
        """
        render_bytes = self._renderer(invoice, format_name, language=language,
                                      options=options, customer_id=customer_id,
                                      cache=dict(rendered or {}))
        fmt = self.plugins.formats.get(format_name)
        content = render_bytes(format_name)
        should_validate = self.config.gateway.validate_rendered if validate is None else validate
        if should_validate and getattr(fmt, "can_validate", False):
            findings = [f for f in fmt.validate(content) if f.fatal]
            if findings:
                raise InvoiceRejected(findings, invoice=invoice.number,
                                      source=f"rendered {format_name}")
        return Document(format=fmt.name, media_type=fmt.media_type,
                        filename=f"{document_stem(invoice.number)}.{fmt.extension}",
                        content=content)

    def _renderer(self, invoice: Invoice, format_name: str, *, language: str,
                  options: dict[str, Any] | None, customer_id: str | None,
                  cache: dict[str, bytes]) -> Callable[..., bytes]:
        """Render one invoice in any format by name, each at most once (``cache``).

        ``render_bytes(name, options)`` is what ``RenderContext.render_other`` calls: with
        options for that format (checked by its ``Options``), cached apart."""

        def render_bytes(name: str, other: dict[str, Any] | None = None) -> bytes:
            key = name
            if other is not None:
                self.format_options_model(name, other,
                                          context=f"format {format_name} rendering {name}")
                key = f"{name}\x1f{json.dumps(other, sort_keys=True, default=str)}"
            if key not in cache:
                fmt = self.plugins.formats.get(name)
                ctx = self._context(name, format_name, language, options, customer_id,
                                    render_bytes) if other is None else \
                    self._context(name, name, language,
                                  {**(_allow_loss(options) or {}), **other}, customer_id,
                                  render_bytes)
                try:
                    cache[key] = fmt.render(invoice, ctx)
                except GatewayError:
                    raise
                except Exception as exc:  # a plugin bug must name the plugin and invoice
                    log.exception("format %s failed on invoice %s", name, invoice.number)
                    raise PluginError(f"format {name!r} failed to render invoice "
                                      f"{invoice.number}: {exc}") from exc
            return cache[key]

        return render_bytes

    def _context(self, name: str, format_name: str, language: str,
                 options: dict[str, Any] | None, customer_id: str | None,
                 render_bytes: Callable[..., bytes]) -> RenderContext:
        # allow_loss is the user's word for the whole conversion, also for the XML a
        # Factur-X PDF embeds.
        given = options if name == format_name else _allow_loss(options)
        return RenderContext(language=language, options=self._format_options(name, given),
                             customer_id=customer_id, render_format=render_bytes)

    def _format_options(self, name: str, given: dict[str, Any] | None) -> dict[str, Any]:
        return {**self.config.plugin_settings(name), **(given or {})}

    # ------------------------------------------------------------------ customers

    def resolve_customer(self, invoice: Invoice, customer_id: str | None) -> Customer:
        if customer_id is not None:
            customer = self.store.get_customer(customer_id)
            if customer is None:
                raise ConfigError(f"unknown customer {quoted(customer_id)}")
            return customer
        keys = set(buyer_keys(invoice))
        customer = self.store.find_customer(keys)
        if customer is not None:
            return customer
        raise InvoiceRejected(
            [Finding("GW-CUSTOMER", "buyer",
                     f"no customer matches buyer {quoted(invoice.buyer.name)} (identifiers: "
                     f"{', '.join(sorted(keys)) or 'none'}); add one with "
                     "'gateway customer add' or give --customer", term="BG-7")],
            invoice=invoice.number)

    def check_customer(self, customer: Customer) -> None:
        """Fail now, not at delivery time, when a preference names a missing plugin or
        has settings its channel cannot use."""
        for name in customer.formats:
            self.plugins.formats.get(name)
        for name, options in customer.format_options.items():
            self.format_options_model(name, options, context=f"customer {customer.id}")
        for pref in customer.channels:
            channel = self.plugins.channels.get(pref.channel)
            for name in pref.formats or ():
                self.plugins.formats.get(name)
            self.channel_settings(channel, pref.settings, context=f"customer {customer.id}, "
                                  f"channel {pref.label}")
            missing = [f for f in getattr(channel, "requires_formats", ())
                       if f not in customer.formats_for(pref)]
            if missing:
                raise ConfigError(
                    f"customer {customer.id}, channel {pref.label}: the {pref.channel} channel "
                    f"needs the format(s) {', '.join(missing)}; add them to the customer's "
                    "formats or to this channel's formats")
            if pref.fallback and customer.channel(pref.fallback) is None \
                    and pref.fallback not in self.plugins.channels:
                raise ConfigError(f"customer {customer.id}, channel {pref.label}: fallback "
                                  f"{quoted(pref.fallback)} is neither a channel of this customer "
                                  f"nor an installed channel")

    def format_options_model(self, name: str, options: dict[str, Any], *,
                             context: str) -> Any:
        """Validate a customer's options for one format with the format's ``Options``
        model, when it has one (a format without it takes its options unchecked)."""
        from pydantic import ValidationError

        fmt = self.plugins.formats.get(name)
        model = getattr(fmt, "Options", None)
        if model is None:
            return options
        try:
            return model.model_validate(options)
        except ValidationError as exc:
            loc, msg = first_error(exc)
            raise ConfigError(f"{context}: format {name} option {loc or '(all)'}: "
                              f"{msg}") from None

    def channel_settings(self, channel: Any, settings: dict[str, Any], *, context: str) -> Any:
        from pydantic import ValidationError

        merged = {**self.config.plugin_settings(channel.name), **settings}
        try:
            return channel.Settings.model_validate(merged)
        except ValidationError as exc:
            loc, msg = first_error(exc)
            raise ConfigError(f"{context}: setting {loc or '(all)'}: {msg}") from None

    # ------------------------------------------------------------------ push

    def push(self, invoice: Invoice, *, source: str = "-",
             customer_id: str | None = None, received: Document | None = None,
             rendered: dict[str, dict[str, bytes]] | None = None,
             render_later: bool = False, prepared: Prepared | None = None) -> PushResult:
        """Accept one invoice: check, render, archive and queue its deliveries.

        ``received`` is the document an incoming invoice arrived as (e.g. the UBL from a
        Peppol access point): it is archived and delivered as it is, instead of a
        rendering of the same format, so the customer gets the document as it arrived.

        Never raises for a problem with the invoice; the result says what happened.
        ``rendered``: documents rendered ahead by :meth:`push_many`, by format name of
        the customer's format, then by format name of the bytes.
        ``render_later`` stores the checked invoice with a render job and returns
        ("queued"); a worker renders it (:meth:`render_queued`, docs/scale.md).
        ``prepared``: this invoice's documents from :meth:`prepare`, already validated.
        """
        try:
            return self._push(invoice, source=source, customer_id=customer_id,
                              received=received, rendered=rendered or {},
                              render_later=render_later, prepared=prepared)
        except (InvoiceRejected, DuplicateInvoice, ConfigError, PluginError) as exc:
            if isinstance(exc, InvoiceRejected) and exc.source is None:
                exc.source = source
                exc.args = (exc.summary(),)
            log.info("invoice rejected", extra={"source": source, "invoice": invoice.number,
                                                   "error": str(exc)})
            return PushResult("rejected", invoice.number, source, error=exc)

    def _push(self, invoice: Invoice, *, source: str, customer_id: str | None,
              received: Document | None = None,
              rendered: dict[str, dict[str, bytes]] | None = None,
              render_later: bool = False, prepared: Prepared | None = None) -> PushResult:
        completed = complete(invoice, source=source)
        seller_key = completed.seller_key
        digest = content_hash(completed)
        invoice_id = invoice_id_for(seller_key, completed.number)
        existing = self.store.find_invoice(seller_key, completed.number)
        if existing is not None:
            if existing.content_hash == digest:
                return PushResult("unchanged", completed.number, source, existing.id,
                                  existing.customer_id)
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(existing.created_at))
            raise DuplicateInvoice(
                f"{source}: invoice {completed.number} of seller {seller_key} was already "
                f"accepted on {when} with different content; a correction needs a new "
                "number or a credit note"
            )
        customer = self.resolve_customer(completed, customer_id)
        if render_later:
            self.store.insert_invoice(self._invoice_record(completed, invoice_id, customer,
                                                           digest, source), [], [],
                                      render_later=True)
            log.info("invoice queued for rendering", extra={
                "invoice": completed.number, "id": invoice_id, "customer": customer.id})
            self.plugins.notify("gateway_invoice_accepted", invoice_id=invoice_id,
                                invoice=completed, customer_id=customer.id)
            return PushResult("queued", completed.number, source, invoice_id, customer.id)
        if prepared is not None and received is None and prepared.digest == digest \
                and prepared.customer_id == customer.id:
            documents = list(prepared.documents)
        else:
            documents = self._render_documents(completed, customer, received=received,
                                               rendered=rendered)
        records = self._archive_documents(invoice_id, documents)
        deliveries = [self._new_delivery(customer, pref, invoice_id) for pref in customer.channels]
        record = self._invoice_record(completed, invoice_id, customer, digest, source)
        self.store.insert_invoice(record, records, deliveries)
        log.info("invoice accepted", extra={"invoice": completed.number, "id": invoice_id,
                                            "customer": customer.id,
                                            "formats": [d.format for d in documents]})
        self.plugins.notify("gateway_invoice_accepted", invoice_id=invoice_id,
                            invoice=completed, customer_id=customer.id)
        for doc in documents:
            self.plugins.notify("gateway_document_rendered", invoice_id=invoice_id, document=doc)
        return PushResult("accepted", completed.number, source, invoice_id, customer.id,
                          documents=tuple(d.filename for d in documents))

    def _render_documents(self, completed: Invoice, customer: Customer, *,
                          received: Document | None = None,
                          rendered: dict[str, dict[str, bytes]] | None = None,
                          ) -> list[Document]:
        documents: list[Document] = []
        used_names: set[str] = set()
        for name in _wanted_formats(customer):
            if received is not None and received.format == name:
                doc = received
            else:
                doc = self.render(completed, name, language=customer.language,
                                  options=customer.format_options.get(name),
                                  customer_id=customer.id,
                                  rendered=(rendered or {}).get(name))
            if doc.filename in used_names:  # two formats with the same extension
                stem, _, ext = doc.filename.rpartition(".")
                doc = Document(doc.format, doc.media_type, f"{stem}-{doc.format}.{ext}",
                               doc.content)
            used_names.add(doc.filename)
            documents.append(doc)
        return documents

    def _archive_documents(self, invoice_id: str,
                           documents: list[Document]) -> list[DocumentRecord]:
        return [DocumentRecord(invoice_id, doc.format, doc.filename, doc.media_type,
                               self.archive.put(doc.content), doc.size) for doc in documents]

    def _invoice_record(self, completed: Invoice, invoice_id: str, customer: Customer,
                        digest: str, source: str) -> InvoiceRecord:
        totals = completed.require_totals()
        return InvoiceRecord(
            id=invoice_id, seller_key=completed.seller_key, number=completed.number,
            customer_id=customer.id, content_hash=digest,
            invoice_json=completed.model_dump_json(exclude_none=True),
            type_code=completed.type_code, issue_date=completed.issue_date.isoformat(),
            due_date=completed.due_date.isoformat() if completed.due_date else None,
            currency=completed.currency, amount_due=str(totals.amount_due),
            buyer_name=completed.buyer.name, contract_reference=completed.contract_reference,
            source=source, created_at=time.time())

    def render_queued(self, invoice_id: str, worker: str) -> tuple[str, list[int]]:
        """Render, archive and queue the deliveries of an invoice pushed with
        ``render_later``, under a lease on its render job.

        Returns (outcome, ids of the deliveries queued): "rendered"; "skipped" when the
        job is not due (done, or leased by another worker — a duplicated task); "retry" or
        "failed" when rendering failed. Safe to call any number of times.
        """
        settings = self.config.queue
        lease = settings.render_lease_seconds if settings else 600.0
        if not self.store.claim_render(invoice_id, worker, lease):
            return "skipped", []
        job = self.store.render_job(invoice_id) or {}
        try:
            record = self.store.get_invoice(invoice_id)
            if record is None:
                raise ConfigError(f"render job for a missing invoice {invoice_id}")
            customer = self.store.get_customer(record.customer_id)
            if customer is None:
                raise ConfigError(f"invoice {record.number}: customer {record.customer_id!r} "
                                  "no longer exists")
            completed = Invoice.model_validate_json(record.invoice_json)
            documents = self._render_documents(completed, customer)
            records = self._archive_documents(invoice_id, documents)
            deliveries = [self._new_delivery(customer, pref, invoice_id)
                          for pref in customer.channels]
        except (InvoiceRejected, ConfigError, PluginError) as exc:
            # No retry renders a rule-breaking document or a missing customer correctly.
            self.store.fail_render(invoice_id, worker, str(exc), retry_at=None)
            log.error("rendering failed", extra={"id": invoice_id, "error": str(exc)})
            return "failed", []
        except Exception as exc:  # the archive or the database is away: try again later
            attempts = int(job.get("attempts") or 1)
            max_attempts = settings.render_max_attempts if settings else 8
            retry_at = time.time() + min(3600.0, 5.0 * 2 ** (attempts - 1)) \
                if attempts < max_attempts else None
            if not isinstance(exc, GatewayError):
                log.exception("rendering invoice %s raised", invoice_id)
            self.store.fail_render(invoice_id, worker, f"{type(exc).__name__}: {exc}",
                                   retry_at=retry_at)
            return ("retry" if retry_at else "failed"), []
        delivery_ids = self.store.finish_render(invoice_id, worker, records, deliveries)
        if delivery_ids is None:
            log.warning("render lease on invoice %s was lost before it was recorded",
                        invoice_id)
            return "skipped", []
        log.info("invoice rendered", extra={"invoice": record.number, "id": invoice_id,
                                            "formats": [d.format for d in documents]})
        for doc in documents:
            self.plugins.notify("gateway_document_rendered", invoice_id=invoice_id, document=doc)
        return "rendered", delivery_ids

    def prepare(self, invoice: Invoice, *, source: str = "-",
                customer_id: str | None = None) -> Prepared:
        """Check an invoice and render and validate the documents its customer gets, as
        :meth:`push` would, without storing anything: the CPU-heavy half of a push, for
        a worker process. Raises what push would report (:class:`InvoiceRejected`, ...)."""
        completed = complete(invoice, source=source)
        customer = self.resolve_customer(completed, customer_id)
        documents = self._render_documents(completed, customer)
        return Prepared(content_hash(completed), customer.id, tuple(documents))

    def push_many(self, items: Iterable[tuple[Invoice, str]], *,
                  customer_id: str | None = None, batch_size: int = 64,
                  on_result: Callable[[PushResult], None] | None = None,
                  ) -> Iterator[PushResult]:
        """Push (invoice, source) pairs as :meth:`push` does, a batch at a time.

        A format may offer ``render_batch(items) -> list[bytes | Exception]`` for a list
        of (completed invoice, RenderContext): the PDF plugin renders them in a warm
        process pool. Each batch's documents are rendered ahead that way, then every
        invoice is pushed one by one with its documents ready (still validated, archived
        and committed one invoice per transaction). A failed batch render is rendered
        again by the push of its invoice, which reports the error as push does. At most
        ``batch_size`` invoices' documents are held at once.
        """
        batch: list[tuple[Invoice, str]] = []
        for item in items:
            batch.append(item)
            if len(batch) >= batch_size:
                yield from self._push_batch(batch, customer_id, on_result)
                batch = []
        if batch:
            yield from self._push_batch(batch, customer_id, on_result)

    def _push_batch(self, batch: list[tuple[Invoice, str]], customer_id: str | None,
                    on_result: Callable[[PushResult], None] | None) -> Iterator[PushResult]:
        ready = self._render_ahead(batch, customer_id)
        for index, (invoice, source) in enumerate(batch):
            result = self.push(invoice, source=source, customer_id=customer_id,
                               rendered=ready.get(index))
            if on_result is not None:
                on_result(result)
            yield result

    def _render_ahead(self, batch: list[tuple[Invoice, str]],
                      customer_id: str | None) -> dict[int, dict[str, dict[str, bytes]]]:
        jobs: dict[str, list[tuple[int, Invoice, RenderContext, dict[str, bytes]]]] = {}
        for index, (invoice, source) in enumerate(batch):
            try:
                completed = complete(invoice, source=source)
                if self.store.find_invoice(completed.seller_key, completed.number):
                    continue  # unchanged or a duplicate: push decides without rendering
                customer = self.resolve_customer(completed, customer_id)
            except GatewayError:
                continue  # push reports it
            for name in _wanted_formats(customer):
                fmt = self.plugins.formats.get(name)
                if not callable(getattr(fmt, "render_batch", None)):
                    continue
                options = customer.format_options.get(name)
                cache: dict[str, bytes] = {}
                render_bytes = self._renderer(completed, name, language=customer.language,
                                              options=options, customer_id=customer.id,
                                              cache=cache)
                ctx = self._context(name, name, customer.language, options, customer.id,
                                    render_bytes)
                jobs.setdefault(name, []).append((index, completed, ctx, cache))
        ready: dict[int, dict[str, dict[str, bytes]]] = {}
        for name, entries in jobs.items():
            fmt = self.plugins.formats.get(name)
            try:
                results = fmt.render_batch([(inv, ctx) for _, inv, ctx, _ in entries])
            except Exception:  # push renders each again and names the failing invoice
                log.exception("format %s failed to render a batch", name)
                continue
            for (index, _, _, cache), content in zip(entries, results, strict=True):
                if isinstance(content, bytes):
                    ready.setdefault(index, {})[name] = {**cache, name: content}
        return ready

    def _new_delivery(self, customer: Customer, pref: ChannelPreference, invoice_id: str,
                      *, fallback_for: int | None = None, reason: str | None = None,
                      seen: frozenset[str] = frozenset()) -> NewDelivery:
        fallback = self._resolve_fallback(customer, pref, seen | {pref.label})
        suffix = f":fallback:{fallback_for}" if fallback_for is not None else ""
        return NewDelivery(
            label=pref.label, channel_type=pref.channel, settings=pref.settings,
            formats=customer.formats_for(pref), fallback=fallback,
            idempotency_key=f"{invoice_id}:{pref.label}{suffix}",
            fallback_for=fallback_for, reason=reason)

    def _resolve_fallback(self, customer: Customer, pref: ChannelPreference,
                          seen: frozenset[str]) -> dict[str, Any] | None:
        """Snapshot the fallback chain at push time, so later preference changes apply
        from the next invoice on, and a loop (a → b → a) ends."""
        if not pref.fallback or pref.fallback in seen:
            return None
        target = customer.channel(pref.fallback) or ChannelPreference(channel=pref.fallback)
        return {
            "channel": target.channel, "label": target.label,
            "settings": target.settings, "formats": customer.formats_for(target),
            "fallback": self._resolve_fallback(customer, target, seen | {target.label}),
        }

    def load_invoice(self, invoice_id: str) -> Invoice:
        record = self.store.get_invoice(invoice_id)
        if record is None:
            raise GatewayError(f"no invoice {invoice_id}")
        return Invoice.model_validate_json(record.invoice_json)

    def find(self, ref: str) -> InvoiceRecord:
        """An invoice by id or by number (unique across sellers, or ambiguous)."""
        record = self.store.get_invoice(ref)
        if record is not None:
            return record
        matches = self.store.invoices_by_number(ref)
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise GatewayError(f"no invoice with id or number {quoted(ref)}")
        raise GatewayError(f"invoice number {quoted(ref)} is used by several sellers; give the id")


def _wanted_formats(customer: Customer) -> list[str]:
    """Every format any of the customer's channels needs, in preference order."""
    wanted = list(customer.formats)
    for pref in customer.channels:
        for name in customer.formats_for(pref):
            if name not in wanted:
                wanted.append(name)
    return wanted


def _allow_loss(options: dict[str, Any] | None) -> dict[str, Any] | None:
    """The part of a conversion's options every format it renders on the way sees."""
    return {"allow_loss": options["allow_loss"]} if options and "allow_loss" in options \
        else None
