"""Secrets from the environment, with one rule for every plugin.

Secrets never sit in ``gateway.toml`` or on a command line: a setting names the
environment variable (``password_env = "SMTP_PASSWORD"``) and the channel reads it when
it delivers. When the variable is not set (or empty) the delivery fails *retryably*:
the operator sets it and restarts the dispatcher, and the outbox drains by itself
within ``max_age_hours``; nothing goes to the fallback for a fault on our side.
"""

from __future__ import annotations

import os

from gateway.errors import DeliveryError


def secret_from_env(variable: str, *, purpose: str, setting: str = "password_env") -> str:
    """The value of the environment variable ``variable``.

    :param purpose: what the secret is for, to start the error message
        (``"SMTP password for user 'billing'"``).
    :param setting: the setting that named the variable, so the message points at it.
    :raises DeliveryError: (retryable) when it is not set or empty.
    """
    value = os.environ.get(variable)
    if not value:
        raise DeliveryError(f"{purpose}: environment variable {variable} ({setting}) is "
                            "not set", retryable=True)
    return value
