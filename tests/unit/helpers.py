"""Small helpers shared by the unit tests (not collected by pytest)."""

from __future__ import annotations

import io
import os
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


def fake_path(tmp: Path, tools: dict[str, str], hide: tuple[str, ...] = ()) -> str:
    """A PATH with ``tools`` (name: shell script body) first and without ``hide``.

    The tools land in ``tmp/bin``; the rest of the current PATH is
    mirrored into ``tmp/visible`` as symlinks, leaving out the hidden
    names, since /bin and /usr/bin are one directory on Debian.
    """
    bindir = tmp / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    for name, body in tools.items():
        (bindir / name).write_text("#!/bin/sh\n" + body)
        (bindir / name).chmod(0o755)
    if not hide:
        return os.pathsep.join([str(bindir), os.environ.get("PATH", "")])
    visible = tmp / "visible"
    visible.mkdir(exist_ok=True)
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        for entry in sorted(Path(directory).glob("*")) if Path(directory).is_dir() else []:
            link = visible / entry.name
            if entry.name in hide or link.exists() or link.is_symlink():
                continue
            if os.access(entry, os.X_OK) and not entry.is_dir():
                link.symlink_to(entry)
    return os.pathsep.join([str(bindir), str(visible)])
