"""Pages that other plugins add through :mod:`plugins.portal.hookspecs`.

The portal does the parts every customer page needs right: the login (customers only;
the handler gets the account's own customer id and nothing else), the CSRF check of
every POST, the layout with the navigation, and the lv/en texts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import FileSystemLoader
from starlette.concurrency import run_in_threadpool

from gateway.core import Config
from gateway.errors import PluginError
from gateway.plugins import Plugins
from plugins.portal import hookspecs, i18n
from plugins.portal.db import Account
from plugins.portal.web import (
    check_csrf,
    language,
    page,
    portal_of,
    redirect,
    require_customer,
    templates,
)

Handler = Callable[["PageRequest"], Response]


@dataclass(frozen=True)
class ExtraPage:
    path: str
    label: tuple[str, str]
    get: Handler
    post: Handler | None
    plugin: str
    texts: dict[str, tuple[str, str]] = field(default_factory=dict)


@dataclass
class PageRequest:
    """What a plugin's page handler gets: the logged-in customer, the language, the
    submitted form (POST, CSRF already checked) and ways to answer."""

    request: Request
    account: Account
    lang: str
    form: dict[str, str]
    config: Config
    plugins: Plugins
    extra: ExtraPage

    @property
    def customer_id(self) -> str:
        assert self.account.customer_id is not None
        return self.account.customer_id

    @property
    def email(self) -> str:
        return self.account.email

    def t(self, key: str, **values: object) -> str:
        pair = self.extra.texts.get(key)
        if pair is None:
            return i18n.text(self.lang, key, **values)
        template = pair[0] if self.lang == "lv" else pair[1]
        return template.format(**values) if values else template

    def render(self, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        return page(self.request, template, status_code=status_code, t=self.t, **context)

    def redirect(self, url: str) -> RedirectResponse:
        return redirect(url)


def ensure_hookspecs(plugins: Plugins) -> None:
    """Add the portal's hook specifications once per plugin manager."""
    caller = getattr(plugins.pm.hook, "portal_register_pages", None)
    if caller is None or caller.spec is None:
        plugins.pm.add_hookspecs(hookspecs)


def collect(plugins: Plugins, taken: set[str]) -> list[ExtraPage]:
    """Ask every plugin for its pages; ``taken`` are the portal's own paths."""
    ensure_hookspecs(plugins)
    pages: list[ExtraPage] = []
    for impl in plugins.pm.hook.portal_register_pages.get_hookimpls():
        name = plugins.pm.get_name(impl.plugin) or "?"

        def register(path: str, label: tuple[str, str], get: Handler,
                     post: Handler | None = None, templates: Path | str | None = None,
                     texts: dict[str, tuple[str, str]] | None = None,
                     _plugin: str = name) -> None:
            if not path.startswith("/") or path.startswith(("/api/", "/static/", "/operator")):
                raise PluginError(f"plugin {_plugin!r}: portal page path {path!r} must start "
                                  "with '/' and not be under /api, /static or /operator")
            if path in taken or any(p.path == path for p in pages):
                raise PluginError(f"plugin {_plugin!r}: the portal already has a page {path!r}")
            if templates is not None:
                _add_templates(Path(templates))
            pages.append(ExtraPage(path, tuple(label), get, post, _plugin,  # type: ignore[arg-type]
                                   dict(texts or {})))

        impl.function(**{a: register for a in impl.argnames})
    return pages


def _add_templates(directory: Path) -> None:
    loader = templates.env.loader
    assert isinstance(loader, FileSystemLoader)
    if str(directory) not in loader.searchpath:
        loader.searchpath.append(str(directory))


def mount(app: FastAPI, plugins: Plugins) -> list[ExtraPage]:
    """Add the plugins' pages to ``app``; returns them for the navigation."""
    taken = {getattr(r, "path", "") for r in app.routes}
    pages = collect(plugins, taken)
    for extra in pages:
        app.add_api_route(extra.path, _get(extra), methods=["GET"],
                          response_class=HTMLResponse, include_in_schema=False)
        if extra.post is not None:
            app.add_api_route(extra.path, _post(extra), methods=["POST"],
                              response_class=HTMLResponse, include_in_schema=False)
    return pages


def _context(request: Request, extra: ExtraPage, form: dict[str, str]) -> PageRequest:
    portal = portal_of(request)
    portal.gw  # noqa: B018 - configures the plugins (data dir, settings) in this thread
    return PageRequest(request, require_customer(request), language(request), form,
                       portal.config, portal.plugins, extra)


def _get(extra: ExtraPage) -> Callable[[Request], Response]:
    def endpoint(request: Request) -> Response:
        return extra.get(_context(request, extra, {}))

    return endpoint


def _post(extra: ExtraPage) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        require_customer(request)
        form = await request.form()
        check_csrf(request, str(form.get("csrf", "")))
        values = {k: str(v) for k, v in form.items() if isinstance(v, str)}
        assert extra.post is not None
        handler = extra.post

        def run() -> Response:
            return handler(_context(request, extra, values))

        return await run_in_threadpool(run)

    return endpoint
