"""Live progress: which patch, which check, how long, what comes next."""

from __future__ import annotations

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
        with self.progress.heartbeat(f"{where} {check}", self.beat, then):
            yield

    def finished(self, index: int, name: str, result: Result) -> None:
        cached = " (cached)" if result.cached else ""
        self.progress.say(f"{self.where(index, name)} {result.check}: "
                          f"{result.state.value.upper()}{cached} in {result.seconds:.1f}s: "
                          f"{result.description}")
