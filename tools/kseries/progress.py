"""Progress lines for long-running work: one line per stage, with time.

``Progress`` prints ``[kseries  12.3s] message`` lines; ``Heartbeat``
says ``<what>: still running, <N>s`` at an interval while a long step
runs, from a thread of its own, so a quiet build or boot still shows
signs of life.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import TextIO

Clock = Callable[[], float]


class Progress:
    """Prints ``[kseries 12.3s] stage: message`` lines to a stream.

    ``say`` is thread-safe: a heartbeat's line and the main thread's never
    share a line.
    """

    def __init__(self, stream: TextIO | None = None, quiet: bool = False,
                 clock: Clock = time.monotonic) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self.clock = clock
        self.start = clock()
        self._lock = threading.Lock()

    def elapsed(self) -> float:
        return self.clock() - self.start

    def say(self, message: str) -> None:
        if self.quiet:
            return
        with self._lock:
            print(f"[kseries {self.elapsed():7.1f}s] {message}", file=self.stream, flush=True)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Announce a stage and, on exit, how long it took."""
        t0 = self.clock()
        self.say(f"{name}: started")
        ok = False
        try:
            yield
            ok = True
        finally:
            took = self.clock() - t0
            self.say(f"{name}: {'done' if ok else 'FAILED'} in {took:.1f}s")

    def heartbeat(self, what: str, interval: float = 30.0, suffix: str = "") -> Heartbeat:
        """A ``Heartbeat`` on this stream, timed by this progress' clock."""
        return Heartbeat(self.say, what, interval, suffix, self.clock)


class Heartbeat:
    """``with Heartbeat(say, "kunit"):`` says ``kunit: still running, 30s`` every 30 s.

    The first line comes one ``interval`` after entering, none after
    leaving (``stop`` waits for the thread). ``suffix`` is appended to each
    line. ``beat`` says one line now; the thread only calls it.
    """

    def __init__(self, say: Callable[[str], None], what: str, interval: float = 30.0,
                 suffix: str = "", clock: Clock = time.monotonic) -> None:
        if interval <= 0:
            raise ValueError(f"a heartbeat's interval must be positive, not {interval}")
        self.say = say
        self.what = what
        self.interval = interval
        self.suffix = suffix
        self.clock = clock
        self.t0 = clock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def line(self) -> str:
        return f"{self.what}: still running, {self.clock() - self.t0:.0f}s{self.suffix}"

    def beat(self) -> None:
        self.say(self.line())

    def start(self) -> Heartbeat:
        with self._lock:
            if self._thread is not None:
                raise RuntimeError(f"the heartbeat of {self.what} was already started")
            self.t0 = self.clock()
            self._thread = threading.Thread(target=self._run, daemon=True,
                                            name=f"heartbeat: {self.what}")
            self._thread.start()
        return self

    def stop(self) -> None:
        """No more lines after this returns; calling it twice is harmless."""
        self._stop.set()
        with self._lock:
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.beat()

    def __enter__(self) -> Heartbeat:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
