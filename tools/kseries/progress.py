"""Progress lines for long-running work: one line per stage, with time."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


class Progress:
    """Prints ``[kseries 12.3s] stage: message`` lines to a stream."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self.start = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def say(self, message: str) -> None:
        if self.quiet:
            return
        print(f"[kseries {self.elapsed():7.1f}s] {message}", file=self.stream, flush=True)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Announce a stage and, on exit, how long it took."""
        t0 = time.monotonic()
        self.say(f"{name}: started")
        ok = False
        try:
            yield
            ok = True
        finally:
            took = time.monotonic() - t0
            self.say(f"{name}: {'done' if ok else 'FAILED'} in {took:.1f}s")
