"""The ``gateway`` command line.

Plugins add commands through the ``gateway_register_commands`` hook; servers go under
``gateway serve``. A :class:`~gateway.errors.GatewayError` is shown as one line and exit
code 1, never as a traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from gateway.core.text import printable
from gateway.errors import GatewayError
from gateway.logs import setup_logging
from gateway.plugins import Plugins, get_plugin_manager, strict_from_env


class AppContext:
    """Built lazily: ``gateway --help`` or ``gateway schema`` opens no database."""

    def __init__(self, data_dir: Path | None, config_file: Path | None,
                 plugins: Plugins | None) -> None:
        self.data_dir = data_dir
        self.config_file = config_file
        self._plugins = plugins
        self._gateway: Any = None

    @property
    def plugins(self) -> Plugins:
        if self._plugins is None:
            self._plugins = get_plugin_manager()
        return self._plugins

    @property
    def gateway(self) -> Any:
        if self._gateway is None:
            from gateway.core.config import load_config
            from gateway.core.pipeline import Gateway

            config = load_config(self.data_dir, self.config_file)
            self._gateway = Gateway(config, self.plugins)
        return self._gateway

    def close(self) -> None:
        if self._gateway is not None:
            self._gateway.close()


class GatewayGroup(click.Group):
    """Turns the gateway's own errors into one clear line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GatewayError as exc:
            raise click.ClickException(printable(str(exc))) from None
        except KeyboardInterrupt:
            raise click.Abort() from None


@click.group(cls=GatewayGroup, context_settings={"help_option_names": ["-h", "--help"],
                                                 "max_content_width": 100})
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              envvar="GATEWAY_DATA_DIR", help="Data directory [env GATEWAY_DATA_DIR; "
              "default ./gateway-data]")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              envvar="GATEWAY_CONFIG", help="Configuration file [default DATA_DIR/gateway.toml]")
@click.option("--log-level", default="warning", envvar="GATEWAY_LOG_LEVEL",
              type=click.Choice(["debug", "info", "warning", "error"]), show_default=True)
@click.option("--log-format", default="text", envvar="GATEWAY_LOG_FORMAT",
              type=click.Choice(["text", "json"]), show_default=True)
@click.option("--strict-plugins", is_flag=True, envvar="GATEWAY_STRICT_PLUGINS",
              help="Fail when an installed plugin is broken instead of skipping it "
              "[env GATEWAY_STRICT_PLUGINS=1]")
@click.version_option(package_name="invoice-gateway")
@click.pass_context
def cli(ctx: click.Context, data_dir: Path | None, config_file: Path | None, log_level: str,
        log_format: str, strict_plugins: bool) -> None:
    """Invoice gateway: check invoices, render every format a customer wants, archive them
    and deliver them by every channel the customer chose."""
    setup_logging(log_level, log_format)
    plugins = ctx.obj if isinstance(ctx.obj, Plugins) else None
    app = AppContext(data_dir, config_file, plugins)
    ctx.obj = app
    ctx.call_on_close(app.close)


@cli.group(cls=GatewayGroup)
def serve() -> None:
    """Run one of the gateway's servers (added by plugins: portal, sftp, ...)."""


def _register_builtin_commands() -> None:
    from gateway.cli import customers, database, invoices, operations, plugin_info, workers

    for module in (invoices, operations, customers, plugin_info, database, workers):
        module.register(cli)


_register_builtin_commands()


def main(argv: list[str] | None = None) -> None:
    # Plugins are loaded before click parses, so their commands show up in --help; a
    # broken one is skipped with one line on stderr unless --strict-plugins is given.
    args = sys.argv[1:] if argv is None else argv
    strict = "--strict-plugins" in args or strict_from_env()
    try:
        plugins = get_plugin_manager(
            strict=strict, report=lambda line: click.echo(f"gateway: {line}", err=True),
            cli=cli)
    except GatewayError as exc:
        click.echo(f"Error: {printable(str(exc))}", err=True)
        sys.exit(1)
    if not plugins.hook.gateway_register_commands.get_hookimpls() and not serve.commands:
        serve.help = (serve.help or "") + "\n\nNo server plugins are installed."
    cli.main(args=args, prog_name="gateway", obj=plugins,
             auto_envvar_prefix=None, standalone_mode=True,
             windows_expand_args=os.name == "nt")
