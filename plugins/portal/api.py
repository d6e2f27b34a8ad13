"""HTTP API for billing systems: push invoices, read their delivery status, fetch
documents. A bearer token belongs to one billing system and is scoped to one seller:
it can push only that seller's invoices and read only those."""

from __future__ import annotations

import logging
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from gateway.core.limits import size_text
from gateway.core.pipeline import PushResult
from gateway.core.storage import DELIVERING, PENDING, RETRY, InvoiceRecord
from gateway.errors import (
    DuplicateInvoice,
    Finding,
    GatewayError,
    InputError,
    InvoiceRejected,
)
from plugins.portal.db import ApiToken
from plugins.portal.security import token_hash
from plugins.portal.state import Portal
from plugins.portal.web import portal_of

bearer = HTTPBearer(auto_error=False, description="A billing system's token "
                    "(gateway portal token add NAME --seller SELLER)")
router = APIRouter(prefix="/api/v1", tags=["invoices"])
log = logging.getLogger("gateway.portal.api")

#: Delivery statuses that are not an outcome yet.
UNFINISHED = (PENDING, DELIVERING, RETRY)


class ApiProblem(Exception):
    def __init__(self, status: int, body: dict[str, Any],
                 headers: dict[str, str] | None = None) -> None:
        self.status, self.body, self.headers = status, body, headers


def api_token(request: Request,
              credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
              ) -> ApiToken:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiProblem(401, {"error": "missing bearer token"},
                         {"WWW-Authenticate": "Bearer"})
    token = portal_of(request).db.token(token_hash(credentials.credentials))
    if token is None:
        raise ApiProblem(401, {"error": "unknown or revoked token"},
                         {"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return token


# ---------------------------------------------------------------------- response models


class FindingOut(BaseModel):
    rule: str
    severity: str
    location: str
    term: str | None
    message: str

    @classmethod
    def of(cls, f: Finding) -> FindingOut:
        return cls(rule=f.rule, severity=f.severity, location=f.path, term=f.term,
                   message=f.message)


class DocumentOut(BaseModel):
    format: str
    filename: str
    media_type: str
    sha256: str
    size: int
    url: str


class DeliveryOut(BaseModel):
    id: int
    channel: str = Field(description="The channel type: email, sftp-push, portal, …")
    label: str = Field(description="The customer's name for this channel (\"accounts\"); "
                       "the channel type when they gave none")
    channel_type: str = Field(deprecated=True, description="Deprecated: the same as "
                              "`channel`; removed in the next release (docs/api.md)")
    status: str
    attempts: int
    receipt: str | None
    error: str | None
    fallback_for: int | None


class InvoiceOut(BaseModel):
    id: str
    number: str
    seller: str
    customer: str
    issue_date: str
    due_date: str | None
    currency: str
    amount_due: str
    contract: str | None
    documents: list[DocumentOut]
    deliveries: list[DeliveryOut]


class PushOut(BaseModel):
    status: str  # accepted, unchanged, rejected or deferred (not started: push again)
    number: str | None
    id: str | None = None
    customer: str | None = None
    message: str | None = None
    errors: list[FindingOut] = []
    warnings: list[FindingOut] = []
    #: Deliveries not finished when the answer was sent (queued, being sent or waiting
    #: for a retry): the dispatcher carries them on; GET the invoice to follow them.
    pending: list[int] = []
    invoice: InvoiceOut | None = None


class PushBatchOut(BaseModel):
    results: list[PushOut]


def _invoice_out(portal: Portal, request: Request, record: InvoiceRecord) -> InvoiceOut:
    gw = portal.gw
    base = f"/api/v1/invoices/{record.id}/documents/"
    return InvoiceOut(
        id=record.id, number=record.number, seller=record.seller_key,
        customer=record.customer_id, issue_date=record.issue_date, due_date=record.due_date,
        currency=record.currency, amount_due=record.amount_due,
        contract=record.contract_reference,
        documents=[DocumentOut(format=d.format, filename=d.filename, media_type=d.media_type,
                               sha256=d.sha256, size=d.size, url=base + d.format)
                   for d in gw.store.documents(record.id)],
        deliveries=[DeliveryOut(id=d.id, channel=d.channel_type, label=d.label,
                                channel_type=d.channel_type,
                                status=d.status, attempts=d.attempts, receipt=d.receipt_id,
                                error=d.last_error, fallback_for=d.fallback_for)
                    for d in gw.store.deliveries(invoice_id=record.id)])


def _scoped(portal: Portal, token: ApiToken, invoice_id: str) -> InvoiceRecord:
    record = portal.gw.store.get_invoice(invoice_id)
    if record is None or record.seller_key != token.seller_key:
        raise ApiProblem(404, {"error": f"no invoice {invoice_id}"})
    return record


# ---------------------------------------------------------------------- endpoints

_BODY_DOC = {
    "requestBody": {
        "required": True,
        "description": "One invoice (or a list) as gateway JSON, or a UBL / CII document",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Invoice"}},
            "application/xml": {"schema": {"type": "string"}},
        },
    }
}


@router.post("/invoices", status_code=201, openapi_extra=_BODY_DOC,
             response_model=PushOut | PushBatchOut,
             responses={200: {"description": "Already accepted with the same content",
                              "model": PushOut},
                        400: {"description": "Unreadable input", "model": PushOut},
                        403: {"description": "Invoice of another seller"},
                        409: {"description": "Number reused with other content",
                              "model": PushOut},
                        422: {"description": "Rejected: findings say which rule and field",
                              "model": PushOut},
                        503: {"description": "Every API worker busy for push_seconds "
                                             "(Retry-After), or invoices of a batch not "
                                             "started in time (status deferred): push "
                                             "them again"}})
async def push_invoice(request: Request, token: Annotated[ApiToken, Depends(api_token)],
                       customer: str | None = Query(None, description="Deliver to this "
                                                    "customer instead of matching the buyer"),
                       deliver: bool | None = Query(None, description="Deliver now, "
                                                    "waiting at most deliver_wait_seconds "
                                                    "(default: portal setting)")) -> Response:
    """Accept invoices: validate, render, archive, queue and (by default) deliver them.

    Answers 201 when accepted, 200 when the same invoice was accepted before, 422 with
    the findings (rule id, location, EN 16931 term, message) when rejected. Delivery
    waits at most ``deliver_wait_seconds``; ``pending`` lists the deliveries that were
    not finished by then, which the dispatcher carries on.
    """
    import anyio
    import anyio.to_thread

    body = await _bounded_body(request)
    portal = portal_of(request)
    deadline = time.monotonic() + portal.settings.push_seconds
    # Reading, checking and rendering are CPU work: in worker threads, a few at a time, so
    # a big push waits for a worker instead of holding the event loop that every other
    # client's request needs. The wait is bounded too: past the request's time, the
    # billing system is told to come back rather than kept waiting.
    limiter = portal.push_limiter()
    acquired = False
    with anyio.move_on_after(max(deadline - time.monotonic(), 0.0)):
        await limiter.acquire()
        acquired = True
    if not acquired:
        raise ApiProblem(503, {"error": f"every API worker was busy for "
                                        f"{portal.settings.push_seconds:g} s "
                                        "(plugins.portal.push_seconds, limits.api_workers); "
                                        "nothing was accepted, push again"},
                         {"Retry-After": "5"})
    try:
        pushed = await anyio.to_thread.run_sync(
            _push_sync, request, token, body, customer, deadline)
    finally:
        limiter.release()
    if isinstance(pushed, Response):
        return pushed
    # Waiting for customer servers is no CPU work: the API worker is free for the next
    # push, and the wait is in the event loop, so it holds none of the web server's
    # threads either (a few dozen pushes waiting on slow servers would otherwise stall
    # every synchronous page).
    portal = portal_of(request)
    accepted = [p.invoice_id for p in pushed if isinstance(p, PushResult) and p.invoice_id]
    waited: float | None = None
    if accepted and (deliver if deliver is not None else portal.settings.deliver_on_push):
        waited = min(portal.settings.deliver_wait_seconds, deadline - time.monotonic())
        if waited <= 0 or not await portal.inline.deliver_async(invoice_ids=accepted,
                                                                 wait=waited):
            log.info("push answered with deliveries pending", extra={
                "invoices": accepted, "waited": max(waited, 0.0)})
        else:
            waited = None  # all delivered (or failed for good) in time
    return await anyio.to_thread.run_sync(_answer, request, pushed, waited)


async def _bounded_body(request: Request) -> bytes:
    """The request body, refused as soon as it passes ``limits.bytes_per_request``
    (whatever Content-Length claims, a chunked body is counted as it arrives)."""
    limit = portal_of(request).config.limits.bytes_per_request
    problem = ApiProblem(413, {"error": f"request body larger than {size_text(limit)} "
                                        "(limits.bytes_per_request in gateway.toml)"})
    try:
        claimed = int(request.headers.get("content-length") or 0)
    except ValueError:
        raise ApiProblem(400, {"error": "Content-Length is not a number"}) from None
    if claimed > limit:
        raise problem
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise problem
        chunks.append(chunk)
    return b"".join(chunks)


#: What a push did with each invoice: an answer, or the result of an accepted push whose
#: answer is written after delivery.
Pushed = list[tuple[int, "PushOut"] | PushResult]


def _push_sync(request: Request, token: ApiToken, body: bytes, customer: str | None,
               deadline: float) -> Response | Pushed:
    portal = portal_of(request)
    gw = portal.gw
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    filename = "invoice.json" if kind.endswith("json") else \
        "invoice.xml" if kind.endswith("xml") else ""
    source = f"api:{token.name}"
    try:
        items = list(gw.read_bytes(body, source=source, filename=filename))
    except InputError as exc:
        out = PushOut(status="rejected", number=None, message=str(exc),
                      errors=[FindingOut(rule="GW-INPUT", severity="fatal", location="",
                                         term=None, message=str(exc))])
        return JSONResponse(out.model_dump(), status_code=400)
    if not items:
        raise ApiProblem(400, {"error": "the body holds no invoice"})
    most = portal.config.limits.invoices_per_request
    if len(items) > most:
        # Refused whole, before any is pushed: a billing system resends it in parts.
        raise ApiProblem(413, {"error": f"{len(items):,} invoices in one request; the limit "
                                        f"is {most:,} (limits.invoices_per_request in "
                                        "gateway.toml); nothing was accepted"})
    pushed: Pushed = []
    started = False
    for item in items:
        if isinstance(item, InvoiceRejected):
            pushed.append((422, _rejected(item)))
            continue
        if item.seller_key != token.seller_key:
            pushed.append((403, PushOut(
                status="rejected", number=item.number,
                message=f"token {token.name!r} may push invoices of seller "
                        f"{token.seller_key} only, not {item.seller_key}")))
            continue
        if started and time.monotonic() > deadline:
            # One invoice is bounded by the limits; many are bounded by the clock (the
            # first is always worked on, so that a request that waited makes progress).
            pushed.append((503, PushOut(
                status="deferred", number=item.number,
                message=f"not started: the request's {portal.settings.push_seconds:g} s "
                        "(plugins.portal.push_seconds) ran out before this invoice's "
                        "turn; nothing was stored for it, push it again")))
            continue
        started = True
        result: PushResult = gw.push(item, source=source, customer_id=customer)
        if result.status == "rejected":
            assert result.error is not None
            status = 409 if isinstance(result.error, DuplicateInvoice) else 422
            pushed.append((status, _rejected(result.error, result.number)))
            continue
        pushed.append(result)
    return pushed


def _answer(request: Request, pushed: Pushed, waited: float | None) -> Response:
    """The push's answer, each invoice read back after delivery; ``waited``: how long
    delivery was waited for, when time ran out before it was done."""
    portal = portal_of(request)
    results = [p if isinstance(p, tuple) else _accepted(portal, request, p, waited)
               for p in pushed]
    if len(results) == 1:
        status, out = results[0]
        return JSONResponse(out.model_dump(), status_code=status)
    worst = max(s for s, _ in results)
    # Invoices deferred for lack of time are to be pushed again: say when, as the
    # refusal of a whole request does.
    deferred = any(o.status == "deferred" for _, o in results)
    return JSONResponse(PushBatchOut(results=[o for _, o in results]).model_dump(),
                        status_code=worst if worst >= 400 else 201,
                        headers={"Retry-After": "5"} if deferred else None)


def _rejected(exc: GatewayError, number: str | None = None) -> PushOut:
    if isinstance(exc, InvoiceRejected):
        return PushOut(status="rejected", number=exc.invoice or number, message=str(exc),
                       errors=[FindingOut.of(f) for f in exc.findings],
                       warnings=[FindingOut.of(f) for f in exc.warnings])
    return PushOut(status="rejected", number=number, message=str(exc))


def _accepted(portal: Portal, request: Request, result: PushResult,
              waited: float | None) -> tuple[int, PushOut]:
    """The answer for an accepted (or unchanged) invoice, read back after delivery;
    ``waited`` is how long delivery was waited for when time ran out before it was done."""
    assert result.invoice_id is not None
    record = portal.gw.store.get_invoice(result.invoice_id)
    assert record is not None
    invoice = _invoice_out(portal, request, record)
    pending = [d.id for d in invoice.deliveries if d.status in UNFINISHED]
    message = None
    if pending and waited is not None:
        message = (f"{len(pending)} of {len(invoice.deliveries)} deliveries still pending "
                   f"after {max(waited, 0.0):g} s (plugins.portal.deliver_wait_seconds): "
                   "the dispatcher (gateway deliver --loop) finishes them; "
                   f"GET /api/v1/invoices/{record.id} shows their progress")
    return (201 if result.status == "accepted" else 200), PushOut(
        status=result.status, number=result.number, id=result.invoice_id,
        customer=result.customer_id, message=message, pending=pending, invoice=invoice)


@router.get("/invoices", response_model=InvoiceOut,
            responses={404: {"description": "No invoice with this number for this token's "
                                            "seller"}})
def find_invoice(request: Request, token: Annotated[ApiToken, Depends(api_token)],
                 number: str = Query(..., description="Invoice number (BT-1)")) -> InvoiceOut:
    """An invoice by its number: billing systems know numbers, not gateway ids."""
    portal = portal_of(request)
    record = portal.gw.store.find_invoice(token.seller_key, number)
    if record is None:
        raise ApiProblem(404, {"error": f"no invoice {number} of seller {token.seller_key}"})
    return _invoice_out(portal, request, record)


@router.get("/invoices/{invoice_id}", response_model=InvoiceOut,
            responses={404: {"description": "No such invoice for this token's seller"}})
def get_invoice(request: Request, invoice_id: str,
                token: Annotated[ApiToken, Depends(api_token)]) -> InvoiceOut:
    """An invoice with its documents and the status of every delivery."""
    portal = portal_of(request)
    return _invoice_out(portal, request, _scoped(portal, token, invoice_id))


@router.get("/invoices/{invoice_id}/documents/{format_name}",
            responses={200: {"content": {"application/octet-stream": {}},
                             "description": "The archived document, byte for byte"},
                       404: {"description": "No such invoice or document"}})
def get_document(request: Request, invoice_id: str, format_name: str,
                 token: Annotated[ApiToken, Depends(api_token)]) -> Response:
    """One archived document of an invoice (the bytes that were delivered)."""
    portal = portal_of(request)
    record = _scoped(portal, token, invoice_id)
    doc = next((d for d in portal.gw.store.documents(record.id) if d.format == format_name),
               None)
    if doc is None:
        raise ApiProblem(404, {"error": f"invoice {invoice_id} has no {format_name} document"})
    return Response(portal.gw.archive.get(doc.sha256), media_type=doc.media_type, headers={
        "Content-Disposition": f'attachment; filename="{doc.filename}"',
        "ETag": f'"{doc.sha256}"'})
