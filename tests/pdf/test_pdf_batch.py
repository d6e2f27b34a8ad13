"""Batch rendering: a warm process pool, and the combined-then-split strategy."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pdf_helpers import page_count, page_texts, pdf_text, squash

from gateway import Invoice
from gateway.core.pipeline import Gateway
from plugins.pdf import batch
from plugins.pdf.render import PdfSettings

Completed = Callable[..., Invoice]
EXAMPLES = [("electricity-household.json", "lv"), ("electricity-business.json", "en"),
            ("electricity-paper.json", "lv"), ("credit-note.json", "lv")]


@pytest.fixture
def pool() -> Iterator[None]:
    yield
    batch.close_pool()


@pytest.fixture
def mixed(completed: Completed) -> list[tuple[Invoice, str]]:
    """Five distinct invoices, one of them two pages long."""
    def numbered(i: int) -> Callable[[dict[str, Any]], None]:
        def edit(data: dict[str, Any]) -> None:
            data["number"] = f"B{i:02d}-{data['number']}"
            if i == 4:
                data["lines"] = [{**data["lines"][0], "id": str(n),
                                  "item": {"name": f"Skaitītājs {n:03d}"}}
                                 for n in range(1, 36)]
        return edit

    return [(completed(EXAMPLES[i % 4][0], edit=numbered(i)), EXAMPLES[i % 4][1])
            for i in range(5)]


def assert_each_holds_only_its_own(items: list[tuple[Invoice, str]],
                                   pdfs: list[bytes]) -> None:
    numbers = [invoice.number for invoice, _ in items]
    assert len(pdfs) == len(items)
    for (invoice, language), pdf in zip(items, pdfs, strict=True):
        assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
        text = squash(pdf_text(pdf))
        assert invoice.number in text
        assert [n for n in numbers if n != invoice.number and n in text] == []
        pages = page_texts(pdf)
        label = ("Lapa {} no {}" if language == "lv" else "Page {} of {}")
        for i, page in enumerate(pages, start=1):
            assert label.format(i, len(pages)) in squash(page)  # numbered per invoice


def test_in_process_batch_gives_the_same_bytes_as_the_format(
        gw: Gateway, mixed: list[tuple[Invoice, str]]) -> None:
    batch.close_pool()
    # processes comes from the settings ([plugins.pdf] processes = 1): no pool at all.
    pdfs = batch.render_many(mixed, settings=PdfSettings(processes=1))
    assert batch.worker_pids() == []
    for (invoice, language), pdf in zip(mixed, pdfs, strict=True):
        assert pdf == gw.render(invoice, "pdf", language=language).content
    assert page_count(pdfs[4]) >= 2


def test_pool_of_two_processes_keeps_order_and_content(
        pool: None, mixed: list[tuple[Invoice, str]]) -> None:
    one = batch.render_many(mixed, processes=1)
    two = batch.render_many(mixed, processes=2, chunk_size=2)
    assert two == one  # every PDF byte for byte where the single process put it
    assert_each_holds_only_its_own(mixed, two)
    # The workers stay warm: a second batch reuses the same processes.
    workers = batch.worker_pids()
    assert len(workers) == 2
    assert batch.render_many(mixed[:3], processes=2, chunk_size=1) == one[:3]
    assert batch.worker_pids() == workers


def test_combined_strategy_splits_into_exactly_one_invoice_each(
        pool: None, mixed: list[tuple[Invoice, str]]) -> None:
    weasy = PdfSettings(engine="weasyprint")
    combined = batch.render_many(mixed, settings=weasy, processes=1, strategy="combined",
                                 chunk_size=5)
    single = batch.render_many(mixed, settings=weasy, processes=1)
    assert_each_holds_only_its_own(mixed, combined)
    assert [page_count(p) for p in combined] == [page_count(p) for p in single]
    # Same text, page by page, as rendering each invoice alone.
    assert [page_texts(p) for p in combined] == [page_texts(p) for p in single]
    # In the pool each chunk is combined and split in a worker.
    pooled = batch.render_many(mixed, settings=weasy, processes=2, strategy="combined",
                               chunk_size=3)
    assert_each_holds_only_its_own(mixed, pooled)
    assert [page_texts(p) for p in pooled] == [page_texts(p) for p in single]


def test_bad_arguments_are_refused(mixed: list[tuple[Invoice, str]]) -> None:
    with pytest.raises(ValueError, match="unknown strategy 'fast'"):
        batch.render_many(mixed, strategy="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="plain PDFs only"):
        batch.render_many(mixed, strategy="combined", variant="pdf/a-3b")
    with pytest.raises(ValueError, match="a weasyprint strategy"):
        batch.render_many(mixed, strategy="combined")
    assert batch.render_many([], processes=2) == []
