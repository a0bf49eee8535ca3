"""What the long-running processes share (`flask events relay`, `flask syncs worker`).

A stop flag their SIGTERM and SIGINT handlers set, so the work in flight
finishes before they exit, and exponential backoff for a database or broker
that cannot be reached yet.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

_TICK_SECONDS = 0.1


class StopFlag:
    """Set from a signal handler; waits end early once it is set."""

    def __init__(self) -> None:
        self.requested = False

    def request(self) -> None:
        """Ask the loop to stop after the work in flight."""
        self.requested = True

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, less if a stop is requested; True if one was."""
        deadline = time.monotonic() + seconds
        while not self.requested and (remaining := deadline - time.monotonic()) > 0:
            time.sleep(min(_TICK_SECONDS, remaining))
        return self.requested


@dataclass
class Backoff:
    """Exponential delays between retries: ``initial``, doubling, capped at ``maximum``."""

    initial: float = 0.5
    maximum: float = 30.0
    _next: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self.reset()

    def next(self) -> float:
        """The delay before the next retry."""
        delay, self._next = self._next, min(self._next * 2, self.maximum)
        return delay

    def reset(self) -> None:
        """Start again from ``initial`` (after something worked)."""
        self._next = self.initial


def first_line(error: BaseException) -> str:
    """An error's first line: SQL errors continue with the statement (never its parameters)."""
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
