"""`gateway push` renders a batch's PDFs in the warm process pool; the bytes do not
depend on which worker rendered a document or what it rendered before."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway import Invoice
from gateway.core.pipeline import Gateway
from plugins.pdf import batch
from tests.conftest import add_customer

Completed = Callable[..., Invoice]


@pytest.fixture
def pool() -> Iterator[None]:
    batch.close_pool()
    yield
    batch.close_pool()


def numbered(completed: Completed, count: int) -> list[Invoice]:
    def edit(i: int) -> Callable[[dict[str, Any]], None]:
        def change(data: dict[str, Any]) -> None:
            data["number"] = f"P{i:03d}"
            data["lines"][0]["quantity"] = str(100 + 37 * i)
            if i == 2:  # a two-page one among them
                data["lines"] = [{**data["lines"][0], "id": str(n)} for n in range(1, 40)]
        return change

    return [completed(edit=edit(i)) for i in range(count)]


def test_push_many_renders_in_the_pool_with_the_bytes_of_one_at_a_time(
        pool: None, gateway_factory: Callable[..., Gateway], completed: Completed) -> None:
    gw = gateway_factory(config="[plugins.pdf]\nprocesses = 2\n")
    customer = add_customer(gw, formats=["pdf", "facturx"])
    invoices = numbered(completed, 6)
    seen: list[str] = []
    results = list(gw.push_many(((inv, f"test:{inv.number}") for inv in invoices),
                                batch_size=4, on_result=lambda r: seen.append(r.number or "")))
    assert [r.status for r in results] == ["accepted"] * 6, [r.error for r in results]
    assert seen == [inv.number for inv in invoices]
    assert len(batch.worker_pids()) == 2  # rendered by the pool's workers
    # Every archived document is byte for byte what this process renders on its own.
    for invoice, result in zip(invoices, results, strict=True):
        for record in gw.store.documents(result.invoice_id):
            alone = gw.render(invoice, record.format, language=customer.language).content
            assert gw.archive.get(record.sha256) == alone, (invoice.number, record.format)
    # Pushing again changes nothing and renders nothing.
    again = list(gw.push_many((inv, "again") for inv in invoices))
    assert [r.status for r in again] == ["unchanged"] * 6


def test_a_bad_invoice_in_a_batch_is_reported_and_the_rest_go_through(
        pool: None, gateway_factory: Callable[..., Gateway], completed: Completed) -> None:
    gw = gateway_factory(config="[plugins.pdf]\nprocesses = 2\n")
    add_customer(gw, formats=["pdf"])
    invoices = numbered(completed, 4)
    def nobody(data: dict[str, Any]) -> None:
        data["number"] = "X1"
        data["buyer"] = {**data["buyer"], "name": "Nobody", "identifiers": []}
        data["buyer_reference"] = "N-1"

    stranger = completed(edit=nobody)
    items = [(inv, "t") for inv in invoices[:2]] + [(stranger, "t")] + \
        [(inv, "t") for inv in invoices[2:]]
    results = list(gw.push_many(items))
    assert [r.status for r in results] == ["accepted"] * 2 + ["rejected"] + ["accepted"] * 2
    assert "no customer matches buyer 'Nobody'" in str(results[2].error)


def test_cli_push_uses_the_pool(pool: None, run_cli: Callable[..., Any], tmp_path: Path,
                                load_example: Callable[[str], dict[str, Any]]) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "gateway.toml").write_text("[plugins.pdf]\nprocesses = 2\n", encoding="utf-8")
    assert run_cli("customer", "add", "100234567", "--name", "Jānis Bērziņš",
                   "--format", "pdf", "--match", "C-100234567",
                   "--channel", "folder").exit_code == 0
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for i in range(8):
        raw = load_example("electricity-household.json")
        raw["number"] = f"C{i:03d}"
        (inbox / f"C{i:03d}.json").write_text(json.dumps(raw), encoding="utf-8")
    result = run_cli("push", str(inbox), "--no-deliver")
    assert result.exit_code == 0, result.output
    assert "8 accepted" in result.output
    assert len(batch.worker_pids()) == 2
