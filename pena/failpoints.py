"""Named fail points for crash tests: `PENA_FAILPOINTS=relay.after_publish` makes the process exit
abruptly (os._exit, like SIGKILL) when it reaches that place; tests may also arm one in-process to raise."""

from __future__ import annotations

import os

_armed: dict[str, type[BaseException]] = {}


class FailPointHit(RuntimeError):
    pass


def arm(name: str, exc: type[BaseException] = FailPointHit) -> None:
    _armed[name] = exc


def hit(name: str) -> None:
    if name in _armed:
        raise _armed.pop(name)(f"fail point {name}")
    if name in os.environ.get("PENA_FAILPOINTS", "").split(","):
        os._exit(137)
