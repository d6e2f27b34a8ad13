"""Rendering many invoices at once: a warm process pool, two strategies.

``render_many(items, processes=2)`` returns one PDF per (invoice, language) in input
order. Workers are started once and kept (a weasyprint process needs about half a
second to start and load its fonts), each with its own :class:`~.render.Renderer`.

Strategies, measured in ``bench/bench_pdf.py``:

``per-invoice`` (default)
    each invoice is laid out and written as its own PDF. Same bytes as the ``pdf``
    format renders one at a time.
``combined``
    a chunk of invoices is laid out one by one (so "page X of Y" stays per invoice),
    written as one PDF, then split into one PDF per invoice with pikepdf. This shares
    one font subset across the chunk; the bytes of an invoice then depend on which
    other invoices were in its chunk.
"""

from __future__ import annotations

import atexit
import io
import multiprocessing
import os
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any, Literal

from gateway import Invoice, PluginError

from .render import PdfSettings, Renderer

Strategy = Literal["per-invoice", "combined"]
STRATEGIES: tuple[str, ...] = ("per-invoice", "combined")
DEFAULT_STRATEGY: Strategy = "per-invoice"

_renderer: Renderer | None = None
_pool: ProcessPoolExecutor | None = None
_pool_size = 0
_pool_engine = ""
_pool_lock = threading.Lock()


def _local_renderer() -> Renderer:
    global _renderer
    if _renderer is None:
        from .formats import renderer

        _renderer = renderer()
    return _renderer


def _warm(engine: str = "weasyprint") -> None:
    """Pool initializer: load the engine, the fonts and the templates before work."""
    if engine == "typst":
        from .formats import typst_renderer

        typst_renderer().stage(None, None)  # the compiler finds and indexes the fonts
        return
    r = _local_renderer()
    weasyprint = r._weasy()
    weasyprint.HTML(string="<p>Rēķins 0,00 € Invoice</p>").write_pdf(
        stylesheets=r.stylesheets(None), font_config=r.font_config())


def _render_chunk(jobs: Sequence[tuple[Invoice, str]], settings: PdfSettings,
                  strategy: str, variant: str | None) -> list[bytes]:
    if strategy == "per-invoice" or len(jobs) == 1:
        from .formats import render_pdf

        return [render_pdf(invoice, language, settings, variant=variant)
                for invoice, language in jobs]
    r = _local_renderer()
    documents = [r.layout(invoice, language, settings) for invoice, language in jobs]
    return split_combined(documents)


def split_combined(documents: Sequence[Any]) -> list[bytes]:
    """Write laid-out weasyprint documents as one PDF, then cut it per document."""
    import pikepdf

    pages = [page for document in documents for page in document.pages]
    combined = documents[0].copy(pages).write_pdf()
    out: list[bytes] = []
    with pikepdf.open(io.BytesIO(combined)) as source:
        start = 0
        for document in documents:
            count = len(document.pages)
            part = pikepdf.new()
            part.pages.extend(source.pages[start:start + count])
            metadata = document.metadata
            with part.open_metadata(set_pikepdf_as_editor=False) as meta:
                if metadata.title:
                    meta["dc:title"] = metadata.title
                if metadata.authors:
                    meta["dc:creator"] = list(metadata.authors)
            if metadata.title:
                part.docinfo["/Title"] = metadata.title
            buffer = io.BytesIO()
            part.save(buffer, deterministic_id=True)
            out.append(buffer.getvalue())
            start += count
    return out


def _pool_for(processes: int, engine: str = "weasyprint") -> ProcessPoolExecutor:
    global _pool, _pool_size, _pool_engine
    with _pool_lock:
        if _pool is None or _pool_size != processes or _pool_engine != engine:
            if _pool is not None:
                _pool.shutdown(wait=True)
            # forkserver: workers are forked from a clean server process, never from a
            # parent that may hold threads (SMTP servers, dispatcher leases) mid-lock.
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["plugins.pdf.render"])
            _pool = ProcessPoolExecutor(max_workers=processes, mp_context=context,
                                        initializer=_warm, initargs=(engine,))
            _pool_size, _pool_engine = processes, engine
        return _pool


def close_pool() -> None:
    """Stop the worker processes (they are kept warm between batches otherwise)."""
    global _pool, _pool_size
    with _pool_lock:
        if _pool is not None:
            _pool.shutdown(wait=True, cancel_futures=True)
        _pool, _pool_size = None, 0


atexit.register(close_pool)


def worker_pids() -> list[int]:
    """The process ids of the warm workers (for monitoring and the benchmark)."""
    with _pool_lock:
        # ProcessPoolExecutor has no public list of its processes.
        return sorted(_pool._processes) if _pool is not None else []


Job = tuple[str, Invoice, str, PdfSettings, "bytes | None"]


def _render_jobs(jobs: Sequence[Job | Exception]) -> list[bytes | Exception]:
    from .formats import render_document

    out: list[bytes | Exception] = []
    for job in jobs:
        if isinstance(job, Exception):
            out.append(job)
            continue
        try:
            out.append(render_document(*job))
        except Exception as exc:  # sent back by value: one invoice's failure, not the batch's
            out.append(PluginError(f"{job[0]}: invoice {job[1].number}: "
                                   f"{type(exc).__name__}: {exc}"))
    return out


def render_jobs(jobs: Sequence[Job | Exception], *, processes: int = 0,
                chunk_size: int = 0) -> list[bytes | Exception]:
    """Render documents of the ``pdf``/``facturx`` formats, in order, in the warm pool.

    A job is (format name, invoice, language, settings, embedded XML or None). The bytes
    are those the format renders one at a time: a worker holds no state that changes
    what it writes, so which worker rendered a document (and what before) does not show.
    """
    processes = min(processes or os.cpu_count() or 1, len(jobs))
    if processes <= 1:
        return _render_jobs(jobs)
    # Small chunks keep both workers busy to the end; up to 8 keep the hand-over cheap.
    chunk_size = chunk_size or max(1, min(8, len(jobs) // (processes * 4)))
    engines = {job[3].engine or "typst" for job in jobs if not isinstance(job, Exception)}
    engine = "typst" if "typst" in engines else "weasyprint"
    executor: Executor = _pool_for(processes, engine)
    futures = [executor.submit(_render_jobs, chunk) for chunk in _chunks(jobs, chunk_size)]
    return [result for future in futures for result in future.result()]


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def render_many(items: Iterable[tuple[Invoice, str]], *, settings: PdfSettings | None = None,
                processes: int | None = None, strategy: Strategy = DEFAULT_STRATEGY,
                chunk_size: int = 8, variant: str | None = None) -> list[bytes]:
    """Render completed invoices (each with its language) to PDFs, in input order.

    ``processes``: 0 means one per CPU core, 1 renders in this process (no pool);
    None takes ``processes`` from the settings (``[plugins.pdf]``).
    ``chunk_size``: invoices sent to a worker at a time (and split from one PDF by the
    ``combined`` strategy).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; known: {', '.join(STRATEGIES)}")
    if strategy == "combined" and variant is not None:
        raise ValueError("the combined strategy writes plain PDFs only (no PDF/A variant)")
    settings = settings or PdfSettings()
    if strategy == "combined" and settings.engine != "weasyprint":
        raise ValueError("the combined strategy is a weasyprint strategy")
    jobs = list(items)
    if not jobs:
        return []
    if processes is None:
        processes = settings.processes
    processes = processes or os.cpu_count() or 1
    processes = min(processes, max(1, -(-len(jobs) // chunk_size)))
    chunks = _chunks(jobs, chunk_size)
    if processes == 1:
        results = [_render_chunk(chunk, settings, strategy, variant) for chunk in chunks]
    else:
        executor: Executor = _pool_for(processes, settings.engine or "typst")
        futures = [executor.submit(_render_chunk, chunk, settings, strategy, variant)
                   for chunk in chunks]
        results = [future.result() for future in futures]
    return [pdf for chunk in results for pdf in chunk]
