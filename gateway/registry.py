"""Registries of what plugins registered: formats, channels, sources by name."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from gateway.errors import PluginError

T = TypeVar("T")

#: Keys of a customer's channel preference that belong to the core, not to the
#: channel: a channel's ``Settings`` must not use them (``gateway customer add --channel
#: "TYPE key=value"`` could not tell them apart).
RESERVED_CHANNEL_KEYS = frozenset({"channel", "name", "settings", "formats", "fallback"})


def _check_channel_settings(channel: Any, plugin: str) -> None:
    from pydantic import BaseModel

    model = getattr(channel, "Settings", None)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise PluginError(f"plugin {plugin!r}: channel {channel.name!r} needs a pydantic "
                          "model as Settings")
    clash = sorted(RESERVED_CHANNEL_KEYS & set(model.model_fields))
    if clash:
        raise PluginError(f"plugin {plugin!r}: channel {channel.name!r} settings use the "
                          f"reserved key(s) {', '.join(clash)}")



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
        if self.kind == "channel":
            _check_channel_settings(obj, plugin)
        if name in self.items:
            other = self.items[name].plugin
            raise PluginError(
                f"{self.kind} {name!r} is registered by both {other!r} and {plugin!r}; "
                f"disable one with GATEWAY_DISABLE_PLUGINS"
            )
        self.items[name] = Registered(obj, plugin)

    def drop_plugin(self, plugin: str) -> None:
        """Forget everything ``plugin`` registered (it turned out to be broken).

        A hung hook of the plugin may register or drop in its own thread meanwhile: the
        items are copied at once, not iterated while they may change."""
        for name, registered in list(self.items.items()):
            if registered.plugin == plugin:
                self.items.pop(name, None)

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
