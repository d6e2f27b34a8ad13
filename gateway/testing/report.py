"""The result of a conformance suite: every check passed, skipped or failed."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from gateway.core.pipeline import Gateway
from gateway.testing.harness import make_gateway


class ConformanceError(AssertionError):
    """A plugin broke the contract; the message lists every failed check."""


@dataclass
class Report:
    """What a suite checked: ``passed`` and ``skipped`` (with the reason) check names."""

    subject: str
    passed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    @contextlib.contextmanager
    def check(self, name: str) -> Iterator[None]:
        try:
            yield
        except Skip as skip:
            self.skipped[name] = str(skip)
        except Exception as exc:  # every failure is reported, the suite goes on
            # pytest's assertion rewriting appends the whole expression: keep our line.
            self.failed[name] = str(exc).split("\n")[0] if isinstance(exc, AssertionError) \
                else f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        else:
            self.passed.append(name)

    def raise_for_failures(self) -> Report:
        if self.failed:
            lines = "\n".join(f"  - {n}: {m}" for n, m in self.failed.items())
            raise ConformanceError(f"{self.subject} fails {len(self.failed)} conformance "
                                   f"check(s):\n{lines}")
        return self


class Skip(Exception):
    pass


@contextlib.contextmanager
def suite_gateway(gw: Gateway | None, plugins: Iterable[tuple[str, object]]) -> Iterator[Gateway]:
    if gw is not None:
        yield gw
        return
    with tempfile.TemporaryDirectory(prefix="gateway-conformance-") as tmp:
        made = make_gateway(Path(tmp) / "data", plugins=plugins)
        try:
            yield made
        finally:
            made.close()


#: BT-23/BT-24: every e-invoice syntax must state a process and a specification, so a
#: format may fill them in where the invoice left them empty.
