"""Ctrl-C and SIGTERM: stop the running check, its processes, and report.

While ``catching()`` is active, SIGINT and SIGTERM raise ``Interrupted``
in the main thread (a ``BaseException``, so no check's error handling
swallows it) after sending SIGTERM to every process this one started,
directly or not: make and its compilers, kunit.py, and virtme-ng's QEMU,
which runs in a session of its own and so never sees a terminal's
Ctrl-C.  A second signal while the run winds down is ignored; the
reports take a second to write.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """The run was stopped by a signal; ``str()`` is the signal's name."""

    def __init__(self, signame: str) -> None:
        super().__init__(signame)
        self.signame = signame


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process we can see."""
    out: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1:
            out[int(entry.name)] = int(fields[1])
    return out


def descendants(pid: int | None = None) -> list[int]:
    """Every live process below ``pid`` (default: this one), parents first."""
    root = os.getpid() if pid is None else pid
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    found: list[int] = []
    todo = list(children.get(root, []))
    while todo:
        p = todo.pop(0)
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rfind(")") + 2:][:1] not in ("Z", "X")


def _signal(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with suppress(OSError):
            os.kill(pid, sig)


def stop_processes(pids: list[int], grace: float = 5.0) -> list[int]:
    """SIGTERM ``pids``, SIGKILL what is left after ``grace`` s; those killed hard."""
    _signal(pids, signal.SIGTERM)
    end = time.monotonic() + grace
    while time.monotonic() < end and any(_alive(p) for p in pids):
        time.sleep(0.1)
    hard = [p for p in pids if _alive(p)]
    _signal(hard, signal.SIGKILL)
    return hard


@contextmanager
def catching() -> Iterator[None]:
    """Turn SIGINT/SIGTERM into ``Interrupted`` (main thread only; else a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal fired
        if fired:
            return
        fired = True
        name = signal.Signals(signum).name
        # The children first: the exception may take a while to unwind.
        _signal(descendants(), signal.SIGTERM)
        raise Interrupted(name)

    saved = {s: signal.getsignal(s) for s in _SIGNALS}
    for s in _SIGNALS:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, old in saved.items():
            signal.signal(s, old)
