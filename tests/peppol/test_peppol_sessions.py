"""Two dispatcher runs in one process share one PeppolChannel object (the portal's
inline delivery threads, Celery ``--pool=threads``): each run's session is its own,
so one run ending never closes or replaces the HTTP client another run is using."""

from __future__ import annotations

import threading
from typing import Any

import httpx

from gateway.core.dispatcher import Dispatcher
from gateway.core.model import Invoice
from tests.peppol.conftest import business_invoice

TIMEOUT = 120.0


def _claimed(gw: Any, number: str, worker: str) -> Any:
    data = business_invoice()
    data["number"] = number
    result = gw.push(Invoice.model_validate(data), source="test")
    assert result.status == "accepted", result.error
    (delivery,) = gw.store.deliveries(invoice_id=result.invoice_id)
    record = gw.store.claim_delivery(worker, gw.config.dispatcher.lease_seconds, delivery.id)
    assert record is not None
    return record


def test_one_run_ending_does_not_break_another_runs_delivery(
        two_gateways: dict[str, Any]) -> None:
    """run1's SMP lookup is held in flight while run2 delivers and ends its session;
    then run1 completes, and delivers once more in its still open session."""
    a, network = two_gateways["a"], two_gateways["network"]
    channel = a.plugins.channels.get("peppol")
    records = {"run1": [_claimed(a, f"E2611-R1{i}", "run1") for i in range(2)],
               "run2": [_claimed(a, "E2611-R20", "run2")]}
    run1_open, run2_open, run2_closed = threading.Event(), threading.Event(), \
        threading.Event()
    lookup_held, release = threading.Event(), threading.Event()
    outcomes: dict[str, list[str]] = {"run1": [], "run2": []}
    requests: dict[str, list[str]] = {"run1": [], "run2": []}
    sessions: dict[str, Any] = {}
    seen_open: list[bool] = []
    errors: list[BaseException] = []

    def hold_first_lookup(path: str) -> None:
        if not lookup_held.is_set():
            lookup_held.set()
            release.wait(TIMEOUT)

    network.smp.before_answer = hold_first_lookup

    def run(name: str) -> None:
        dispatcher = Dispatcher(a, worker=name)
        try:
            if name == "run2":
                assert run1_open.wait(TIMEOUT)
            with channel.session() as session:
                sessions[name] = session
                if isinstance(session, httpx.Client):
                    session.event_hooks["request"].append(
                        lambda request: requests[name].append(str(request.url)))
                if name == "run1":
                    run1_open.set()
                    assert run2_open.wait(TIMEOUT)
                    outcomes[name].append(dispatcher.attempt(records[name][0],
                                                             session=session))
                    assert run2_closed.wait(TIMEOUT)
                    seen_open.append(not getattr(session, "is_closed", True))
                    outcomes[name].append(dispatcher.attempt(records[name][1],
                                                             session=session))
                else:
                    run2_open.set()
                    assert lookup_held.wait(TIMEOUT)  # run1's lookup is in flight
                    outcomes[name].append(dispatcher.attempt(records[name][0],
                                                             session=session))
            if name == "run2":
                run2_closed.set()
                release.set()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
            for event in (run1_open, run2_open, run2_closed, lookup_held, release):
                event.set()

    threads = [threading.Thread(target=run, args=(name,)) for name in ("run1", "run2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert not errors, errors
    # No needless failed attempt: every delivery of both runs succeeded the first time.
    attempts = {r.id: [x.outcome for x in a.store.attempts(r.id)]
                for rs in records.values() for r in rs}
    assert outcomes == {"run1": ["delivered", "delivered"], "run2": ["delivered"]}, attempts
    assert all(outcome == ["delivered"] for outcome in attempts.values()), attempts
    # Each run got its own client, used it for its own requests (the AS4 POSTs; the
    # SMP lookups are cached by the access point after the first), and run2's end
    # closed run2's client only.
    assert isinstance(sessions["run1"], httpx.Client), sessions
    assert sessions["run1"] is not sessions["run2"]
    assert seen_open == [True], "run2's session end closed run1's client"
    url = two_gateways["url"]
    assert requests["run1"].count(url) == 2 and requests["run2"].count(url) == 1
    assert sessions["run1"].is_closed and sessions["run2"].is_closed
