"""Customer pages: login, invoices and contracts, one invoice, downloads, e-invoice
sign-up, history export. Every query goes through :func:`customer_invoice` or filters on
the logged-in account's customer id."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from gateway.core import ChannelPreference, Customer, Invoice
from gateway.core.storage import InvoiceRecord
from gateway.core.storage.records import InvoiceKey
from gateway.errors import GatewayError
from plugins.portal import exports, history
from plugins.portal.db import Account, PortalError
from plugins.portal.security import (
    hash_password,
    new_token,
    password_problem,
    token_hash,
    verify_password,
)
from plugins.portal.state import InvoiceStatus, Portal, invoice_status
from plugins.portal.web import (
    ANON_COOKIE,
    LANG_COOKIE,
    SESSION_COOKIE,
    NotFound,
    check_csrf,
    current_account,
    language,
    page,
    portal_of,
    redirect,
    require_customer,
    safe_next,
    set_cookie,
)

router = APIRouter(include_in_schema=False)
EMAIL_RE = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")


# ---------------------------------------------------------------------- login


@router.get("/")
def home(request: Request) -> Response:
    account = current_account(request)
    if account is None:
        return redirect("/login")
    return redirect("/operator" if account.is_operator else "/invoices")


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> Response:
    return page(request, "login.html", next=safe_next(next, ""), error=None, email="")


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, email: str = Form(""), password: str = Form(""),
          csrf: str = Form(""), next: str = Form("")) -> Response:
    check_csrf(request, csrf)
    portal = portal_of(request)
    s = portal.settings
    window = s.login_window_minutes * 60
    email = email.strip()
    client = request.client.host if request.client else "?"
    keys = [f"email:{email.lower()}", f"ip:{client}"]
    for key, limit in zip(keys, (s.login_attempts, s.login_attempts_per_ip), strict=True):
        count, first = portal.db.recent_failures(key, window)
        if count >= limit:
            wait = max(1, round(((first or time.time()) + window - time.time()) / 60))
            return page(request, "login.html", status_code=429, next=safe_next(next, ""),
                        email=email, error=("login_throttled", {"minutes": wait}))
    account = portal.db.account_by_email(email) if email else None
    # The password is checked whether or not the account exists or may log in: the same
    # argon2 work either way, so the answer's timing does not tell which addresses exist.
    password_ok = verify_password(account.password_hash if account else None, password)
    if account is None or account.disabled or not password_ok:
        portal.db.add_failure(keys, window)
        return page(request, "login.html", status_code=401, next=safe_next(next, ""),
                    email=email, error=("login_failed", {}))
    portal.db.clear_failures(keys[0])
    token = new_token()
    portal.db.add_session(token_hash(token), account.id, s.session_hours * 3600)
    default = "/operator" if account.is_operator else "/invoices"
    response = redirect(safe_next(next, default))
    set_cookie(request, response, SESSION_COOKIE, token, int(s.session_hours * 3600))
    # A fresh anonymous cookie after login: a token planted before login is worthless.
    set_cookie(request, response, ANON_COOKIE, new_token(), None)
    return response


@router.post("/logout")
def logout(request: Request, csrf: str = Form("")) -> Response:
    check_csrf(request, csrf)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        portal_of(request).db.drop_session(token_hash(token))
    response = redirect("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/lang/{code}")
def set_language(request: Request, code: str, next: str | None = None) -> Response:
    response = redirect(safe_next(next, "/"))
    if code in ("lv", "en"):
        set_cookie(request, response, LANG_COOKIE, code, 365 * 86400)
    return response


@router.get("/invite/{token}", response_class=HTMLResponse)
def invite_form(request: Request, token: str) -> Response:
    invitation = portal_of(request).db.invitation(token_hash(token))
    if invitation is None:
        return page(request, "invite.html", status_code=404, invalid=True, error=None,
                    email="")
    return page(request, "invite.html", invalid=False, error=None,
                email=invitation["email"] or "")


@router.post("/invite/{token}", response_class=HTMLResponse)
def invite_accept(request: Request, token: str, email: str = Form(""),
                  password: str = Form(""), password2: str = Form(""),
                  csrf: str = Form("")) -> Response:
    check_csrf(request, csrf)
    portal = portal_of(request)
    invitation = portal.db.invitation(token_hash(token))
    if invitation is None:
        return page(request, "invite.html", status_code=404, invalid=True, error=None,
                    email="")
    email = (invitation["email"] or email).strip()
    error: tuple[str, dict[str, Any]] | None = None
    if not EMAIL_RE.match(email):
        error = ("bad_address", {"address": email})
    elif problem := password_problem(password):
        error = (problem, {})
    elif password != password2:
        error = ("passwords_differ", {})
    if error is None:
        try:
            portal.db.use_invitation(token_hash(token), email=email,
                                     password_hash=hash_password(password))
        except PortalError as exc:
            return page(request, "invite.html", status_code=409, invalid=False,
                        error=(str(exc), {}), email=email)
        return redirect("/login")
    return page(request, "invite.html", status_code=400, invalid=False, error=error,
                email=email)


# ---------------------------------------------------------------------- invoices


@dataclass(frozen=True)
class Row:
    record: InvoiceRecord
    status: InvoiceStatus
    period: tuple[str, str] | None


def customer_invoices(portal: Portal, customer_id: str, **filters: str | None
                      ) -> Iterator[InvoiceRecord]:
    """All of a customer's invoices matching the SQL filters, newest first, in batches."""
    offset = 0
    while True:
        batch = portal.gw.store.list_invoices(customer_id=customer_id, limit=500,
                                              offset=offset, **filters)
        yield from batch
        if len(batch) < 500:
            return
        offset += len(batch)


def customer_invoice(portal: Portal, account: Account, ref: str) -> InvoiceRecord:
    """The account's invoice by id or number; another customer's is simply not found."""
    gw = portal.gw
    record = gw.store.get_invoice(ref)
    if record is None or record.customer_id != account.customer_id:
        mine = [r for r in gw.store.invoices_by_number(ref)
                if r.customer_id == account.customer_id]
        record = mine[0] if len(mine) == 1 else None
    if record is None:
        raise NotFound()
    return record


def _period(record: InvoiceRecord) -> tuple[str, str] | None:
    # The period is inside the invoice JSON; a cheap look avoids parsing the whole model
    # for every row of a long list.
    text = record.invoice_json
    at = text.find('"invoice_period"')
    if at < 0:
        return None
    found = re.search(r'"start":"(\d{4}-\d\d-\d\d)","end":"(\d{4}-\d\d-\d\d)"', text[at:at + 120])
    return (found.group(1), found.group(2)) if found else None


def _parse_date(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


@router.get("/invoices", response_class=HTMLResponse)
def invoices(request: Request, contract: str | None = None, start: str | None = None,
             end: str | None = None, status: str | None = None, page_no: int = 1) -> Response:
    account = require_customer(request)
    portal = portal_of(request)
    store = portal.gw.store
    assert account.customer_id is not None
    since, until = _parse_date(start), _parse_date(end)
    filters = {"contract": contract or None,
               "issued_from": since.isoformat() if since else None,
               "issued_to": until.isoformat() if until else None}
    size = portal.settings.page_size
    page_no = max(1, page_no)

    def row(r: InvoiceRecord) -> Row:
        return Row(r, invoice_status(portal, store.deliveries(invoice_id=r.id)), _period(r))

    if status:
        # The status comes from the deliveries, so this filter is the one that scans.
        matching = [x for x in map(row, customer_invoices(portal, account.customer_id,
                                                          **filters))
                    if x.status.key == status]
        total = len(matching)
        rows = matching[(page_no - 1) * size:page_no * size]
    else:
        total = store.count_invoices(customer_id=account.customer_id, **filters)
        rows = [row(r) for r in store.list_invoices(customer_id=account.customer_id,
                                                    limit=size, offset=(page_no - 1) * size,
                                                    **filters)]
    unfiltered = page_no == 1 and not (contract or since or until or status)
    today = dt.date.today().isoformat()
    current = [x for x in rows if unfiltered and x.record.due_date
               and x.record.due_date >= today]
    return page(request, "invoices.html", rows=rows, current=current,
                notices=_notices(portal, account),
                contracts=store.customer_contracts(account.customer_id), total=total,
                page_no=page_no, pages=max(1, -(-total // size)),
                filters={"contract": contract or "", "start": start or "", "end": end or "",
                         "status": status or ""},
                statuses=["st_delivered", "st_pending", "st_email_failed", "st_failed",
                          "st_portal"],
                customer=store.get_customer(account.customer_id))


def _notices(portal: Portal, account: Account) -> list[dict[str, Any]]:
    assert account.customer_id is not None
    out = []
    for pub in portal.db.unseen(account.customer_id, limit=5):
        record = portal.gw.store.get_invoice(pub.invoice_id)
        if record is None or record.customer_id != account.customer_id:
            continue
        deliveries = portal.gw.store.deliveries(invoice_id=record.id)
        out.append({"record": record, "status": invoice_status(portal, deliveries),
                    "reason": pub.reason})
    return out


@router.get("/contracts", response_class=HTMLResponse)
def contracts(request: Request) -> Response:
    account = require_customer(request)
    store = portal_of(request).gw.store
    assert account.customer_id is not None
    summary = []
    for contract in store.customer_contracts(account.customer_id):
        latest = store.list_invoices(customer_id=account.customer_id, contract=contract,
                                     limit=1)
        summary.append({"contract": contract, "latest": latest[0],
                        "count": store.count_invoices(customer_id=account.customer_id,
                                                      contract=contract)})
    return page(request, "contracts.html", contracts=summary)


def _speculative(request: Request) -> bool:
    """A browser prefetching or prerendering a link (on hover, say) has not shown the
    invoice to anyone: it must not count as 'viewed' or clear the new-invoice notice."""
    purpose = (request.headers.get("sec-purpose") or request.headers.get("purpose") or "")
    return "prefetch" in purpose.lower() or "prerender" in purpose.lower()


@router.get("/invoices/{ref}", response_class=HTMLResponse)
def invoice_page(request: Request, ref: str) -> Response:
    account = require_customer(request)
    portal = portal_of(request)
    record = customer_invoice(portal, account, ref)
    gw = portal.gw
    invoice = Invoice.model_validate_json(record.invoice_json)
    deliveries = gw.store.deliveries(invoice_id=record.id)
    if not _speculative(request) and portal.db.first_view(record.id, account.id, "page"):
        gw.store.append_event(record.id, "viewed", {"via": "portal",
                                                    "account": f"account:{account.id}"})
    documents = gw.store.documents(record.id)
    archived = {d.format for d in documents}
    others = [f for f in portal.signup_formats() if f.name not in archived]
    lang = language(request)
    return page(request, "invoice.html", record=record, invoice=invoice,
                totals=invoice.require_totals(), status=invoice_status(portal, deliveries),
                documents=documents, others=others,
                formats_by_name={f.name: f for f in gw.plugins.formats},
                events=history.describe(gw.store.events(record.id), deliveries, portal, lang))


@router.get("/invoices/{ref}/documents/{format_name}")
def download(request: Request, ref: str, format_name: str) -> Response:
    account = require_customer(request)
    portal = portal_of(request)
    record = customer_invoice(portal, account, ref)
    gw = portal.gw
    doc = next((d for d in gw.store.documents(record.id) if d.format == format_name), None)
    if doc is not None:
        content, media_type, filename = gw.archive.get(doc.sha256), doc.media_type, doc.filename
    else:
        if format_name not in {f.name for f in portal.signup_formats()}:
            raise NotFound()
        customer = gw.store.get_customer(record.customer_id)
        invoice = Invoice.model_validate_json(record.invoice_json)
        with portal.heavy_work(portal.settings.push_seconds) as free:
            if not free:
                return _busy(portal)
            try:
                rendered = gw.render(invoice, format_name,
                                     language=customer.language if customer else "lv",
                                     options=customer.format_options.get(format_name)
                                     if customer else None, customer_id=record.customer_id)
            except GatewayError as exc:
                return Response(f"cannot make {format_name}: {exc}", status_code=500,
                                media_type="text/plain; charset=utf-8")
        content, media_type, filename = rendered.content, rendered.media_type, rendered.filename
    if portal.db.first_view(record.id, account.id, f"download:{format_name}"):
        gw.store.append_event(record.id, "downloaded", {
            "via": "portal", "format": format_name, "account": f"account:{account.id}"})
    return Response(content, media_type=media_type, headers={
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "private, no-store",
        "X-Content-Type-Options": "nosniff"})


# ---------------------------------------------------------------------- e-invoice sign-up


def _managed(portal: Portal) -> set[str]:
    """Channel labels the sign-up form owns; an operator's other channels stay as they are."""
    return {"email", "portal", *(c.name for c in portal.signup_channels())}


def _address_field(channel: Any) -> str | None:
    """The e-mail channel's setting that takes the recipient list, whatever its name."""
    fields = getattr(channel.Settings, "model_fields", {})
    for name in ("to", "recipients", "addresses", "emails", "address", "email"):
        if name in fields:
            return name
    return None


# Settings a customer must not set from the web: secrets live in the operator's
# environment and key files on the gateway's disk.
_OPERATOR_ONLY = ("private_key", "timeout")


def _form_fields(channel: Any) -> list[dict[str, Any]]:
    """Form fields for a channel's settings model: text, numbers, flags, lists of lines."""
    out = []
    for name, info in getattr(channel.Settings, "model_fields", {}).items():
        if name in _OPERATOR_ONLY or name.endswith("_env"):
            continue
        kind = {str: "str", int: "int", float: "float", bool: "bool",
                list[str]: "lines"}.get(info.annotation)  # type: ignore[call-overload]
        if kind is None:
            continue
        default = None if info.is_required() else info.get_default(call_default_factory=True)
        out.append({"name": name, "kind": kind, "required": info.is_required(),
                    "label": name.replace("_", " ").capitalize(),
                    "default": "" if default is None else default,
                    "help": info.description or ""})
    return out


def _field_value(field: dict[str, Any], raw: str) -> Any:
    if field["kind"] == "bool":
        return bool(raw)
    if field["kind"] == "lines":
        return [line.strip() for line in raw.splitlines() if line.strip()]
    if field["kind"] == "int" and raw.strip().lstrip("-").isdigit():
        return int(raw)
    if field["kind"] == "float":
        try:
            return float(raw)
        except ValueError:
            return raw
    return raw


def _signup_context(portal: Portal, customer: Customer) -> dict[str, Any]:
    gw = portal.gw
    email_pref = customer.channel("email")
    email_channel = next((gw.plugins.channels.get(n) for n in portal.settings.email_channels
                          if n in gw.plugins.channels), None)
    field = _address_field(email_channel) if email_channel else None
    addresses = ""
    if email_pref is not None and field:
        value = email_pref.settings.get(field, "")
        addresses = ", ".join(value) if isinstance(value, list) else str(value)
    others = []
    for channel in portal.signup_channels():
        pref = customer.channel(channel.name)
        values = dict(pref.settings) if pref else {}
        for f in _form_fields(channel):
            if f["kind"] == "lines" and isinstance(values.get(f["name"]), list):
                values[f["name"]] = "\n".join(values[f["name"]])
        others.append({"channel": channel, "fields": _form_fields(channel),
                       "on": pref is not None, "values": values})
    return {"customer": customer, "formats": portal.signup_formats(),
            "email_available": email_channel is not None and field is not None,
            "email_on": email_pref is not None, "addresses": addresses,
            "others": others,
            "changes": gw.store.customer_changes(customer.id)[-10:][::-1]}


@router.get("/einvoice", response_class=HTMLResponse)
def signup_form(request: Request) -> Response:
    account = require_customer(request)
    portal = portal_of(request)
    assert account.customer_id is not None
    customer = portal.gw.store.get_customer(account.customer_id)
    if customer is None:
        raise NotFound()
    return page(request, "einvoice.html", message=None, error=None,
                **_signup_context(portal, customer))


@router.post("/einvoice", response_class=HTMLResponse)
async def signup(request: Request) -> Response:
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")))
    account = require_customer(request)
    portal = portal_of(request)
    # The store and plugins are used from a worker thread like every other page.
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(_signup_sync, request, portal, account,
                                   {k: [str(v) for v in form.getlist(k)] for k in form})


def _signup_sync(request: Request, portal: Portal, account: Account,
                 form: dict[str, list[str]]) -> Response:
    assert account.customer_id is not None
    gw = portal.gw
    customer = gw.store.get_customer(account.customer_id)
    if customer is None:
        raise NotFound()

    def first(name: str) -> str:
        return (form.get(name) or [""])[0].strip()

    def fail(key: str, **values: object) -> Response:
        return page(request, "einvoice.html", status_code=400, message=None,
                    error=(key, values), **_signup_context(portal, customer))

    allowed = {f.name for f in portal.signup_formats()}
    formats = [f for f in form.get("formats", []) if f in allowed]
    if not formats:
        return fail("choose_format")
    channels = [c for c in customer.channels if c.label not in _managed(portal)]
    if first("email_on"):
        addresses = [a.strip() for a in re.split(r"[,;\s]+", first("addresses")) if a.strip()]
        if not addresses:
            return fail("need_address")
        for address in addresses:
            if not EMAIL_RE.match(address):
                return fail("bad_address", address=address)
        channel_type = next(n for n in portal.settings.email_channels
                            if n in gw.plugins.channels)
        field = _address_field(gw.plugins.channels.get(channel_type))
        assert field is not None
        old = customer.channel("email")
        settings = {**(old.settings if old else {}), field: addresses}
        channels.append(ChannelPreference(channel=channel_type, name="email",
                                          settings=settings, fallback="portal"))
    for channel in portal.signup_channels():
        if not first(f"on:{channel.name}"):
            continue
        old = customer.channel(channel.name)
        settings = dict(old.settings) if old else {}  # keeps operator-only settings
        for f in _form_fields(channel):
            raw = (form.get(f"{channel.name}:{f['name']}") or [""])[0]
            if raw.strip() or f["kind"] == "bool":
                settings[f["name"]] = _field_value(f, raw)
            else:
                settings.pop(f["name"], None)
        channels.append(ChannelPreference(channel=channel.name, name=channel.name,
                                          settings=settings, fallback="portal"))
    if "portal" in gw.plugins.channels:
        channels.append(ChannelPreference(channel="portal", name="portal"))
    lang = first("language") or customer.language
    if lang not in ("lv", "en"):
        return fail("error_text", text="language: expected lv or en")
    updated = customer.model_copy(update={"formats": formats, "channels": channels,
                                          "language": lang, "paper": bool(first("paper"))})
    try:
        updated = Customer.model_validate(updated.model_dump())
        gw.check_customer(updated)
    except (GatewayError, ValueError) as exc:
        return fail("error_text", text=str(exc))
    before = len(gw.store.customer_changes(customer.id))
    gw.store.put_customer(updated, actor=f"portal:{account.email}")
    changed = len(gw.store.customer_changes(customer.id)) != before
    response = page(request, "einvoice.html", message="saved" if changed else "no_change",
                    error=None, **_signup_context(portal, updated))
    return response


# ---------------------------------------------------------------------- export


@router.get("/export", response_class=HTMLResponse)
def export_form(request: Request) -> Response:
    account = require_customer(request)
    portal = portal_of(request)
    assert account.customer_id is not None
    store = portal.gw.store
    count = store.count_invoices(customer_id=account.customer_id)
    years: list[int] = []
    if count:
        newest = store.list_invoices(customer_id=account.customer_id, limit=1)[0]
        oldest = store.list_invoices(customer_id=account.customer_id, limit=1,
                                     offset=count - 1)[0]
        years = list(range(int(newest.issue_date[:4]), int(oldest.issue_date[:4]) - 1, -1))
    return page(request, "export.html", years=years,
                lines="csv" in portal.plugins.formats)


#: Invoices an export reads from the store at once.
EXPORT_PAGE = 500
EXPORT_NAME = re.compile(r"^(\d{4})(?:-(0[1-9]|1[0-2]))?\.(csv|pdf|lines\.csv)$")


def _oldest_first(portal: Portal, customer_id: str, **filters: str) -> Iterator[InvoiceRecord]:
    """A customer's invoices by issue date and number, read a page at a time, each page
    after the last invoice of the one before: an export never holds a big customer's
    invoices at once, and one pushed while it streams moves no other row out of it."""
    after: InvoiceKey | None = None
    while True:
        batch = portal.gw.store.invoices_oldest_first(customer_id=customer_id, after=after,
                                                      limit=EXPORT_PAGE, **filters)
        yield from batch
        if len(batch) < EXPORT_PAGE:
            return
        after = batch[-1].key


@router.get("/export/{name}")
def export(request: Request, name: str) -> Response:
    """``2026.csv`` (one row per invoice), ``2026.pdf``, ``2026.lines.csv`` (every line);
    ``2026-03.pdf`` and so on for one month.

    The CSVs are streamed as they are written, in constant memory, however many
    invoices the customer has. The PDF is laid out whole, so it is refused past
    ``export_pdf_invoices`` invoices (with links to the months instead): a year of a
    big customer would hold the request for minutes.
    """
    account = require_customer(request)
    portal = portal_of(request)
    customer_id = account.customer_id
    assert customer_id is not None
    found = EXPORT_NAME.match(name)
    if found is None:
        raise NotFound()
    year, month, kind = int(found.group(1)), found.group(2), found.group(3)
    if month:
        last_day = (dt.date(year + int(month) // 12, int(month) % 12 + 1, 1)
                    - dt.timedelta(days=1)).day
        filters = {"issued_from": f"{year:04d}-{month}-01",
                   "issued_to": f"{year:04d}-{month}-{last_day:02d}"}
    else:
        filters = {"issued_from": f"{year:04d}-01-01", "issued_to": f"{year:04d}-12-31"}
    lang = language(request)
    filename = f"invoices-{customer_id}-{year}{'-' + month if month else ''}.{kind}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"',
               "Cache-Control": "private, no-store"}

    def rows() -> Iterator[exports.HistoryRow]:
        for r in _oldest_first(portal, customer_id, **filters):
            yield exports.HistoryRow.of(r, invoice_status(
                portal, portal.gw.store.deliveries(invoice_id=r.id)), lang)

    if kind == "lines.csv":
        if "csv" not in portal.plugins.formats:
            raise NotFound()
        chunks = exports.iter_lines_csv(
            (Invoice.model_validate_json(r.invoice_json)
             for r in _oldest_first(portal, customer_id, **filters)), lang)
        if chunks is None:
            raise NotFound()
        return StreamingResponse(chunks, media_type="text/csv; charset=utf-8",
                                 headers=headers)
    if kind == "csv":
        return StreamingResponse(exports.iter_history_csv(rows(), lang),
                                 media_type="text/csv; charset=utf-8", headers=headers)
    count = portal.gw.store.count_invoices(customer_id=customer_id, **filters)
    most = portal.settings.export_pdf_invoices
    if count > most:
        return page(request, "export.html", status_code=413, years=[year],
                    lines="csv" in portal.plugins.formats,
                    too_many={"count": f"{count:,}", "most": f"{most:,}", "year": year,
                              "months": [] if month else
                              [f"{m:02d}" for m in range(1, 13)]})
    customer = portal.gw.store.get_customer(customer_id)
    title = customer.name if customer else customer_id
    with portal.heavy_work(portal.settings.push_seconds) as free:
        if not free:
            return _busy(portal)
        content = exports.history_pdf(list(rows()), lang, year, title, customer_id)
    return Response(content, media_type="application/pdf", headers=headers)


def _busy(portal: Portal) -> Response:
    """Every worker was taken for the whole wait: come back rather than queue up."""
    return Response(f"The gateway is busy making other documents; try again in a moment "
                    f"(waited {portal.settings.push_seconds:g} s for one of "
                    f"{portal.config.limits.api_workers} workers).", status_code=503,
                    headers={"Retry-After": "5"}, media_type="text/plain; charset=utf-8")
