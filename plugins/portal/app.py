"""The ASGI application: customer pages, operator view, HTTP API, static files."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway import __version__
from gateway.core import Config, Invoice
from gateway.errors import GatewayError
from gateway.plugins import Plugins
from plugins.portal import api, extensions, operator, pages
from plugins.portal.state import Portal
from plugins.portal.web import Forbidden, LoginRequired, NotFound, page, redirect

STATIC = Path(__file__).parent / "static"


def create_app(config: Config, plugins: Plugins | None = None) -> FastAPI:
    portal = Portal(config, plugins)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        portal.inline.start()
        yield
        portal.close()

    app = FastAPI(
        title="Invoice gateway API", version=__version__, lifespan=lifespan,
        description="Push EN 16931 invoices (gateway JSON, UBL, CII) and follow their "
                    "delivery. Authenticate with a bearer token scoped to one seller.",
        docs_url=None, redoc_url=None, openapi_url="/api/v1/openapi.json")
    app.state.portal = portal
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(operator.router)
    # Pages other plugins add (portal_register_pages), after the portal's own routes.
    portal.pages = extensions.mount(app, portal.plugins)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _errors(app)
    _openapi(app)

    @app.middleware("http")
    async def headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if not request.url.path.startswith("/api/"):
            response.headers.setdefault(
                "Content-Security-Policy",
                "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                "script-src 'self'; frame-ancestors 'none'; form-action 'self'")
        return response

    return app


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _errors(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        from urllib.parse import quote

        return redirect(f"/login?next={quote(exc.next_url, safe='')}")

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        if exc.message_key == "not_found":
            return page(request, "error.html", status_code=404, message="not_found")
        return page(request, "error.html", status_code=403, message=exc.message_key)

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> Response:
        return page(request, "error.html", status_code=404, message="not_found")

    @app.exception_handler(api.ApiProblem)
    async def api_problem(request: Request, exc: api.ApiProblem) -> Response:
        return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _is_api(request):
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
        return page(request, "error.html", status_code=exc.status_code,
                    message="not_found" if exc.status_code == 404 else str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        problems = [{"location": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                    for e in exc.errors()]
        if _is_api(request):
            return JSONResponse({"error": "bad request", "problems": problems},
                                status_code=400)
        return page(request, "error.html", status_code=400,
                    message="; ".join(f"{p['location']}: {p['message']}" for p in problems))

    @app.exception_handler(GatewayError)
    async def gateway_error(request: Request, exc: GatewayError) -> Response:
        # A storage problem (disk full, database locked) is the operator's to fix; the
        # user gets one line, never a traceback.
        if _is_api(request):
            return JSONResponse({"error": str(exc)}, status_code=503)
        return page(request, "error.html", status_code=503, message=str(exc))


def _openapi(app: FastAPI) -> None:
    def schema() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        from fastapi.openapi.utils import get_openapi

        spec = get_openapi(title=app.title, version=app.version, description=app.description,
                           routes=app.routes)
        invoice = Invoice.model_json_schema(ref_template="#/components/schemas/{model}")
        components = spec.setdefault("components", {}).setdefault("schemas", {})
        components.update(invoice.pop("$defs", {}))
        components["Invoice"] = invoice
        app.openapi_schema = spec
        return spec

    app.openapi = schema  # type: ignore[method-assign]
