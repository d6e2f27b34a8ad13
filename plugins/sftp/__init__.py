"""Built-in plugin 'sftp': push to customers' SFTP servers, and SFTP mailboxes they pull from.

Channels:

``sftp-push``
    uploads each document to the customer's ERP (host key always verified, temporary
    name then rename, connections reused across a dispatcher batch).
``sftp-mailbox``
    publishes documents into the customer's mailbox, served by ``gateway serve sftp``.

Commands: ``gateway serve sftp`` and ``gateway customer sftp-key add|list|remove``.
paramiko is imported only when a connection is made or the server starts.
"""

from __future__ import annotations

from typing import Any

from gateway import hookimpl
from plugins.sftp.mailbox import DATABASE, MailboxSettings, SftpMailboxChannel
from plugins.sftp.push import PushSettings, SftpPushChannel

__all__ = ["MailboxSettings", "PushSettings", "SftpMailboxChannel", "SftpPushChannel"]


@hookimpl
def gateway_register_channels(register: Any) -> None:
    register(SftpPushChannel())
    register(SftpMailboxChannel())


@hookimpl
def gateway_register_databases(register: Any) -> None:
    register(DATABASE)  # the mailbox index


@hookimpl
def gateway_register_commands(cli: Any) -> None:
    from plugins.sftp import cli as commands

    commands.register(cli)
