"""Gateway configuration: a TOML file in the data directory, overridable by environment.

``<data-dir>/gateway.toml`` (or ``--config``/``GATEWAY_CONFIG``)::

    [gateway]
    portal_url = "https://invoices.example.lv"
    validate_rendered = true

    [dispatcher]
    max_attempts = 8
    base_delay = 30        # seconds, doubled per attempt, with jitter
    max_delay = 3600
    max_age_hours = 72
    lease_seconds = 300

    [dispatcher.limits.email]   # per channel type, shared by every dispatcher process
    concurrency = 4             # deliveries in flight at once
    per_second = 10             # attempts started per second (with a burst of `burst`)
    burst = 5

    [dispatcher.retry.webhook]  # per channel type, over the channel's own policy
    max_attempts = 20
    base_delay = 5

    [store]                # the embedded SQLite file unless a server is named
    url = "postgresql://gateway@db.example.lv/gateway"   # or GATEWAY_STORE_URL

    [archive]              # default: the archive folder of the data directory
    url = "s3://invoices/archive"   # endpoint + credentials: AWS_* environment variables

    [queue]                # only with this section do Celery workers render and deliver
    url = "redis://127.0.0.1:6379/0"   # or GATEWAY_QUEUE_URL
    sweep_seconds = 30

    [limits]               # see gateway.core.limits
    lines_per_invoice = 1000

    [network]              # see gateway.core.netguard
    allow = ["10.20.0.0/16"]   # customer destinations may reach these private networks

    [plugins.email]        # defaults for a plugin; customers' settings override them
    host = "smtp.example.lv"

Secrets are never read from the command line: plugins take them from environment
variables named in their settings (for example ``password_env = "SMTP_PASSWORD"``).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.core.limits import Limits
from gateway.core.netguard import NetworkPolicy
from gateway.core.validation import first_error
from gateway.errors import ConfigError


class ChannelLimits(BaseModel):
    """Limits for one channel type, enforced across all dispatcher processes."""

    model_config = ConfigDict(extra="forbid")

    concurrency: int | None = Field(None, ge=1)
    per_second: float | None = Field(None, gt=0)
    burst: int = Field(1, ge=1)


class RetrySettings(BaseModel):
    """``[dispatcher.retry.<channel>]``: an operator's retry policy for one channel type,
    over the channel's own ``retry`` and the ``[dispatcher]`` defaults."""

    model_config = ConfigDict(extra="forbid")

    max_attempts: int | None = Field(None, ge=1)
    base_delay: float | None = Field(None, ge=0)
    max_delay: float | None = Field(None, ge=0)


class DispatcherSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(8, ge=1)
    base_delay: float = Field(30.0, ge=0)
    max_delay: float = Field(3600.0, ge=0)
    max_age_hours: float = Field(72.0, gt=0)
    lease_seconds: float = Field(300.0, gt=0)
    # due deliveries one worker leases per transaction; the rest of a batch waits while
    # the first are sent, so a batch takes no longer than a few seconds to work off
    batch: int = Field(32, ge=1, le=1000)
    limits: dict[str, ChannelLimits] = Field(default_factory=dict)
    retry: dict[str, RetrySettings] = Field(default_factory=dict)


class StoreSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # None: gateway.db in the data directory. A password belongs in ~/.pgpass or
    # PGPASSWORD rather than in this file.
    url: str | None = Field(None, pattern=r"^(postgres|postgresql|sqlite)://")


class GatewaySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    portal_url: str | None = None
    validate_rendered: bool = True


class ArchiveSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = None  # s3://bucket/prefix, or a folder; default DATA_DIR/archive
    endpoint_url: str | None = None  # else AWS_ENDPOINT_URL, else AWS itself
    region: str | None = None


class QueueSettings(BaseModel):
    """Celery on a Redis broker; the database stays the source of truth (docs/scale.md)."""

    model_config = ConfigDict(extra="forbid")

    url: str = "redis://127.0.0.1:6379/0"
    # How often `gateway worker --beat` (or `gateway sweep`) re-queues what is due in the
    # database but has no live task: lost messages, expired leases, retries whose time came.
    sweep_seconds: float = Field(30.0, gt=0)
    # A render job leased by a worker that died is taken over after this long.
    render_lease_seconds: float = Field(600.0, gt=0)
    render_max_attempts: int = Field(8, ge=1)


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data_dir: Path
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    dispatcher: DispatcherSettings = Field(default_factory=DispatcherSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    archive: ArchiveSettings = Field(default_factory=ArchiveSettings)
    queue: QueueSettings | None = None
    limits: Limits = Field(default_factory=Limits)
    network: NetworkPolicy = Field(default_factory=NetworkPolicy)
    plugins: dict[str, dict[str, Any]] = Field(default_factory=dict)

    def plugin_settings(self, name: str) -> dict[str, Any]:
        return dict(self.plugins.get(name, {}))


def default_data_dir() -> Path:
    return Path(os.environ.get("GATEWAY_DATA_DIR", "gateway-data"))


def load_config(data_dir: Path | None = None, config_file: Path | None = None) -> Config:
    data_dir = (data_dir or default_data_dir()).expanduser()
    path = config_file or (
        Path(os.environ["GATEWAY_CONFIG"]) if os.environ.get("GATEWAY_CONFIG") else None
    ) or data_dir / "gateway.toml"
    raw: dict[str, Any] = {}
    if path.exists():
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
    elif config_file is not None:
        raise ConfigError(f"{path}: configuration file not found")
    if url := os.environ.get("GATEWAY_PORTAL_URL"):
        raw.setdefault("gateway", {})["portal_url"] = url
    if url := os.environ.get("GATEWAY_ARCHIVE_URL"):
        raw.setdefault("archive", {})["url"] = url
    if url := os.environ.get("GATEWAY_QUEUE_URL"):
        raw.setdefault("queue", {})["url"] = url
    try:
        return Config.model_validate({**raw, "data_dir": data_dir})
    except ValidationError as exc:
        loc, msg = first_error(exc)
        raise ConfigError(f"{path}: {loc}: {msg}") from None
