"""The canonical JSON format: the invoice model as JSON, in and out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, ClassVar

from gateway import (
    Finding,
    InputError,
    Invoice,
    InvoiceRejected,
    RenderContext,
    hookimpl,
    load_invoice,
)
from gateway.core.limits import check_file_size


class JsonFormat:
    name: ClassVar[str] = "json"
    media_type: ClassVar[str] = "application/json"
    extension: ClassVar[str] = "json"
    description: ClassVar[str] = "Canonical JSON of the EN 16931 invoice model (gateway schema)"
    can_parse: ClassVar[bool] = True
    can_validate: ClassVar[bool] = False

    def render(self, invoice: Invoice, context: RenderContext) -> bytes:
        return invoice.model_dump_json(indent=2, exclude_none=True).encode() + b"\n"

    def sniff(self, head: bytes, filename: str) -> bool:
        if filename.lower().endswith(".json"):
            return True
        stripped = head.removeprefix(b"\xef\xbb\xbf").lstrip()
        return stripped[:1] in (b"{", b"[")

    def parse(self, data: bytes, source: str) -> Iterator[Invoice | InvoiceRejected]:
        """One invoice object, a list of them, or ``{"invoices": [...]}``."""
        check_file_size(len(data), source=source)
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InputError(f"not valid UTF-8 at byte {exc.start}", source=source) from None
        try:
            parsed: Any = json.loads(text, parse_float=Decimal)
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON: {exc.msg} at line {exc.lineno} column "
                             f"{exc.colno}", source=source) from None
        except RecursionError:
            raise InputError("JSON is nested too deeply", source=source) from None
        if isinstance(parsed, dict) and isinstance(parsed.get("invoices"), list):
            items = parsed["invoices"]
        elif isinstance(parsed, list):
            items = parsed
        else:
            items = [parsed]
        for i, item in enumerate(items):
            where = f"{source}[{i}]" if len(items) > 1 else source
            if not isinstance(item, dict):
                raise InputError(f"item {i} is not a JSON object", source=source)
            try:
                yield load_invoice(item, source=where)
            except InvoiceRejected as exc:
                yield exc

    def validate(self, data: bytes) -> list[Finding]:
        return []


@hookimpl
def gateway_register_formats(register: Any) -> None:
    register(JsonFormat())
