"""Showing text that came from outside: never as terminal control, never as a Python repr."""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, the bidi controls, line and paragraph separators and the
# byte order mark: a terminal acts on some of them (ESC starts a command sequence that
# can retitle the window, move the cursor or rewrite what the operator already read),
# and the others make text look other than it is.
_UNSAFE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e"
                     r"\u2066-\u2069\ufeff]")
_UNSAFE_KEEP_LINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029"
                                r"\u202a-\u202e\u2066-\u2069\ufeff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\x1b": "\\e"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100
                                else f"\\u{ord(char):04x}")


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with every control character written as an escape (``\\e``, ``\\x07``,
    ``\\n``, ``\\u202e``). ``keep_newlines`` leaves line feeds alone, for multi-line
    output the gateway itself composed."""
    pattern = _UNSAFE_KEEP_LINES if keep_newlines else _UNSAFE
    return pattern.sub(_escape, text)


def quoted(value: object, limit: int = 60) -> str:
    """A value from the input inside a message: quoted, escaped and cut, not ``repr``."""
    text = printable(str(value))
    if len(text) > limit:
        text = text[:limit] + "…"
    return f"'{text}'"
