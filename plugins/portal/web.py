"""Request plumbing shared by the customer and operator pages: sessions, CSRF, language,
templates. Pages live in :mod:`plugins.portal.pages` and :mod:`plugins.portal.operator`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from plugins.portal import i18n
from plugins.portal.db import Account
from plugins.portal.security import csrf_ok, csrf_token, new_token, token_hash
from plugins.portal.state import Portal

SESSION_COOKIE = "portal_session"
ANON_COOKIE = "portal_anon"
LANG_COOKIE = "portal_lang"

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
# Templates ship with the package; checking their mtimes on every include costs a stat
# per table row.
templates.env.auto_reload = False


class LoginRequired(Exception):
    """Raised by page handlers; answered with a redirect to the login page."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


class Forbidden(Exception):
    """A failed CSRF check or a page for another role; answered with a 403 page."""

    def __init__(self, message_key: str) -> None:
        self.message_key = message_key


class NotFound(Exception):
    """Answered with a 404 page. Another customer's invoice is 'not found' too, never
    'forbidden', so an id or number cannot be probed."""


def portal_of(request: Request) -> Portal:
    return request.app.state.portal  # type: ignore[no-any-return]


_UNSET = object()


def current_account(request: Request) -> Account | None:
    cached = getattr(request.state, "account", _UNSET)
    if cached is not _UNSET:
        return cached  # type: ignore[return-value]
    token = request.cookies.get(SESSION_COOKIE)
    account = portal_of(request).db.session_account(token_hash(token)) if token else None
    request.state.account = account
    return account


def require_customer(request: Request) -> Account:
    account = current_account(request)
    if account is None:
        raise LoginRequired(_here(request))
    if account.customer_id is None:
        raise Forbidden("not_found")
    return account


def require_operator(request: Request) -> Account:
    account = current_account(request)
    if account is None:
        raise LoginRequired(_here(request))
    if not account.is_operator:
        raise Forbidden("not_found")
    return account


def _here(request: Request) -> str:
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{request.url.path}{query}"


def safe_next(target: str | None, default: str = "/") -> str:
    """Only local paths: a login link must not bounce the user to another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def binding(request: Request) -> str | None:
    """The cookie a CSRF token is tied to: the session, or before login the anonymous
    cookie (so the login form itself is protected against login CSRF too)."""
    return (request.cookies.get(SESSION_COOKIE) or request.cookies.get(ANON_COOKIE)
            or getattr(request.state, "new_anon", None))


def check_csrf(request: Request, given: str | None) -> None:
    if not csrf_ok(portal_of(request).secret, binding(request), given):
        raise Forbidden("csrf_failed")


def set_cookie(request: Request, response: Response, name: str, value: str,
               max_age: int | None) -> None:
    secure = portal_of(request).settings.secure_cookies
    if secure is None:
        secure = request.url.scheme == "https"
    response.set_cookie(name, value, max_age=max_age, httponly=True, secure=secure,
                        samesite="lax", path="/")


def language(request: Request) -> str:
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in i18n.LANGUAGES:
        return chosen
    account = current_account(request)
    if account is not None and account.customer_id:
        customer = portal_of(request).gw.store.get_customer(account.customer_id)
        if customer is not None:
            return customer.language
    header = request.headers.get("accept-language", "")
    if header.lower().startswith("en"):
        return "en"
    return portal_of(request).settings.default_language


def page(request: Request, template: str, status_code: int = 200,
         **context: Any) -> HTMLResponse:
    portal = portal_of(request)
    lang = language(request)
    account = current_account(request)
    new_anon = None
    if binding(request) is None:
        new_anon = new_token()
        request.state.new_anon = new_anon
    bound = binding(request)
    assert bound is not None

    def t(key: str, **values: object) -> str:
        return i18n.text(lang, key, **values)

    response = templates.TemplateResponse(request, template, {
        "t": t, "lang": lang, "account": account, "csrf": csrf_token(portal.secret, bound),
        "money": lambda a, c: i18n.money(a, c, lang),
        "date": lambda d: i18n.date(d, lang),
        "ts": lambda x: i18n.timestamp(x, lang),
        "number": lambda x: i18n.number(x, lang),
        "format_label": lambda f: i18n.format_label(f.name, getattr(f, "description", ""),
                                                    lang), "unit": lambda x: i18n.unit(x, lang),
        "path": request.url.path, "here": _here(request), "today": dt.date.today(),
        "extra_pages": portal.pages,
        **context,
    }, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    if new_anon is not None:
        set_cookie(request, response, ANON_COOKIE, new_anon, None)
    return response


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)
