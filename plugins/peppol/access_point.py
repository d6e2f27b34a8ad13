"""The access point itself: its certificate, the network's trust, its records and files.

Built once per settings (the key is read once, not per delivery) and shared by the
channel, the receiving server and the commands.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from as4.peppol import peppol_security_policy

from plugins.peppol.pki import Credentials, Trust, load_credentials
from plugins.peppol.settings import PeppolSettings
from plugins.peppol.store import PeppolStore

# Fields of PeppolSettings that describe the access point rather than one customer.
AP_FIELDS = ("network", "sml_zone", "dns_server", "sender", "certificate_file",
             "certificate_env", "key_file", "key_env", "key_password_env", "root_ca_file",
             "ap_ca_file", "smp_ca_file", "smp_url", "timeout", "max_message_bytes",
             "receive_concurrency", "allow_http", "lookup_cache_seconds")


@dataclass
class AccessPoint:
    settings: PeppolSettings
    data_dir: Path
    credentials: Credentials
    trust: Trust
    store: PeppolStore
    _endpoints: dict[tuple[str, ...], tuple[float, Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # SMP answers, reused for ``lookup_cache_seconds``. Only successful lookups are kept;
    # the channel forgets an entry as soon as its endpoint refuses or cannot be reached.
    def cached_endpoint(self, key: tuple[str, ...]) -> Any:
        with self._lock:
            entry = self._endpoints.get(key)
            if entry is None or entry[0] < time.monotonic():
                self._endpoints.pop(key, None)
                return None
            return entry[1]

    def remember_endpoint(self, key: tuple[str, ...], endpoint: Any) -> None:
        if self.settings.lookup_cache_seconds > 0:
            with self._lock:
                self._endpoints[key] = (time.monotonic() + self.settings.lookup_cache_seconds,
                                        endpoint)

    def forget_endpoint(self, key: tuple[str, ...]) -> None:
        with self._lock:
            self._endpoints.pop(key, None)

    @property
    def directory(self) -> Path:
        return self.data_dir / "peppol"

    @property
    def outbox_dir(self) -> Path:
        return self.directory / "outbox"

    @property
    def receipts_dir(self) -> Path:
        return self.directory / "receipts"

    @property
    def inbox_dir(self) -> Path:
        return self.directory / "inbox"

    def security_policy(self) -> Any:
        policy = peppol_security_policy(*self.trust.roots, intermediates=list(self.trust.ap_cas))
        return policy.model_copy(
            update={"maximum_decompressed_size": self.settings.max_message_bytes})

    def close(self) -> None:
        self.store.close()


_cache: dict[tuple[Any, ...], AccessPoint] = {}
_cache_lock = threading.Lock()


def access_point(settings: PeppolSettings, data_dir: Path) -> AccessPoint:
    """The access point for these settings (cached: one key load, one database)."""
    key = (str(data_dir.resolve()), *(getattr(settings, f) for f in AP_FIELDS))
    with _cache_lock:
        ap = _cache.get(key)
        if ap is None:
            ap = AccessPoint(settings, data_dir, load_credentials(settings, data_dir),
                             Trust.load(settings, data_dir),
                             PeppolStore(data_dir / "peppol.db"))
            _cache[key] = ap
        return ap


def close_all() -> None:
    with _cache_lock:
        for ap in _cache.values():
            ap.close()
        _cache.clear()
