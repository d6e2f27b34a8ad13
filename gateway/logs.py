"""Structured logging: one JSON object per line (``--log-format json``) or plain text."""

from __future__ import annotations

import json
import logging
import sys
import time

from gateway.core.text import printable

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Every ``extra=`` field becomes a key, so events can be filtered by invoice or channel."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(
            f"{k}={v}" for k, v in vars(record).items()
            if k not in _STANDARD and not k.startswith("_")
        )
        line = f"{record.levelname.lower()}: {record.getMessage()}"
        # The text log goes to an operator's terminal: input (an invoice number, a remote
        # server's reply) in it must not act as terminal control. A traceback keeps its
        # line breaks.
        text = printable(f"{line} {extras}" if extras else line)
        if record.exc_info:
            text += "\n" + printable(self.formatException(record.exc_info), keep_newlines=True)
        return text


def setup_logging(level: str = "warning", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    # Records still propagate to the root logger: an embedding application (or
    # pytest's caplog) sees them too. The root has no handler of ours, so nothing is
    # printed twice.
    for name in ("gateway", "plugins"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
