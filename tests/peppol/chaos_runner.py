"""``gateway`` with a fault: SIGKILL itself right after the AS4 POST got its answer,
before the receipt is verified or recorded (``PEPPOL_KILL_AFTER_POST=1``)."""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from plugins.peppol import channel

_post = channel.post


def post_then_die(*args: Any, **kwargs: Any) -> bytes:
    answer = _post(*args, **kwargs)
    if os.environ.get("PEPPOL_KILL_AFTER_POST") == "1":
        os.kill(os.getpid(), signal.SIGKILL)
    return answer


channel.post = post_then_die

if __name__ == "__main__":
    from gateway.cli import main

    main(sys.argv[1:])
