"""Run ninja in QEMU's build directory with a progress line now and then.

ninja prints ``[N/M] Compiling C object ...`` for each step when its
output is not a terminal; every ``every`` seconds the latest one becomes a
progress line, like the kernel build's running count.  The whole output
goes to a log; a failure is one line with the first errors.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..build import make_env
from ..errors import KseriesError
from ..progress import Progress

_STEP = re.compile(r"^\[(\d+)/(\d+)\] (.*)$")
_ERROR = re.compile(r"(^FAILED: |error: |undefined reference|^ninja: error:)")
EVERY = 30.0


@dataclass(frozen=True)
class Steps:
    """What one ninja run did."""

    total: int = 0  # every [N/M] line, over every ninja restart (meson regenerating)
    compiled: int = 0
    linked: int = 0

    def __str__(self) -> str:
        if not self.total:
            return "nothing to do"
        if not self.compiled and not self.linked:
            plural = "s" if self.total != 1 else ""
            return f"nothing compiled or linked ({self.total} generator step{plural})"
        return f"{self.total} steps: {self.compiled} compiled, {self.linked} linked"


@dataclass(frozen=True)
class Step:
    done: int
    total: int
    what: str


def parse_step(line: str) -> Step | None:
    m = _STEP.match(line.rstrip("\n"))
    return Step(int(m.group(1)), int(m.group(2)), m.group(3)) if m else None


def first_errors(lines: list[str], limit: int = 4) -> list[str]:
    return [line.strip()[:200] for line in lines if _ERROR.search(line)][:limit]


class Counter:
    """Counts ninja's steps and says the latest one every ``every`` seconds."""

    def __init__(self, progress: Progress, every: float = EVERY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.progress = progress
        self.every = every
        self.clock = clock
        self.last = clock()
        self.steps = Steps()

    def feed(self, line: str) -> None:
        step = parse_step(line)
        if step is None:
            return
        self.steps = Steps(self.steps.total + 1,
                           self.steps.compiled + step.what.startswith("Compiling "),
                           self.steps.linked + step.what.startswith("Linking "))
        now = self.clock()
        if now - self.last >= self.every:
            self.last = now
            self.progress.say(f"qemu: build: [{step.done}/{step.total}] {step.what[:70]}")


def run(build: Path, targets: list[str], progress: Progress, log: Path,
        jobs: int | None = None, every: float = EVERY) -> Steps:
    """Build ``targets``; return what ninja did."""
    cmd = ["ninja", "-C", str(build), *([f"-j{jobs}"] if jobs else []), *targets]
    counter = Counter(progress, every)
    tail: list[str] = []
    with log.open("a") as fh:
        fh.write(f"$ {' '.join(cmd)}\n")
        fh.flush()
        proc = subprocess.Popen(cmd, env=make_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors="replace")
        assert proc.stdout is not None
        for line in proc.stdout:
            fh.write(line)
            tail.append(line.rstrip("\n"))
            del tail[:-400]
            counter.feed(line)
        rc = proc.wait()
    if rc != 0:
        errors = first_errors(tail) or tail[-3:]
        raise KseriesError(f"building QEMU failed (ninja exit {rc}): " + " | ".join(errors),
                           f"full log: {log}")
    return counter.steps
