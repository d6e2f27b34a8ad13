"""What each thread of the web server holds for itself (its gateway, its SQLite
connections), closed once the thread has ended."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger("gateway.portal")


class PerThread(Generic[T]):
    """One ``make()`` per thread: a SQLite connection serves one thread at a time.

    The server's worker threads come and go (anyio ends one that has been idle for ten
    seconds and starts another for the next burst of requests). What an ended thread
    made is closed when the next one is made, so a portal that runs for months holds
    one per live thread, not one per thread it ever had.
    """

    def __init__(self, make: Callable[[], T], close: Callable[[T], None]) -> None:
        self._make, self._close = make, close
        self._local = threading.local()
        self._held: list[tuple[threading.Thread, T]] = []
        self._lock = threading.Lock()

    def get(self) -> T:
        value: T | None = getattr(self._local, "value", None)
        if value is None:
            value = self._make()
            self._local.value = value
            with self._lock:
                ended = [v for t, v in self._held if not t.is_alive()]
                self._held = [(t, v) for t, v in self._held if t.is_alive()]
                self._held.append((threading.current_thread(), value))
            for old in ended:
                try:
                    self._close(old)
                except Exception:  # this request is not the ended thread's: it goes on
                    log.exception("closing what an ended thread held failed")
        return value

    def close(self) -> None:
        """Close what every thread holds; a thread that asks again gets a new one."""
        with self._lock:
            held, self._held = self._held, []
            self._local = threading.local()
        for _, value in held:
            self._close(value)
