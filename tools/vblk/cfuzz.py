"""Build and run vblk-fuzz, the C fuzzer of /dev/vhost-blk (tools/bench/vblk-fuzz.c).

The fuzzer is built from the checkout with gcc.  In the TCG guest gcc
takes minutes, so a binary built on the host is used when it is there
and was built from exactly these sources: ``build()`` writes the sha256 of
the sources beside the binary, ``find_or_build()`` takes a binary only
when that digest matches the checkout and otherwise compiles a fresh one
into a scratch directory.  On the host, ``python -m vblk.cfuzz`` builds
build/cfuzz/vblk-fuzz for the next boot.

``run()`` parses what the tool prints: one JSON line per failure, then a
summary line (requests, seconds, rate, statuses, mismatches, failures,
seed).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path("tools") / "bench"
SOURCES = (BENCH / "vblk-fuzz.c", BENCH / "vring.c")
HEADERS = (BENCH / "vring.h",)
CFLAGS = ("-O2", "-Wall", "-Wextra", "-Werror", "-pthread")
NAME = "vblk-fuzz"


class BuildError(RuntimeError):
    """gcc is missing or failed (its first lines of output say why)."""


def digest(root: Path) -> str:
    """sha256 over the fuzzer's sources and headers, in a fixed order."""
    h = hashlib.sha256()
    for rel in (*SOURCES, *HEADERS):
        h.update(str(rel).encode() + b"\0")
        h.update((root / rel).read_bytes())
    return h.hexdigest()


def build(root: Path, dest: Path) -> Path:
    """gcc -O2 -Wall -Wextra -Werror the fuzzer into dest/, with its digest beside it."""
    gcc = shutil.which("gcc")
    if gcc is None:
        raise BuildError("gcc is not installed (apt-get install gcc)")
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / NAME
    cmd = [gcc, *CFLAGS, "-o", str(out), *(str(root / s) for s in SOURCES)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or proc.stderr.strip():
        first = (proc.stderr.strip().splitlines() or ["?"])[:5]
        raise BuildError(f"building {NAME} failed: {' | '.join(first)}")
    (dest / f"{NAME}.sha256").write_text(digest(root) + "\n")
    return out


def prebuilt(root: Path, dest: Path) -> Path | None:
    """dest/vblk-fuzz if it was built from the sources as they are now."""
    out, stamp = dest / NAME, dest / f"{NAME}.sha256"
    try:
        if out.is_file() and stamp.read_text().strip() == digest(root):
            return out
    except OSError:
        return None
    return None


def find_or_build(root: Path, prebuilt_dir: Path, scratch: Path,
                  say: Callable[[str], None] | None = None) -> Path:
    """The host-built binary if it matches the checkout, else a fresh build in
    scratch (``say`` is told first: under TCG it takes minutes)."""
    found = prebuilt(root, prebuilt_dir)
    if found is not None:
        return found
    if say is not None:
        say("cfuzz: no host build of vblk-fuzz matching the sources; compiling it here")
    return build(root, scratch)


@dataclass
class Result:
    """One run: its summary line, its failure lines and the process's output."""

    returncode: int
    summary: dict[str, Any]
    failures: list[dict[str, Any]] = field(default_factory=list)
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return (self.returncode == 0 and bool(self.summary.get("ok"))
                and not self.failures and int(self.summary.get("failures", 1)) == 0)

    def describe(self) -> str:
        """The summary and the first failures, for an assertion message."""
        lines = [json.dumps(self.summary)]
        lines += [json.dumps(f)[:3000] for f in self.failures[:5]]
        if not self.summary:
            lines.append(f"stdout: {self.stdout[-2000:]}")
        lines.append(f"stderr: {self.stderr[-2000:]}")
        return "\n".join(lines)


def parse(stdout: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(summary, failures) from the tool's JSON lines; other lines are ignored."""
    summary: dict[str, Any] = {}
    failures: list[dict[str, Any]] = []
    for line in stdout.splitlines():
        if not line.startswith("{"):
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if not isinstance(obj, dict) or obj.get("tool") != NAME:
            continue
        if "failure" in obj:
            failures.append(obj)
        elif "mode" in obj or "error" in obj:
            summary = obj
    return summary, failures


def run(binary: Path, args: list[str], timeout: float) -> Result:
    """Run the fuzzer; a timeout is a failed result, not an exception."""
    try:
        proc = subprocess.run([str(binary), *args], capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else ""
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
        summary, failures = parse(out)
        return Result(-1, summary or {"error": f"no summary after {timeout:.0f} s"}, failures,
                      out, err)
    summary, failures = parse(proc.stdout)
    return Result(proc.returncode, summary, failures, proc.stdout, proc.stderr)


def main() -> int:
    """Build build/cfuzz/vblk-fuzz in this checkout and print its path."""
    root = Path(__file__).resolve().parents[2]
    try:
        print(build(root, root / "build" / "cfuzz"))
    except BuildError as exc:
        print(f"vblk.cfuzz: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
