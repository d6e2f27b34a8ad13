"""``gateway plugin new``: a plugin package that works and is tested as generated.

The package has a ``pyproject.toml`` with the ``invoice_gateway`` entry point, a small
but real format, channel or source, and tests that use :mod:`gateway.testing` (the
conformance suite of its kind). The templates are plain text with ``{{name}}``-style
placeholders, so that the generated code reads like code written by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gateway.errors import ConfigError

Kind = Literal["format", "channel", "source"]
KINDS: tuple[Kind, ...] = ("format", "channel", "source")
_DIST = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


@dataclass(frozen=True)
class Names:
    """``gateway-ledger`` → module ``gateway_ledger``, plugin/object name ``ledger``."""

    distribution: str
    module: str
    plugin: str
    title: str

    @classmethod
    def of(cls, distribution: str) -> Names:
        if not _DIST.match(distribution):
            raise ConfigError(f"plugin name {distribution!r}: use lower-case letters, digits "
                              "and single hyphens, e.g. gateway-ledger")
        plugin = distribution.removeprefix("gateway-").removeprefix("invoice-gateway-")
        title = "".join(part.capitalize() for part in plugin.split("-"))
        return cls(distribution, distribution.replace("-", "_"), plugin, title)


def generate(distribution: str, kind: Kind, directory: Path) -> list[Path]:
    """Write the package into ``directory / distribution``; returns the files written.
    Refuses to write into a directory that exists (nothing is overwritten)."""
    if kind not in KINDS:
        raise ConfigError(f"kind {kind!r}: choose one of {', '.join(KINDS)}")
    names = Names.of(distribution)
    root = directory / distribution
    if root.exists():
        raise ConfigError(f"{root} exists already; choose another name or directory")
    files = {
        "pyproject.toml": PYPROJECT,
        "README.md": README,
        f"{names.module}/__init__.py": MODULES[kind],
        f"tests/test_{names.module}.py": TESTS[kind],
    }
    written = []
    for relative, template in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_fill(template, names, kind), encoding="utf-8")
        written.append(path)
    return written


def _fill(template: str, names: Names, kind: Kind) -> str:
    values = {"distribution": names.distribution, "module": names.module,
              "plugin": names.plugin, "title": names.title, "kind": kind}
    return re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], template)


PYPROJECT = '''\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{{distribution}}"
version = "0.1.0"
description = "An invoice gateway {{kind}} plugin: {{plugin}}"
requires-python = ">=3.11"
dependencies = ["invoice-gateway"]

[project.optional-dependencies]
test = ["pytest>=8"]

# The gateway finds the plugin through this entry point; nothing else registers it.
[project.entry-points.invoice_gateway]
{{plugin}} = "{{module}}"

[tool.setuptools]
packages = ["{{module}}"]

[tool.pytest.ini_options]
testpaths = ["tests"]
'''

README = '''\
# {{distribution}}

An invoice gateway {{kind}} plugin, `{{plugin}}`.

    pip install -e '.[test]'
    python -m pytest -q          # gateway.testing's conformance suite for a {{kind}}
    gateway plugins              # lists {{plugin}} with this distribution

The hooks, value types and limits are in the gateway's docs/plugins.md.
'''

FORMAT = '''\
"""The `{{plugin}}` format: the invoice as plain text, one field per line."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from gateway import Finding, Invoice, InvoiceRejected, RenderContext, hookimpl


class {{title}}Format:
    name: ClassVar[str] = "{{plugin}}"
    media_type: ClassVar[str] = "text/plain"
    extension: ClassVar[str] = "{{plugin}}.txt"
    description: ClassVar[str] = "The invoice as plain text"
    can_parse: ClassVar[bool] = False
    can_validate: ClassVar[bool] = False

    def render(self, invoice: Invoice, context: RenderContext) -> bytes:
        # Pure: no I/O, no clock; the same invoice gives the same bytes.
        totals = invoice.require_totals()
        lines = [
            f"invoice: {invoice.number}",
            f"issued: {invoice.issue_date}",
            f"seller: {invoice.seller.name}",
            f"buyer: {invoice.buyer.name}",
            *(f"line {line.id}: {line.item.name}; {line.quantity} {line.unit}; "
              f"{line.net_amount}" for line in invoice.lines),
            f"total without VAT: {totals.total_without_vat}",
            f"amount due: {totals.amount_due} {invoice.currency}",
        ]
        return ("\\n".join(lines) + "\\n").encode()

    def sniff(self, head: bytes, filename: str) -> bool:
        return False

    def parse(self, data: bytes, source: str) -> Iterator[Invoice | InvoiceRejected]:
        return iter(())

    def validate(self, data: bytes) -> list[Finding]:
        return []


@hookimpl
def gateway_register_formats(register: Any) -> None:
    register({{title}}Format())
'''

FORMAT_TESTS = '''\
"""The `{{plugin}}` format passes the gateway's conformance suite."""

from gateway.testing import check_format, sample_invoice


def test_conformance() -> None:
    check_format("{{plugin}}")


def test_the_amount_due_is_on_the_last_line(gw) -> None:
    document = gw.render(sample_invoice("household"), "{{plugin}}")
    assert document.content.decode().splitlines()[-1] == "amount due: 78.72 EUR"
'''

CHANNEL = '''\
"""The `{{plugin}}` channel: writes each invoice's documents into a directory."""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from gateway import Bundle, DeliveryError, DeliveryState, Receipt, atomic_write, hookimpl


class {{title}}Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a typo fails when the customer is saved

    directory: str = Field(description="Where the documents go")


class {{title}}Channel:
    name: ClassVar[str] = "{{plugin}}"
    description: ClassVar[str] = "Write documents into a directory"
    Settings: ClassVar[type[BaseModel]] = {{title}}Settings

    def session(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def deliver(self, bundle: Bundle, settings: Any, state: DeliveryState) -> Receipt:
        # Idempotent: a repeat finds its documents done and sends nothing again.
        directory = Path(settings.directory)
        for doc in bundle.documents:
            if state.done(doc.filename):
                continue
            try:
                atomic_write(directory / doc.filename, doc.content)
            except OSError as exc:  # a full disk or a missing mount: an operator fixes it
                raise DeliveryError(f"cannot write {directory / doc.filename}: "
                                    f"{exc.strerror}", retryable=True) from None
            state.mark_done(doc.filename, doc.sha256)
        digest = hashlib.sha256(bundle.idempotency_key.encode()).hexdigest()[:24]
        return Receipt(id=f"{{plugin}}:{digest}", detail=str(directory),
                       recipients={d.filename: "written" for d in bundle.documents},
                       data={"directory": str(directory),
                             "files": [d.filename for d in bundle.documents]})


@hookimpl
def gateway_register_channels(register: Any) -> None:
    register({{title}}Channel())
'''

CHANNEL_TESTS = '''\
"""The `{{plugin}}` channel passes the gateway's conformance suite."""

from pathlib import Path

from gateway.testing import add_customer, check_channel


def listing(directory: Path) -> dict[str, bytes]:
    if not directory.exists():
        return {}
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_conformance(tmp_path: Path) -> None:
    target = tmp_path / "out"
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    check_channel("{{plugin}}", {"directory": str(target)},
                  observe=lambda: listing(target),
                  retryable={"directory": str(blocker / "out")})


def test_an_invoice_is_delivered(gw, sample_invoice, run_dispatcher, tmp_path: Path) -> None:
    target = tmp_path / "out"
    add_customer(gw, channels=[{"channel": "{{plugin}}",
                                "settings": {"directory": str(target)}}])
    gw.push(sample_invoice(completed=False), source="test")
    assert run_dispatcher(gw).delivered == 1
    assert list(listing(target)) == ["E2611-00123.json"]
'''

SOURCE = '''\
"""The `{{plugin}}` source: invoices from a JSON file (a list of invoice objects)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from gateway import ConfigError, Invoice, hookimpl, load_invoice


class {{title}}Source:
    name: ClassVar[str] = "{{plugin}}"
    description: ClassVar[str] = "Invoices from a JSON file"

    def invoices(self, options: dict[str, Any]) -> Iterator[Invoice]:
        """``options``: ``path``, a JSON file holding a list of invoices."""
        path = options.get("path")
        if not isinstance(path, str | Path):
            raise ConfigError("{{plugin}} source: give path, the JSON file to read")
        try:
            items = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ConfigError(f"{{plugin}} source: cannot read {path}: {exc}") from None
        if not isinstance(items, list):
            raise ConfigError(f"{{plugin}} source: {path} must hold a list of invoices")
        for i, item in enumerate(items):
            yield load_invoice(item, source=f"{path} #{i + 1}")


@hookimpl
def gateway_register_sources(register: Any) -> None:
    register({{title}}Source())
'''

SOURCE_TESTS = '''\
"""The `{{plugin}}` source passes the gateway's conformance suite."""

import json
from pathlib import Path

import pytest

from gateway import ConfigError
from gateway.testing import check_source, sample_data


def test_conformance(tmp_path: Path) -> None:
    path = tmp_path / "invoices.json"
    path.write_text(json.dumps([sample_data("household"), sample_data("business")]))
    check_source("{{plugin}}", {"path": str(path)}, minimum=2)


def test_a_missing_file_is_named(gw, tmp_path: Path) -> None:
    source = gw.plugins.sources.get("{{plugin}}")
    with pytest.raises(ConfigError, match="cannot read"):
        list(source.invoices({"path": str(tmp_path / "missing.json")}))
'''

MODULES: dict[str, str] = {"format": FORMAT, "channel": CHANNEL, "source": SOURCE}
TESTS: dict[str, str] = {"format": FORMAT_TESTS, "channel": CHANNEL_TESTS,
                         "source": SOURCE_TESTS}
