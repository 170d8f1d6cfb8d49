"""Small helpers shared by the unit tests (not collected by pytest)."""

from __future__ import annotations

import io
import subprocess
import time
from pathlib import Path

from kseries.progress import Progress


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd`` and return its stdout without the final newline."""
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return proc.stdout.rstrip("\n")


def init_repo(path: Path) -> Path:
    """An empty git repository with a local identity."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "master")
    git(path, "config", "user.name", "Test Author")
    git(path, "config", "user.email", "author@example.org")
    return path


def quiet_progress() -> tuple[Progress, io.StringIO]:
    """A Progress writing into a buffer the test can read."""
    stream = io.StringIO()
    return Progress(stream=stream), stream


def next_second() -> None:
    """Wait until the wall-clock second changes, so that anything that wrongly
    depends on the time of day (git dates, Message-Ids) comes out different."""
    now = int(time.time())
    while int(time.time()) == now:
        time.sleep(0.02)
