"""``gateway`` with a fault: SIGKILL itself at one point of a Peppol delivery, chosen by
``PEPPOL_KILL_AT``: ``before-post`` (message built and stored, nothing sent),
``after-post`` (the receiver answered; nothing verified or recorded) or
``after-verify`` (receipt verified; not yet stored or recorded)."""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from plugins.peppol import channel

_post, _verify = channel.post, channel.verify_receipt
POINT = os.environ.get("PEPPOL_KILL_AT", "")


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def post(*args: Any, **kwargs: Any) -> bytes:
    if POINT == "before-post":
        _die()
    answer = _post(*args, **kwargs)
    if POINT == "after-post":
        _die()
    return answer


def verify_receipt(*args: Any, **kwargs: Any) -> Any:
    result = _verify(*args, **kwargs)
    if POINT == "after-verify":
        _die()
    return result


channel.post, channel.verify_receipt = post, verify_receipt

if __name__ == "__main__":
    from gateway.cli import main

    main(sys.argv[1:])
