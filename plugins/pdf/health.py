"""Start-up check for the one system library that decides whether PDFs are fast.

Without Debian's ``libharfbuzz-subset0`` weasyprint falls back to fontTools for font
subsetting, which is several times slower, and only says so in a log line that is easy
to miss. The gateway says it once per process, at WARNING, with the fix.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging

log = logging.getLogger("gateway.pdf")

_NAMES = ("libharfbuzz-subset.so.0", "libharfbuzz-subset.0.dylib", "libharfbuzz-subset-0.dll")

MISSING_MESSAGE = (
    "libharfbuzz-subset is not installed: weasyprint falls back to fontTools subsetting "
    "and every PDF takes about 3-4 times longer. Install it: "
    "'apt-get install libharfbuzz-subset0' (Debian/Ubuntu), then restart the gateway."
)


def harfbuzz_subset_available() -> bool:
    for name in (ctypes.util.find_library("harfbuzz-subset"), *_NAMES):
        if not name:
            continue
        try:
            ctypes.CDLL(name)
        except OSError:
            continue
        return True
    return False


@functools.lru_cache(maxsize=1)
def check_once() -> bool:
    """Warn loudly (once per process) when the library is missing; return availability."""
    available = harfbuzz_subset_available()
    if not available:
        log.warning("%s", "!" * 20 + " " + MISSING_MESSAGE)
    return available
