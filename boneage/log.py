"""Logging for the steps: timestamped lines, and progress that keeps logs readable.

Rules send a step's stdout and stderr to ``logs/<step>/...``; every line a
step logs carries its time, level and module. Long loops report progress
through :class:`Progress`, at most once every :data:`EVERY` seconds.
"""

from __future__ import annotations

import logging
import sys
import time

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: Seconds between two progress lines of one loop.
EVERY = 30.0


def setup(level: int = logging.INFO) -> None:
    """Timestamped log lines on stdout (where the steps' other output goes, in order)."""
    logging.basicConfig(stream=sys.stdout, level=level, format=FORMAT, datefmt="%Y-%m-%d %H:%M:%S")


class Progress:
    """Log ``done/total`` with a rate, at most every ``every`` seconds (and at the end)."""

    def __init__(self, log: logging.Logger, what: str, total: int, every: float = EVERY) -> None:
        self.log, self.what, self.total, self.every = log, what, total, every
        self.start = self.last = time.monotonic()

    def update(self, done: int, unit: str = "", note: str = "") -> None:
        now = time.monotonic()
        if now - self.last < self.every and done < self.total:
            return
        self.last = now
        rate = done / max(now - self.start, 1e-9)
        extra = f", {note}" if note else ""
        self.log.info(f"{self.what}: {done}/{self.total}{unit} ({rate:.1f}{unit}/s){extra}")
