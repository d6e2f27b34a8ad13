"""Sample invoices shipped as package data, for plugin authors' tests.

Latvian electricity bills, valid by EN 16931 and Peppol BIS 3.0 once completed:

``household``
    a private customer's monthly bill (3 lines);
``business``
    a company's bill with a purchase order reference;
``credit-note``
    a credit note (381) referring to a preceding invoice;
``allowances-charges``
    line and document level allowances and charges with reason codes;
``multi-page``
    62 lines, enough for a PDF to run over several pages.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources
from typing import Any

from gateway.core.model import Invoice
from gateway.core.validation import complete, load_invoice

SAMPLES = ("household", "business", "credit-note", "allowances-charges", "multi-page")


@cache
def _raw(name: str) -> dict[str, Any]:
    if name not in SAMPLES:
        raise KeyError(f"no sample invoice {name!r}; samples: {', '.join(SAMPLES)}")
    text = resources.files("gateway.testing").joinpath(f"invoices/{name}.json").read_text(
        encoding="utf-8")
    return json.loads(text)


def sample_data(name: str) -> dict[str, Any]:
    """A fresh copy of a sample as JSON data, to change before loading."""
    return copy.deepcopy(_raw(name))


def sample_invoice(name: str = "household", *, completed: bool = True) -> Invoice:
    """A sample as an :class:`~gateway.Invoice`; completed (totals computed) by default,
    which is what :meth:`Format.render` receives."""
    invoice = load_invoice(sample_data(name), source=f"sample {name}")
    return complete(invoice) if completed else invoice
