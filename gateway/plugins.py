"""Finding, loading and listing plugins.

Every plugin, built-in or not, comes in through the ``invoice_gateway`` entry-point
group. Environment variables steer loading without touching code:

``GATEWAY_LOAD_PLUGINS``
    comma-separated allowlist of entry-point names; empty string loads none.
``GATEWAY_DISABLE_PLUGINS``
    comma-separated entry-point names to block (e.g. ``email``).
``GATEWAY_TRACE_PLUGINS``
    set to ``1`` to log every hook call.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Generic, TypeVar

import pluggy

from gateway import hookspecs
from gateway.errors import PluginError
from gateway.hookspecs import Channel, Format, Source

log = logging.getLogger("gateway.plugins")
ENTRY_POINT_GROUP = hookspecs.PROJECT

T = TypeVar("T")


@dataclass
class Registered(Generic[T]):
    obj: T
    plugin: str


@dataclass
class Registry(Generic[T]):
    """Named objects (formats, channels, sources) with the plugin that brought each."""

    kind: str
    protocol: type
    required: tuple[str, ...]
    items: dict[str, Registered[T]] = field(default_factory=dict)

    def register(self, obj: T, plugin: str) -> None:
        missing = [a for a in self.required if not hasattr(obj, a)]
        if missing:
            raise PluginError(
                f"plugin {plugin!r} registered a {self.kind} without {', '.join(missing)}"
            )
        name = getattr(obj, "name", None)
        if not isinstance(name, str) or not name:
            raise PluginError(f"plugin {plugin!r} registered a {self.kind} without a name")
        if name in self.items:
            other = self.items[name].plugin
            raise PluginError(
                f"{self.kind} {name!r} is registered by both {other!r} and {plugin!r}; "
                f"disable one with GATEWAY_DISABLE_PLUGINS"
            )
        self.items[name] = Registered(obj, plugin)

    def get(self, name: str) -> T:
        try:
            return self.items[name].obj
        except KeyError:
            known = ", ".join(sorted(self.items)) or "none"
            raise PluginError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def __contains__(self, name: object) -> bool:
        return name in self.items

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(r.obj for r in self.items.values())

    def names(self) -> list[str]:
        return sorted(self.items)


@dataclass
class Plugins:
    """The loaded plugin manager and what the plugins registered."""

    pm: pluggy.PluginManager
    formats: Registry[Format]
    channels: Registry[Channel]
    sources: Registry[Source]
    #: plugin name → (distribution, version, how it was loaded)
    origins: dict[str, tuple[str | None, str | None, str]] = field(default_factory=dict)

    @property
    def hook(self) -> Any:
        return self.pm.hook

    def describe(self) -> list[dict[str, Any]]:
        """What ``gateway plugins`` prints: every plugin with kind, name, version, origin."""
        rows = []
        for name, plugin in self.pm.list_name_plugin():
            if plugin is None:
                continue
            dist, version, origin = self.origins.get(name, (None, None, "registered in code"))
            provides = [
                {"kind": reg.kind, "name": n}
                for reg in (self.formats, self.channels, self.sources)
                for n, r in reg.items.items()
                if r.plugin == name
            ]
            rows.append(
                {
                    "name": name,
                    "module": getattr(plugin, "__name__", type(plugin).__name__),
                    "distribution": dist,
                    "version": version,
                    "origin": origin,
                    "hooks": sorted(h.name for h in self.pm.get_hookcallers(plugin) or []),
                    "provides": provides,
                }
            )
        return rows


def _names_from_env(var: str) -> set[str] | None:
    value = os.environ.get(var)
    if value is None:
        return None
    return {n.strip() for n in value.split(",") if n.strip()}


def _entry_points() -> Iterable[metadata.EntryPoint]:
    return metadata.entry_points(group=ENTRY_POINT_GROUP)


def get_plugin_manager(
    *, extra: Iterable[tuple[str, object]] = (), load_entry_points: bool = True
) -> Plugins:
    """Build a plugin manager, load the entry points and collect registrations.

    ``extra`` registers further plugin objects by name (tests and embedding apps use
    it); they go through exactly the same registration as entry-point plugins.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    origins: dict[str, tuple[str | None, str | None, str]] = {}
    pm.add_hookspecs(hookspecs)
    allow = _names_from_env("GATEWAY_LOAD_PLUGINS")
    for name in _names_from_env("GATEWAY_DISABLE_PLUGINS") or ():
        pm.set_blocked(name)

    if load_entry_points:
        for ep in _entry_points():
            if allow is not None and ep.name not in allow:
                continue
            if pm.is_blocked(ep.name) or pm.get_plugin(ep.name) is not None:
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin must not take the CLI down
                log.error("plugin %s could not be loaded: %s", ep.name, exc)
                continue
            pm.register(plugin, name=ep.name)
            dist = ep.dist
            origins[ep.name] = (
                dist.metadata["name"] if dist else None,
                dist.version if dist else None,
                f"entry point {ep.value}",
            )
    for name, plugin in extra:
        if not pm.is_blocked(name):
            pm.register(plugin, name=name)
    pm.check_pending()
    if os.environ.get("GATEWAY_TRACE_PLUGINS"):
        pm.trace.root.setwriter(lambda msg: log.info("hook %s", msg.rstrip()))
        pm.enable_tracing()

    plugins = Plugins(
        pm,
        Registry("format", Format, ("name", "media_type", "extension", "render")),
        Registry("channel", Channel, ("name", "Settings", "deliver")),
        Registry("source", Source, ("name", "invoices")),
        origins,
    )
    for hook_name, registry in (
        ("gateway_register_formats", plugins.formats),
        ("gateway_register_channels", plugins.channels),
        ("gateway_register_sources", plugins.sources),
    ):
        caller = getattr(pm.hook, hook_name)
        for impl in caller.get_hookimpls():
            plugin_name = pm.get_name(impl.plugin) or "?"

            def register(obj: Any, _registry: Registry[Any] = registry,
                         _name: str = plugin_name) -> None:
                _registry.register(obj, _name)

            impl.function(**{a: register for a in impl.argnames})
    return plugins
