"""Finding, loading and listing plugins.

Every plugin, built-in or not, comes in through the ``invoice_gateway`` entry-point
group. Environment variables steer loading without touching code:

``GATEWAY_LOAD_PLUGINS``
    comma-separated allowlist of entry-point names; empty string loads none.
``GATEWAY_DISABLE_PLUGINS``
    comma-separated entry-point names to block (e.g. ``email``).
``GATEWAY_TRACE_PLUGINS``
    set to ``1`` to log every hook call.
``GATEWAY_STRICT_PLUGINS``
    set to ``1`` to make a broken plugin fatal (CI); the CLI flag is ``--strict-plugins``.
``GATEWAY_PLUGIN_TIMEOUT``
    seconds a plugin's import or register hook may take (default 20) before it is
    given up as hanging.

A broken installed plugin (it does not import, hangs while importing or registering, a
hook has a wrong signature or an unknown name, or its register hook raises) is skipped
with one line naming its distribution and the reason, and ``gateway plugins`` lists it
as broken: one bad package never takes the command line down. Plugins registered in
code (``extra``) are the caller's own and fail loudly.
"""

from __future__ import annotations

import difflib
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, TypeVar

import pluggy

from gateway import hookspecs
from gateway.errors import PluginError
from gateway.hookspecs import Channel, Format, Source
from gateway.registry import RESERVED_CHANNEL_KEYS, Registered, Registry

log = logging.getLogger("gateway.plugins")
ENTRY_POINT_GROUP = hookspecs.PROJECT
STRICT_ENV = "GATEWAY_STRICT_PLUGINS"
TIMEOUT_ENV = "GATEWAY_PLUGIN_TIMEOUT"
DEFAULT_TIMEOUT = 20.0
T = TypeVar("T")
__all__ = ["RESERVED_CHANNEL_KEYS", "BrokenPlugin", "Plugins", "Registered", "Registry",
           "get_plugin_manager", "strict_from_env"]
REGISTER_HOOKS = ("gateway_register_formats", "gateway_register_channels",
                  "gateway_register_sources")



@dataclass(frozen=True)
class BrokenPlugin:
    """An installed plugin that was skipped, and why."""

    name: str
    distribution: str | None
    version: str | None
    reason: str

    def line(self) -> str:
        dist = (f"distribution {self.distribution} {self.version or ''}".rstrip()
                if self.distribution else "no distribution")
        return f"plugin {self.name!r} ({dist}) skipped: {self.reason}"


@dataclass
class Plugins:
    """The loaded plugin manager and what the plugins registered."""

    pm: pluggy.PluginManager
    formats: Registry[Format]
    channels: Registry[Channel]
    sources: Registry[Source]
    #: plugin name → (distribution, version, how it was loaded)
    origins: dict[str, tuple[str | None, str | None, str]] = field(default_factory=dict)
    broken: list[BrokenPlugin] = field(default_factory=list)
    strict: bool = False
    report: Callable[[str], None] = field(default=log.warning)
    #: seconds a plugin's import or register hook may take (GATEWAY_PLUGIN_TIMEOUT)
    timeout: float = DEFAULT_TIMEOUT

    @property
    def hook(self) -> Any:
        return self.pm.hook

    @property
    def registries(self) -> tuple[Registry[Any], ...]:
        return (self.formats, self.channels, self.sources)

    def fail(self, name: str, reason: str) -> None:
        """Skip the entry-point plugin ``name``: forget what it registered and report it
        in one line (raise instead in strict mode, or for a plugin registered in code)."""
        dist, version, origin = self.origins.get(name, (None, None, "registered in code"))
        plugin = self.pm.get_plugin(name)
        if not origin.startswith("entry point"):
            raise PluginError(f"plugin {name!r}: {reason}")
        # Marked broken before what it registered is dropped: a hook given up as hanging
        # that wakes up in between must find it broken, or its registration stays.
        broken = BrokenPlugin(name, dist, version, reason)
        self.broken.append(broken)
        for registry in self.registries:
            registry.drop_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin)
        if not self.strict:
            self.report(broken.line())

    def is_broken(self, name: str) -> bool:
        return any(b.name == name for b in self.broken)

    def raise_if_strict(self) -> None:
        if self.strict and self.broken:
            lines = "; ".join(b.line() for b in self.broken)
            raise PluginError(f"broken plugins (strict mode, {STRICT_ENV}): {lines}")

    def register_commands(self, cli: Any) -> None:
        """Call ``gateway_register_commands`` plugin by plugin; a plugin whose hook raises
        is skipped and the commands it added half-way are taken back."""
        for impl in self.pm.hook.gateway_register_commands.get_hookimpls():
            name = self.pm.get_name(impl.plugin) or "?"
            before = _command_tree(cli)
            try:
                bounded(lambda f=impl.function, a=impl.argnames: f(**{n: cli for n in a}),
                        self.timeout)
            except Exception as exc:
                _restore_command_tree(cli, before)
                self.fail(name, _hook_failure("gateway_register_commands", exc))
        self.raise_if_strict()

    def notify(self, hook_name: str, **kwargs: Any) -> None:
        """Call a lifecycle hook (``gateway_invoice_accepted`` and the like) so that one
        observer's exception neither stops the others nor the work that is already done:
        it is logged with the plugin's name and traceback."""
        caller = getattr(self.pm.hook, hook_name)
        impls = caller.get_hookimpls()
        # Wrappers and GATEWAY_TRACE_PLUGINS need pluggy's own call.
        if os.environ.get("GATEWAY_TRACE_PLUGINS") or any(i.hookwrapper or i.wrapper
                                                          for i in impls):
            try:
                caller(**kwargs)
            except Exception:
                log.exception("a %s implementation raised; ignored", hook_name)
            return
        for impl in reversed(impls):  # pluggy's order: last registered first
            try:
                impl.function(**{a: kwargs[a] for a in impl.argnames})
            except Exception:
                log.exception("plugin %s: %s raised; ignored", self.pm.get_name(impl.plugin),
                              hook_name)

    def describe(self) -> list[dict[str, Any]]:
        """What ``gateway plugins`` prints: every plugin with kind, name, version, origin,
        status (``ok`` or ``broken``, with the error)."""
        rows = []
        for name, plugin in self.pm.list_name_plugin():
            if plugin is None:
                continue
            dist, version, origin = self.origins.get(name, (None, None, "registered in code"))
            provides = [
                {"kind": reg.kind, "name": n}
                for reg in self.registries
                for n, r in reg.items.items()
                if r.plugin == name
            ]
            rows.append({
                "name": name,
                "module": getattr(plugin, "__name__", type(plugin).__name__),
                "distribution": dist, "version": version, "origin": origin,
                "hooks": sorted(h.name for h in self.pm.get_hookcallers(plugin) or []),
                "provides": provides, "status": "ok", "error": None,
            })
        for b in self.broken:
            origin = self.origins.get(b.name, (None, None, "?"))[2]
            rows.append({"name": b.name, "module": None, "distribution": b.distribution,
                         "version": b.version, "origin": origin, "hooks": [], "provides": [],
                         "status": "broken", "error": b.reason})
        return rows


class Hung(Exception):
    """A plugin's import or hook did not return within the time it is given."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"did not finish in {seconds:g} s (it hangs; {TIMEOUT_ENV} "
                         "sets the limit)")


def plugin_timeout() -> float:
    value = os.environ.get(TIMEOUT_ENV, "").strip()
    try:
        seconds = float(value) if value else DEFAULT_TIMEOUT
    except ValueError:
        raise PluginError(f"{TIMEOUT_ENV}={value!r}: expected seconds, e.g. 20") from None
    if not seconds > 0:
        raise PluginError(f"{TIMEOUT_ENV}={value!r}: expected seconds above 0")
    return seconds


def bounded(call: Callable[[], T], seconds: float) -> T:
    """``call()`` in a thread of its own, given up with :class:`Hung` after ``seconds``.

    Python cannot stop a thread: a hung one is left behind as a daemon (it ends with the
    process) holding what it held, such as the import lock of the module it imports.
    That lock is that module's alone, so other imports go on; the loader keeps away from
    the hung module itself (see ``hung_modules`` in :func:`get_plugin_manager`).
    """
    outcome: list[tuple[bool, Any]] = []

    def run() -> None:
        try:
            outcome.append((True, call()))
        except BaseException as exc:  # also SystemExit from a plugin's import
            outcome.append((False, exc))

    thread = threading.Thread(target=run, name="gateway-plugin-load", daemon=True)
    thread.start()
    thread.join(seconds)
    if not outcome:
        raise Hung(seconds)
    ok, value = outcome[0]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]


def _hook_failure(hook_name: str, exc: Exception) -> str:
    if isinstance(exc, Hung):
        return f"{hook_name} {exc}"
    return f"{hook_name} raised {_one_line(exc)}"


def _initializing() -> set[str]:
    """Modules being imported right now (importlib marks their spec)."""
    return {name for name, module in list(sys.modules.items())
            if getattr(getattr(module, "__spec__", None), "_initializing", False)}


def _hung_package(module: str, hung: set[str]) -> str | None:
    """The hung module that importing ``module`` would wait for: itself or a parent."""
    parts = module.split(".")
    return next((m for m in (".".join(parts[:i]) for i in range(1, len(parts) + 1))
                 if m in hung), None)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _command_tree(cli: Any) -> dict[str, Any]:
    groups = [cli, *(c for c in cli.commands.values() if hasattr(c, "commands"))]
    return {id(g): (g, dict(g.commands)) for g in groups}


def _restore_command_tree(cli: Any, before: dict[str, Any]) -> None:
    for group, commands in before.values():
        group.commands.clear()
        group.commands.update(commands)


def _names_from_env(var: str) -> set[str] | None:
    value = os.environ.get(var)
    if value is None:
        return None
    return {n.strip() for n in value.split(",") if n.strip()}


def strict_from_env() -> bool:
    return os.environ.get(STRICT_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def _entry_points() -> Iterable[metadata.EntryPoint]:
    return metadata.entry_points(group=ENTRY_POINT_GROUP)


def _unknown_hooks(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    """Hook implementations of ``plugin`` that match no spec: misspelt names."""
    known = [n for n, c in vars(pm.hook).items() if isinstance(c, pluggy.HookCaller)
             and c.has_spec()]
    problems = []
    for caller in pm.get_hookcallers(plugin) or []:
        if caller.has_spec():
            continue
        impls = [i for i in caller.get_hookimpls() if i.plugin is plugin]
        if all(i.optionalhook for i in impls):
            continue
        near = difflib.get_close_matches(caller.name, known, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        problems.append(f"unknown hook {caller.name!r}{hint}")
    return problems


def get_plugin_manager(
    *, extra: Iterable[tuple[str, object]] = (), load_entry_points: bool = True,
    strict: bool | None = None, report: Callable[[str], None] | None = None,
    cli: Any = None,
) -> Plugins:
    """Build a plugin manager, load the entry points and collect registrations.

    ``extra`` registers further plugin objects by name (tests and embedding apps use
    it); they go through exactly the same registration as entry-point plugins, but an
    error in one of them raises. ``strict`` (default: ``GATEWAY_STRICT_PLUGINS``) makes a
    broken entry-point plugin raise :class:`PluginError` too; ``report`` receives the one
    line per skipped plugin (default: a warning log record). With ``cli`` (a click
    group) the plugins' commands are added too, so that strict mode names every broken
    plugin at once.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    plugins = Plugins(
        pm,
        Registry("format", Format, ("name", "media_type", "extension", "render")),
        Registry("channel", Channel, ("name", "Settings", "deliver")),
        Registry("source", Source, ("name", "invoices")),
        strict=strict_from_env() if strict is None else strict,
        report=report or log.warning,
        timeout=plugin_timeout(),
    )
    #: modules a hung import left half-imported, their import locks held for good
    hung_modules: set[str] = set()
    #: what the caller is importing itself (get_plugin_manager called at import time)
    importing = _initializing() if load_entry_points else set()
    allow = _names_from_env("GATEWAY_LOAD_PLUGINS")
    for name in _names_from_env("GATEWAY_DISABLE_PLUGINS") or ():
        pm.set_blocked(name)

    for ep in _entry_points() if load_entry_points else ():
        if allow is not None and ep.name not in allow:
            continue
        if pm.is_blocked(ep.name) or pm.get_plugin(ep.name) is not None:
            continue
        dist = ep.dist
        plugins.origins[ep.name] = (dist.metadata["name"] if dist else None,
                                    dist.version if dist else None, f"entry point {ep.value}")
        stuck = _hung_package(ep.module, hung_modules)
        if stuck:
            # Importing it would wait forever for the lock the hung import holds.
            plugins.fail(ep.name, f"import of {ep.value} skipped: {stuck} hangs on import")
            continue
        try:
            plugin = bounded(ep.load, plugins.timeout)
        except Hung as exc:
            hung_modules |= _initializing() - importing
            plugins.fail(ep.name, f"import of {ep.value} {exc}")
            continue
        except BaseException as exc:  # also SystemExit from a bad import
            if isinstance(exc, KeyboardInterrupt):
                raise
            plugins.fail(ep.name, f"import of {ep.value} failed: {_one_line(exc)}")
            continue
        try:
            pm.register(plugin, name=ep.name)
        except pluggy.PluginValidationError as exc:
            plugins.fail(ep.name, f"bad hook signature: {_one_line(exc)}")
            continue
        unknown = _unknown_hooks(pm, plugin)
        if unknown:
            plugins.fail(ep.name, "; ".join(unknown))
    for name, plugin in extra:
        if not pm.is_blocked(name):
            pm.register(plugin, name=name)
    pm.check_pending()
    if os.environ.get("GATEWAY_TRACE_PLUGINS"):
        pm.trace.root.setwriter(lambda msg: log.info("hook %s", msg.rstrip()))
        pm.enable_tracing()

    for hook_name, registry in zip(REGISTER_HOOKS, plugins.registries, strict=True):
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            plugin_name = pm.get_name(impl.plugin)
            if plugin_name is None:  # skipped as broken by an earlier hook
                continue

            def register(obj: Any, _registry: Registry[Any] = registry,
                         _name: str = plugin_name) -> None:
                # A hook given up as hanging that wakes up later registers nothing. It
                # runs in a thread of its own, so the plugin may be given up between the
                # look and the registration: then the registration is taken back.
                if not plugins.is_broken(_name):
                    _registry.register(obj, _name)
                    if not plugins.is_broken(_name):
                        return
                    _registry.drop_plugin(_name)
                raise PluginError(f"plugin {_name!r} was skipped as broken")

            try:
                bounded(lambda f=impl.function, a=impl.argnames, r=register: f(
                    **{n: r for n in a}), plugins.timeout)
            except Exception as exc:
                if plugin_name not in plugins.origins:
                    raise
                plugins.fail(plugin_name, _hook_failure(hook_name, exc))
    if cli is not None:
        plugins.register_commands(cli)
    plugins.raise_if_strict()
    return plugins
