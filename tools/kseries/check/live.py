"""Live progress: which patch, which check, how long, what comes next."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from ..progress import Progress
from .model import Result


class Live:
    """Announces each check and, while it runs, a heartbeat every ``beat`` seconds."""

    def __init__(self, progress: Progress, total: int, beat: float = 30.0) -> None:
        self.progress = progress
        self.total = total
        self.beat = beat

    def where(self, index: int, name: str) -> str:
        return f"[{index}/{self.total} {name[:40]}]"

    @contextmanager
    def running(self, index: int, name: str, check: str, upcoming: str) -> Iterator[None]:
        where = self.where(index, name)
        then = f" (next: {upcoming})" if upcoming else ""
        self.progress.say(f"{where} {check}: running{then}")
        t0 = time.monotonic()
        done = threading.Event()

        def heartbeat() -> None:
            while not done.wait(self.beat):
                self.progress.say(f"{where} {check}: still running, "
                                  f"{time.monotonic() - t0:.0f}s{then}")

        thread = threading.Thread(target=heartbeat, daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    def finished(self, index: int, name: str, result: Result) -> None:
        cached = " (cached)" if result.cached else ""
        self.progress.say(f"{self.where(index, name)} {result.check}: "
                          f"{result.state.value.upper()}{cached} in {result.seconds:.1f}s: "
                          f"{result.description}")
