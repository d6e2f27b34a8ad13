"""Invoice → PDF with Typst (the ``typst`` package: the Rust typesetter, in process).

The invoice reaches Typst only as data: for each invoice the view of :mod:`.view`, the
message catalogue and the QR code (SVG) are written as files into the compile root,
where ``input.typ`` reads them with ``json``/``read``. The template source is never built
from invoice text, so a buyer called ``#set page(..)`` prints as written.

Files rather than ``sys.inputs``: Typst memoizes its work across compilations, and
``sys.inputs`` is part of its standard library, so new inputs for every invoice made
every cached result stale. With the library unchanged, what does not depend on the
invoice (the template's code, the labels) is reused: about a tenth less CPU per invoice.
Templates written for ``sys.inputs`` (``sys.inputs.invoice`` and so on) still work: the
gateway notices and hands the data in that way for them.

The template can read only its own folder: each template set (the built-in one, or a
``template_dir`` laid over it) is staged once into a private directory that is the
compiler's root. It holds the template's files, the built-in layout under ``default/``,
the configured logo and the current invoice's data under ``_input/`` — nothing else on
the disk is reachable from a template. Typst packages (``@preview/...``) would be
downloaded from the internet: the gateway refuses a template that names one, before
compiling, with the file and line.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from gateway import Invoice, PluginError

from .i18n import Messages
from .render import Page
from .typst_fonts import font_set
from .view import InvoiceView

TYPST_TEMPLATES = Path(__file__).with_name("templates") / "typst"
MAIN = "invoice.typ"
LOGO_NAME = "_logo"
INPUT = "_input"  # the current invoice's data files, inside the compile root
# What a template written for the first Typst engine reads its data from.
_SYS_INPUTS = re.compile(r"sys\.inputs\.(invoice|messages|qr)|inputs\.(invoice|messages)\b")
# A string literal that starts with "@": how Typst names a package ("@preview/x:1.0.0").
_PACKAGE = re.compile(r"""["']@([\w-]+/[\w.:-]+)""")
_PAGE_TREE = re.compile(rb"%PDF-\d\.\d\n(?:%[^\n]*\n)?\s*1 0 obj\s*<</Type/Pages/Count (\d+)/")


class TemplateError(PluginError):
    """A Typst template that cannot be used (names a package, fails to compile)."""


def _code_lines(path: Path) -> list[str]:
    """A Typst file's lines without their ``//`` comments (line numbers kept)."""
    return [line.split("//", 1)[0] for line in
            path.read_text(encoding="utf-8", errors="replace").splitlines()]


def _check_no_packages(stage: Path, origin: dict[Path, Path]) -> None:
    for path in sorted(stage.rglob("*.typ")):
        for number, code in enumerate(_code_lines(path), start=1):
            if match := _PACKAGE.search(code):
                where = origin.get(path, path)
                raise TemplateError(
                    f"pdf: Typst template {where}, line {number}: imports the package "
                    f"@{match.group(1)}; the gateway renders offline and never downloads "
                    "Typst packages — copy the package's .typ files into the template "
                    "folder and import them by relative path")


class _Stage:
    """A private compile root for one template set and logo."""

    def __init__(self, template_dir: Path | None, logo: Path | None) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="gateway-typst-")
        root = Path(self._tmp.name)
        origin: dict[Path, Path] = {}
        shutil.copytree(TYPST_TEMPLATES, root, dirs_exist_ok=True)
        shutil.copytree(TYPST_TEMPLATES, root / "default")
        if template_dir is not None:
            for source in sorted(template_dir.rglob("*")):
                relative = source.relative_to(template_dir)
                if relative.parts[0] in ("default", "messages", INPUT):
                    continue  # the built-in set, labels (read by Python), invoice data
                target = root / relative
                if source.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                elif source.is_file():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(source, target)
                    origin[target] = source
        self.logo: str | None = None
        if logo is not None:
            name = LOGO_NAME + logo.suffix.lower()
            shutil.copyfile(logo, root / name)
            self.logo = "/" + name  # root-relative: also right from default/layout.typ
        _check_no_packages(root, origin)
        self.root = root
        self.legacy = _reads_sys_inputs(origin)
        self.input = root / INPUT
        self.input.mkdir()
        self._written: dict[str, str] = {}
        empty = root / ".no-packages"
        empty.mkdir()
        import typst

        self.compiler = typst.Compiler(str(root / MAIN), root=str(root),
                                       font_paths=font_set(),
                                       package_path=str(empty),
                                       package_cache_path=str(empty),
                                       sys_inputs={"logo": self.logo} if self.logo else {})

    def put(self, name: str, text: str) -> None:
        """Write one input file, unless it already holds ``text`` (the catalogue rarely
        changes): Typst then sees the same file and reuses what it made of it."""
        if self._written.get(name) != text:
            (self.input / name).write_text(text, encoding="utf-8")
            self._written[name] = text


def page_count(pdf: bytes) -> int | None:
    """The number of pages of a PDF Typst wrote, or None if it cannot be told.

    Typst writes the page tree as the file's first object, so it is read only there:
    invoice text (a seller's name in the document information, say) comes later in the
    file and cannot pass for it."""
    found = _PAGE_TREE.match(pdf)
    return int(found.group(1)) if found else None


def _reads_sys_inputs(origin: dict[Path, Path]) -> bool:
    """Whether a user's template reads its data from ``sys.inputs`` (the first Typst
    engine's way): it is then given the data that way, at the cost of Typst's caching."""
    return any(_SYS_INPUTS.search("\n".join(_code_lines(staged)))
               for staged in origin if staged.suffix == ".typ")


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_plain(x) for x in value]
    if isinstance(value, dict):
        return {str(k): _plain(x) for k, x in value.items()}
    return value


def view_data(view: InvoiceView, *, brand: str, style: dict[str, str]) -> dict[str, Any]:
    """The view as plain JSON data: what the Typst template reads as ``d``."""
    data = {f.name: _plain(getattr(view, f.name)) for f in dataclasses.fields(view)
            if f.name not in ("t", "qr", "qr_svg")}
    data.update(lang=view.t.html_lang, brand=brand, style=style)
    return data


class TypstRenderer:
    """Renders invoices with Typst; one per process, reused for every invoice."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stages: dict[tuple[Path | None, Path | None], _Stage] = {}
        self._messages: dict[int, str] = {}

    def stage(self, template_dir: Path | None, logo: Path | None) -> _Stage:
        key = (template_dir, logo)
        with self._lock:
            stage = self._stages.get(key)
            if stage is None:
                if template_dir is not None and not (template_dir / MAIN).exists():
                    template_dir_typ = None  # an HTML-only override: built-in Typst layout
                else:
                    template_dir_typ = template_dir
                stage = self._stages[key] = _Stage(template_dir_typ, logo)
            return stage

    def _messages_json(self, t: Messages) -> str:
        # load_messages is cached, so a catalogue object lives as long as the process.
        key = id(t)
        text = self._messages.get(key)
        if text is None:
            text = self._messages[key] = json.dumps(t.data, ensure_ascii=False)
        return text

    def inputs(self, invoice: Invoice, language: str, settings: Any,
               stage: _Stage) -> dict[str, str]:
        page = Page.of(invoice, language, settings)
        inputs = {"invoice": json.dumps(view_data(page.view, brand=page.brand,
                                                  style=page.style), ensure_ascii=False),
                  "messages": self._messages_json(page.t)}
        if page.view.qr_svg:
            inputs["qr"] = page.view.qr_svg
        if stage.logo:
            inputs["logo"] = stage.logo
        return inputs

    def pdf(self, invoice: Invoice, language: str, settings: Any, *,
            variant: str | None = None) -> bytes:
        import typst

        stage = self.stage(settings.template_dir, settings.logo)
        inputs = self.inputs(invoice, language, settings, stage)
        # The issue date, not the clock: the same invoice gives the same bytes.
        when = dt.datetime.combine(invoice.issue_date, dt.time(), tzinfo=dt.UTC)
        standards = ["a-3b"] if variant == "pdf/a-3b" else []
        def compile_pdf(**extra: Any) -> Any:
            return stage.compiler.compile(format="pdf", timestamp=when,
                                          pdf_standards=standards, **extra)

        try:
            with self._lock:  # one compiler per template set, not safe to share
                if stage.legacy:
                    output = compile_pdf(sys_inputs=inputs)
                else:
                    stage.put("invoice.json", inputs["invoice"])
                    stage.put("messages.json", inputs["messages"])
                    stage.put("qr.svg", inputs.get("qr", ""))
                    # Most invoices fit on one page: try that first, without counting
                    # pages (see `one-page` in layout.typ), and lay out again if not.
                    stage.put("one-page.txt", "1")
                    output = compile_pdf()
                    if page_count(output) != 1:
                        stage.put("one-page.txt", "0")
                        output = compile_pdf()
                return bytes(output)
        except typst.TypstError as exc:
            hints = "; ".join(getattr(exc, "hints", []) or [])
            raise TemplateError(f"pdf: Typst template failed on invoice {invoice.number}: "
                                f"{getattr(exc, 'message', exc)}"
                                + (f" (hint: {hints})" if hints else "")) from None
