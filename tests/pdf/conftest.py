"""Fixtures of the PDF tests: completed example invoices."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from gateway import Invoice, complete, load_invoice


@pytest.fixture
def completed(load_example: Callable[[str], dict[str, Any]]) -> Callable[..., Invoice]:
    """A completed example invoice by file name, optionally changed by ``edit``."""

    def make(name: str = "electricity-household.json",
             edit: Callable[[dict[str, Any]], None] | None = None) -> Invoice:
        data = copy.deepcopy(load_example(name))
        if edit is not None:
            edit(data)
        return complete(load_invoice(data, source=name))

    return make
