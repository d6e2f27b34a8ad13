"""The CLI's output layer: everything it prints passes :func:`gateway.core.text.printable`,
so text from an invoice, a file name or a remote server's reply never reaches the
operator's terminal as control characters."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console
from rich.errors import MarkupError

from gateway.core.text import printable


class SafeConsole(Console):
    """A rich console that escapes control characters in every string it renders
    (print arguments and table cells alike); rich's own styling is added after."""

    def render_str(self, text: str, *args: Any, **kwargs: Any) -> Any:
        text = printable(text, keep_newlines=True)
        try:
            return super().render_str(text, *args, **kwargs)
        except MarkupError:  # brackets from the input that are not rich markup
            return super().render_str(text, *args, **{**kwargs, "markup": False})


def echo(message: str, *, err: bool = False, keep_newlines: bool = False) -> None:
    """One line (or, with ``keep_newlines``, a block the gateway composed) to the
    terminal, with control characters escaped."""
    click.echo(printable(message, keep_newlines=keep_newlines), err=err)


# soft_wrap: a plain line (a verdict, a path) is never broken at 80 columns when the
# output goes to a file or a pipe; tables still fit the width.
out = SafeConsole(soft_wrap=True)
err = SafeConsole(stderr=True, soft_wrap=True)


def delivery_name(delivery: Any) -> str:
    """A delivery as the operator reads it: the channel, and the customer's label for it
    when they gave one ("email (accounts)")."""
    if delivery.label == delivery.channel_type:
        return str(delivery.channel_type)
    return f"{delivery.channel_type} ({delivery.label})"
