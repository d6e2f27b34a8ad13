"""HTML → PDF with weasyprint, keeping everything reusable warm across a batch.

A :class:`Renderer` parses the stylesheets once, compiles the Jinja templates once,
shares one weasyprint ``FontConfiguration`` (fonts are looked up and loaded once per
process, not per invoice).

The image cache is *not* shared: weasyprint keys it by URL, every invoice's QR code is
a data URI of its own, and a cached SVG image keeps the whole layout context of the
invoice it came from alive (about 3.5 MB each) — a month end grew without bound.
"""

from __future__ import annotations

import base64
import functools
import mimetypes
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jinja2
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway import Invoice, first_error
from gateway.errors import ConfigError

from .i18n import Messages, load_messages
from .view import InvoiceView, build_view

TEMPLATES_DIR = Path(__file__).with_name("templates")
HEX_COLOUR = r"^#(?:[0-9a-fA-F]{3}){1,2}$"


class PdfSettings(BaseModel):
    """``[plugins.pdf]`` in gateway.toml, and a customer's ``format_options.pdf``."""

    model_config = ConfigDict(extra="forbid")

    engine: Literal["typst", "weasyprint"] | None = Field(
        None, description="Typesetter: 'typst' (templates invoice.typ) or 'weasyprint' "
        "(invoice.html + invoice.css). Default: typst, unless template_dir holds an "
        "invoice.html and no invoice.typ (a user's HTML design is used, not ignored)")
    template_dir: Path | None = Field(
        None, description="Directory with an invoice.html (may extend "
        "'default/invoice.html'), an optional invoice.css applied after the default one, "
        "and optional messages/<lang>.toml overriding labels")
    logo: Path | None = Field(None, description="Logo image (PNG, JPEG or SVG) for the header")
    brand: str | None = Field(None, description="Text shown in the header when there is no "
                              "logo; default: the seller's trading name")
    accent_color: str | None = Field(None, pattern=HEX_COLOUR, description="e.g. #0b5394")
    accent_light: str | None = Field(None, pattern=HEX_COLOUR,
                                     description="Background of the payment box")
    text_color: str | None = Field(None, pattern=HEX_COLOUR)
    muted_color: str | None = Field(None, pattern=HEX_COLOUR)
    processes: int = Field(0, ge=0, description="Worker processes for batch rendering; "
                           "0 = one per CPU core")


def parse_settings(raw: Mapping[str, Any], *, data_dir: Path | None,
                   where: str = "[plugins.pdf]") -> PdfSettings:
    try:
        settings = PdfSettings.model_validate(dict(raw))
    except ValidationError as exc:
        loc, msg = first_error(exc)
        raise ConfigError(f"{where}: {loc or '(all)'}: {msg}") from None
    updates: dict[str, Any] = {}
    for key in ("template_dir", "logo"):
        path = getattr(settings, key)
        if path is not None:
            path = path.expanduser()
            if not path.is_absolute() and data_dir is not None:
                path = data_dir / path
            if not path.exists():
                raise ConfigError(f"{where}: {key}: {path} does not exist")
            updates[key] = path
    template_dir = updates.get("template_dir")
    if template_dir is not None and not template_dir.is_dir():
        raise ConfigError(f"{where}: template_dir: {template_dir} is not a directory")
    updates["engine"] = _engine(settings.engine, template_dir, where)
    return settings.model_copy(update=updates)


def _engine(chosen: str | None, template_dir: Path | None, where: str) -> str:
    html = template_dir is not None and (template_dir / "invoice.html").exists()
    typ = template_dir is not None and (template_dir / "invoice.typ").exists()
    if chosen is None:
        return "weasyprint" if html and not typ else "typst"
    if chosen == "typst" and html and not typ:
        raise ConfigError(f"{where}: engine: template_dir {template_dir} has an "
                          "invoice.html for weasyprint but no invoice.typ for Typst; "
                          'set engine = "weasyprint" or add an invoice.typ')
    if chosen == "weasyprint" and typ and not html:
        raise ConfigError(f"{where}: engine: template_dir {template_dir} has an "
                          "invoice.typ for Typst but no invoice.html for weasyprint; "
                          'set engine = "typst" or add an invoice.html')
    return chosen


@functools.lru_cache(maxsize=16)
def _data_uri(path: Path) -> str:
    media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{media};base64,{base64.b64encode(path.read_bytes()).decode()}"


class Renderer:
    """Renders invoices to PDF; one per process, reused for every invoice."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._envs: dict[Path | None, jinja2.Environment] = {}
        self._css: dict[Path | None, list[Any]] = {}
        self._font_config: Any = None
        self._fetcher: Any = None

    # -------------------------------------------------------------- shared state

    def _weasy(self) -> Any:
        import weasyprint  # heavy (pango, cairo-free but ~0.3 s): only when rendering

        return weasyprint

    def font_config(self) -> Any:
        if self._font_config is None:
            from weasyprint.text.fonts import FontConfiguration

            self._font_config = FontConfiguration()
        return self._font_config

    def url_fetcher(self) -> Any:
        """Templates may load files and data: URIs, never anything over the network:
        a rendering must not depend on, or leak invoices to, a remote server."""
        if self._fetcher is None:
            from weasyprint.urls import URLFetcher

            self._fetcher = URLFetcher(allowed_protocols={"data", "file"})
        return self._fetcher

    def environment(self, template_dir: Path | None) -> jinja2.Environment:
        env = self._envs.get(template_dir)
        if env is None:
            default = jinja2.FileSystemLoader(TEMPLATES_DIR)
            loaders: list[jinja2.BaseLoader] = []
            if template_dir is not None:
                loaders.append(jinja2.FileSystemLoader(template_dir))
            loaders += [default, jinja2.PrefixLoader({"default": default})]
            env = jinja2.Environment(loader=jinja2.ChoiceLoader(loaders), autoescape=True,
                                     undefined=jinja2.StrictUndefined,
                                     trim_blocks=False, lstrip_blocks=False)
            self._envs[template_dir] = env
        return env

    def stylesheets(self, template_dir: Path | None) -> list[Any]:
        sheets = self._css.get(template_dir)
        if sheets is None:
            css_cls = self._weasy().CSS
            fc = self.font_config()
            fetch = self.url_fetcher()
            sheets = [css_cls(filename=str(TEMPLATES_DIR / "invoice.css"), font_config=fc,
                              url_fetcher=fetch)]
            if template_dir is not None and (template_dir / "invoice.css").exists():
                sheets.append(css_cls(filename=str(template_dir / "invoice.css"),
                                      font_config=fc, url_fetcher=fetch))
            self._css[template_dir] = sheets
        return sheets

    # -------------------------------------------------------------- rendering

    def html(self, invoice: Invoice, language: str, settings: PdfSettings) -> str:
        page = Page.of(invoice, language, settings)
        template = self.environment(settings.template_dir).get_template("invoice.html")
        return template.render(
            v=page.view, t=page.t, style=page.style,
            logo=_data_uri(settings.logo) if settings.logo else None, brand=page.brand,
            # The issue date, not the clock: the same invoice gives the same bytes.
            created=invoice.issue_date.isoformat() + "T00:00:00Z",
            anchor=_anchor(invoice.number), invoice=invoice)

    def layout(self, invoice: Invoice, language: str, settings: PdfSettings,
               **options: Any) -> Any:
        """A laid-out weasyprint Document (pages), not yet written as PDF."""
        weasyprint = self._weasy()
        html = weasyprint.HTML(string=self.html(invoice, language, settings),
                               base_url=str(settings.template_dir or TEMPLATES_DIR),
                               url_fetcher=self.url_fetcher())
        with self._lock:  # fontconfig and the caches are not thread-safe
            return html.render(stylesheets=self.stylesheets(settings.template_dir),
                               font_config=self.font_config(), cache={}, **options)

    def pdf(self, invoice: Invoice, language: str, settings: PdfSettings, *,
            variant: str | None = None) -> bytes:
        options: dict[str, Any] = {"pdf_identifier": _identifier(invoice)}
        if variant:
            options["pdf_variant"] = variant
        document = self.layout(invoice, language, settings, **options)
        with self._lock:
            return document.write_pdf(**options)


@dataclass(frozen=True)
class Page:
    """What either engine's template gets: the catalogue, the formatted invoice, the
    configured colours and the header brand."""

    t: Messages
    view: InvoiceView
    style: dict[str, str]
    brand: str

    @classmethod
    def of(cls, invoice: Invoice, language: str, settings: PdfSettings) -> Page:
        t = load_messages(language, str(settings.template_dir) if settings.template_dir
                          else None)
        style = {k: v for k, v in (("accent", settings.accent_color),
                                   ("accent-light", settings.accent_light),
                                   ("text", settings.text_color),
                                   ("muted", settings.muted_color)) if v}
        return cls(t, build_view(invoice, t), style,
                   settings.brand or invoice.seller.trading_name or invoice.seller.name)


def _anchor(number: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in number)


def _identifier(invoice: Invoice) -> bytes:
    """A stable PDF /ID: derived from seller and number rather than random."""
    import hashlib

    return hashlib.md5(f"{invoice.seller_key}\x1f{invoice.number}".encode(),
                       usedforsecurity=False).hexdigest().encode()
