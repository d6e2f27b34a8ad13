"""The operator's view: customers, invoices, and deliveries that failed or wait for a
retry, with a retry button. The same data as ``gateway status``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from gateway.core.storage import DEAD, FAILED, RETRY
from gateway.errors import GatewayError
from plugins.portal import history
from plugins.portal.security import new_token, token_hash
from plugins.portal.state import Portal, invoice_status
from plugins.portal.web import (
    NotFound,
    check_csrf,
    language,
    page,
    portal_of,
    require_operator,
)

router = APIRouter(include_in_schema=False)


#: Rows of the failed list on one page: during an outage it can hold every delivery of
#: a month end, and the page must still come back at once.
FAILED_ROWS = 500


def _failed_rows(portal: Portal) -> dict[str, object]:
    gw = portal.gw
    rows = []
    failed = gw.store.deliveries(statuses=[FAILED, DEAD, RETRY])
    for d in failed[:FAILED_ROWS]:
        record = gw.store.get_invoice(d.invoice_id)
        rows.append({"delivery": d, "number": record.number if record else d.invoice_id})
    return {"failed": rows, "failed_total": len(failed)}


@router.get("/operator", response_class=HTMLResponse)
def overview(request: Request, message: str | None = None) -> Response:
    require_operator(request)
    portal = portal_of(request)
    gw = portal.gw
    latest = [{"record": r, "status": invoice_status(portal, gw.store.deliveries(invoice_id=r.id))}
              for r in gw.store.list_invoices(limit=50)]
    customers = gw.store.list_customers()
    accounts: dict[str, int] = {}
    for a in portal.db.accounts():
        if a.customer_id:
            accounts[a.customer_id] = accounts.get(a.customer_id, 0) + 1
    return page(request, "operator.html", **_failed_rows(portal), latest=latest,
                customers=customers, accounts=accounts, message=None, invite=None)


@router.post("/operator/retry", response_class=HTMLResponse)
def retry(request: Request, delivery: Annotated[list[int] | None, Form()] = None,
          csrf: str = Form("")) -> Response:
    check_csrf(request, csrf)
    require_operator(request)
    portal = portal_of(request)
    gw = portal.gw
    delivery = delivery or []
    count = gw.store.requeue(delivery)
    if count and portal.settings.deliver_on_retry:
        # Bounded like an API push: what is not sent in time stays queued for the
        # dispatcher, and the list below shows it as waiting.
        portal.inline.deliver(delivery_ids=delivery,
                              wait=portal.settings.deliver_wait_seconds)
    return page(request, "operator.html", **_failed_rows(portal), latest=[],
                customers=[], accounts={}, message=("retried", {"count": count}), invite=None)


@router.post("/operator/invite", response_class=HTMLResponse)
def invite(request: Request, customer_id: str = Form(""), email: str = Form(""),
           csrf: str = Form("")) -> Response:
    check_csrf(request, csrf)
    operator = require_operator(request)
    portal = portal_of(request)
    if portal.gw.store.get_customer(customer_id) is None:
        raise NotFound()
    token = new_token()
    portal.db.add_invitation(token_hash(token), customer_id, email.strip() or None,
                             portal.settings.invitation_days * 86400,
                             created_by=f"portal:{operator.email}")
    link = str(request.url_for("invite_form", token=token))
    return page(request, "operator.html", **_failed_rows(portal), latest=[],
                customers=[], accounts={}, message=None,
                invite={"customer": customer_id, "link": link})


@router.get("/operator/find")
def find(request: Request, ref: str = "") -> Response:
    """An invoice by id or number, as ``gateway status INVOICE`` takes it."""
    require_operator(request)
    from urllib.parse import quote

    from plugins.portal.web import redirect

    ref = ref.strip()
    if not ref:
        return redirect("/operator")
    return redirect(f"/operator/invoices/{quote(ref, safe='')}")


@router.get("/operator/invoices/{ref}", response_class=HTMLResponse)
def invoice_story(request: Request, ref: str) -> Response:
    require_operator(request)
    portal = portal_of(request)
    gw = portal.gw
    try:
        record = gw.find(ref)
    except GatewayError:
        raise NotFound() from None
    deliveries = gw.store.deliveries(invoice_id=record.id)
    attempts = {d.id: gw.store.attempts(d.id) for d in deliveries}
    return page(request, "operator_invoice.html", record=record,
                documents=gw.store.documents(record.id), deliveries=deliveries,
                attempts=attempts, chain=gw.store.verify_events(record.id),
                events=history.describe(gw.store.events(record.id), deliveries, portal,
                                        language(request), internal=True))
