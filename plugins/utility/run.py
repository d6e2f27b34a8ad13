"""A month end: plan every contract's invoice, push it through the gateway, remember it.

Nothing twice: a (contract, month) keeps its invoice number from the first attempt, the
gateway recognises a repeated push of the same invoice, and an invoice the gateway has
already accepted (a crash between push and bookkeeping) is adopted, not pushed again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from gateway import Invoice
from gateway.core import Gateway
from gateway.core.pipeline import Prepared, invoice_id_for
from gateway.errors import ConfigError
from plugins.utility.billing import Biller, Plan
from plugins.utility.dates import Period, local_today
from plugins.utility.parallel import (
    PARALLEL_FROM,
    DeliveryProcess,
    prepared_ahead,
    worker_count,
)
from plugins.utility.store import ISSUED, UtilityError


@dataclass
class Draft:
    """One contract's month: an invoice to push, or why there is none yet."""

    contract: str
    customer: str
    status: str  # "ready", "issued" (earlier), "adopt", "waiting", "error"
    message: str = ""
    plan: Plan | None = None
    invoice: Invoice | None = None


@dataclass
class RunSummary:
    period: Period
    issued: list[str] = field(default_factory=list)  # invoice numbers
    already: int = 0
    waiting: list[Draft] = field(default_factory=list)
    errors: list[Draft] = field(default_factory=list)
    estimated: int = 0
    settled: int = 0
    paper: int = 0
    reconnections: int = 0
    credit_notes: int = 0
    delivered: int = 0
    delivery_problems: int = 0
    prepared: int = 0  # invoices whose documents a worker process rendered


CHUNK = 200  # contracts whose numbers are reserved (and later marked) in one transaction


def drafts(biller: Biller, period: Period, as_of: dt.date,
           paper_of: Callable[[str], bool | None],
           pushed: Callable[[str], bool] = lambda number: False) -> Iterator[Draft]:
    """Plan each contract of ``period``; reserve the number of those due by ``as_of``.

    Numbers are reserved a chunk at a time, each chunk durably before any of its
    invoices is yielded (and so pushed). A reserved number that ``pushed`` says the
    gateway already has (a crash between push and bookkeeping) is not planned again:
    the stored plan is what was pushed, and the draft says "adopt"."""
    store = biller.store
    pending: list[Draft] = []

    def flush() -> Iterator[Draft]:
        bills = store.reserve_bills(period, biller.settings.invoice_prefix, [
            (d.contract, d.plan.issue_date, d.plan.bill_data) for d in pending
            if d.plan is not None])
        for draft, bill in zip(pending, bills, strict=True):
            assert draft.plan is not None
            draft.invoice = biller.invoice(draft.plan, bill.number)
            yield draft
        pending.clear()

    for contract in store.contracts():
        if contract.start > period.last_day:
            continue
        existing = store.get_bill(contract.number, period)
        if existing is not None and existing.status == ISSUED:
            yield Draft(contract.number, contract.customer, "issued",
                        f"{existing.number} was issued on {existing.issue_date}")
            continue
        if existing is not None and pushed(existing.number):
            yield Draft(contract.number, contract.customer, "adopt",
                        f"{existing.number} was pushed before an interruption")
            continue
        paper = paper_of(contract.customer)
        if paper is None:
            yield Draft(contract.number, contract.customer, "error",
                        f"contract {contract.number}: customer {contract.customer} is not a "
                        "gateway customer; add it with 'gateway customer add "
                        f"{contract.customer} ...' to choose formats and channels")
            continue
        try:
            plan = biller.plan(contract, period, paper=paper, as_of=as_of)
        except UtilityError as exc:
            yield Draft(contract.number, contract.customer, "error", str(exc))
            continue
        if plan.scheduled_issue > as_of:
            yield Draft(contract.number, contract.customer, "waiting",
                        f"to be issued on {plan.scheduled_issue}", plan)
            continue
        pending.append(Draft(contract.number, contract.customer, "ready", "", plan))
        if len(pending) >= CHUNK:
            yield from flush()
    if pending:
        yield from flush()


def run_month(gw: Gateway, biller: Biller, period: Period, *, as_of: dt.date,
              deliver: bool = True,
              on_draft: Callable[[Draft, str], None] | None = None,
              processes: int | None = None, parallel_from: int = PARALLEL_FROM,
              ) -> RunSummary:
    """Issue the month's invoices that are due by ``as_of`` and deliver them.

    ``processes`` worker processes (default ``[plugins.utility] processes``; 0 is one per
    core) render and validate the documents of the invoices ahead of their push once the
    month has ``parallel_from`` of them (:mod:`plugins.utility.parallel`); a process of
    its own then delivers them while the month end still pushes."""
    store = biller.store
    summary = RunSummary(period)
    accepted: list[tuple[str, str, list[int]]] = []

    def paper_of(customer_id: str) -> bool | None:
        customer = gw.store.get_customer(customer_id)
        return None if customer is None else customer.paper

    def pushed(number: str) -> bool:
        return gw.store.find_invoice(biller.settings.seller_vat_id, number) is not None

    def job(draft: Draft) -> tuple[Invoice, str, str] | None:
        if draft.status != "ready" or draft.invoice is None:
            return None
        return draft.invoice, _source(draft, period), draft.customer

    workers = biller.settings.processes if processes is None else processes
    delivering: DeliveryProcess | None = None
    try:
        for draft, prepared in prepared_ahead(gw, drafts(biller, period, as_of, paper_of,
                                                         pushed), job, processes=workers,
                                              parallel_from=parallel_from):
            outcome = draft.status
            if draft.status == "issued":
                summary.already += 1
            elif draft.status == "adopt":
                bill = store.get_bill(draft.contract, period)
                assert bill is not None
                accepted.append((draft.contract, invoice_id_for(
                    biller.settings.seller_vat_id, bill.number),
                    list(bill.data.get("reconnections", []))))
                summary.issued.append(bill.number)
                outcome = "issued"
            elif draft.status == "waiting":
                summary.waiting.append(draft)
            elif draft.status == "error":
                summary.errors.append(draft)
            else:
                assert draft.invoice is not None and draft.plan is not None
                outcome = _issue(gw, draft, summary, prepared)
                summary.prepared += prepared is not None and outcome == "issued"
                if outcome == "issued":
                    plan = draft.plan
                    accepted.append((draft.contract, invoice_id_for(
                        draft.invoice.seller_key, draft.invoice.number),
                        [r.id for r in plan.reconnections]))
                    summary.issued.append(draft.invoice.number)
                    if (deliver and delivering is None and worker_count(workers) > 1
                            and len(summary.issued) >= parallel_from):
                        delivering = DeliveryProcess(gw)
                    summary.estimated += plan.estimated
                    summary.settled += any(m.settled_kwh for m in plan.meters)
                    summary.paper += plan.paper_fee is not None
                    summary.credit_notes += plan.credit
                    summary.reconnections += len(plan.reconnections)
                    if len(accepted) >= CHUNK:
                        store.mark_issued_many(period, accepted)
                        accepted.clear()
            if on_draft is not None:
                on_draft(draft, outcome)
    finally:
        # An interrupted run keeps what it pushed; a rerun adopts anything unmarked.
        if accepted:
            store.mark_issued_many(period, accepted)
        early = delivering.finish() if delivering is not None else {}
    if deliver and summary.issued:
        from gateway.core import Dispatcher

        result = Dispatcher(gw).run()  # the rest, or all of a month without workers
        summary.delivered = result.delivered + early.get("delivered", 0)
        summary.delivery_problems = result.retrying + result.failed + result.dead + sum(
            early.get(key, 0) for key in ("retrying", "failed", "dead"))
    return summary


def _source(draft: Draft, period: Period) -> str:
    return f"utility:{draft.contract}:{period}"


def _issue(gw: Gateway, draft: Draft, summary: RunSummary,
           prepared: Prepared | None = None) -> str:
    invoice = draft.invoice
    assert invoice is not None
    if gw.store.find_invoice(invoice.seller_key, invoice.number) is not None:
        return "issued"  # accepted before a crash; the reservation holds what was pushed
    result = gw.push(invoice, source=_source(draft, summary.period),
                     customer_id=draft.customer, prepared=prepared)
    if result.status in ("accepted", "unchanged"):
        return "issued"
    draft.status = "error"
    draft.message = str(result.error)
    summary.errors.append(draft)
    return "error"


def preview(biller: Biller, options: dict[str, Any],
            paper_of: Callable[[str], bool | None]) -> Iterator[Invoice]:
    period, as_of = _period_and_day(options)
    for draft in drafts(biller, period, as_of, paper_of):
        if draft.invoice is not None:
            yield draft.invoice


def _period_and_day(options: dict[str, Any]) -> tuple[Period, dt.date]:
    """The source's options checked: a bad one is a ConfigError naming it, not a crash."""
    period: Any = options.get("period")
    as_of: Any = options.get("as_of") or local_today()
    try:
        if period is None:
            raise ValueError("give the month to bill as period = YYYY-MM")
        if isinstance(period, str):
            period = Period.parse(period)
        if isinstance(as_of, str):
            as_of = dt.date.fromisoformat(as_of)
    except ValueError as exc:
        raise ConfigError(f"utility source options: {exc}") from None
    if not isinstance(period, Period) or not isinstance(as_of, dt.date):
        raise ConfigError("utility source options: period is YYYY-MM, as_of a date")
    return period, as_of
