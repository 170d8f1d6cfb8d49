"""Leak checks around an in-guest test session: pinned pages and kmemleak.

Pinned pages: vhost-blk pins the guest's data buffers with FOLL_PIN
(bio_iov_iter_get_pages) and unpins them when each bio completes.  The
kernel counts both in /proc/vmstat (nr_foll_pin_acquired and
nr_foll_pin_released, folded from the per-CPU counters by writing
/proc/sys/vm/stat_refresh); once every device of the session is closed,
their difference must be what it was before the first test.

kmemleak (CONFIG_DEBUG_KMEMLEAK, no automatic scan in the debug config):
a scan before the session marks what booting leaked as known ("clear"),
a scan after it reports whatever the session leaked.  Objects younger
than five seconds are never reported, hence the pause before the last
scan.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from vblk_env import kmsg

DEBUGFS = Path("/sys/kernel/debug")
KMEMLEAK = DEBUGFS / "kmemleak"
VMSTAT = Path("/proc/vmstat")
STAT_REFRESH = Path("/proc/sys/vm/stat_refresh")
KMEMLEAK_MIN_AGE = 5.0
MAX_REPORT_LINES = 60


@dataclass
class Before:
    pins: int | None
    kmemleak: bool
    notes: list[str] = field(default_factory=list)


@dataclass
class Report:
    lines: list[str]
    problems: list[str]


def pins_held() -> int | None:
    """Pages pinned with FOLL_PIN and not yet unpinned, system-wide."""
    # Without the refresh the counters are at most a per-CPU batch stale.
    with contextlib.suppress(OSError):
        STAT_REFRESH.write_text("1\n")
    values: dict[str, int] = {}
    for line in VMSTAT.read_text().splitlines():
        name, _, value = line.partition(" ")
        if name in ("nr_foll_pin_acquired", "nr_foll_pin_released"):
            values[name] = int(value)
    if len(values) != 2:
        return None
    return values["nr_foll_pin_acquired"] - values["nr_foll_pin_released"]


def _kmemleak(command: str) -> None:
    KMEMLEAK.write_text(command + "\n")


def _kmemleak_ready() -> tuple[bool, str]:
    if not os.path.ismount(DEBUGFS):
        subprocess.run(["mount", "-t", "debugfs", "debugfs", str(DEBUGFS)],
                       check=False, capture_output=True)
    if not KMEMLEAK.exists():
        return False, f"kmemleak: SKIP ({KMEMLEAK} is missing: no CONFIG_DEBUG_KMEMLEAK)"
    try:
        t0 = time.monotonic()
        _kmemleak("scan")
        _kmemleak("clear")
        kmsg(f"kmemleak: scan before the session took {time.monotonic() - t0:.0f} s")
    except OSError as exc:
        return False, f"kmemleak: SKIP (cannot scan: {exc.strerror}; disabled after an error?)"
    return True, ""


def start() -> Before:
    ready, why = _kmemleak_ready()
    before = Before(pins_held(), ready)
    if why:
        before.notes.append(why)
    if before.pins is None:
        before.notes.append("pinned pages: SKIP (no nr_foll_pin_* in /proc/vmstat)")
    return before


def finish(before: Before) -> Report:
    lines = list(before.notes)
    problems: list[str] = []
    if before.pins is not None:
        after = pins_held()
        assert after is not None
        if after == before.pins:
            lines.append(f"pinned pages: every page pinned for I/O was unpinned "
                         f"({after} pinned before and after the session)")
        else:
            problems.append(f"pinned pages: {after - before.pins:+d} pages still pinned after "
                            f"every device was closed ({before.pins} before, {after} after)")
    if before.kmemleak:
        time.sleep(KMEMLEAK_MIN_AGE + 1)
        t0 = time.monotonic()
        _kmemleak("scan")
        found = KMEMLEAK.read_text(errors="replace")
        took = time.monotonic() - t0
        kmsg(f"kmemleak: scan after the session took {took:.0f} s")
        if found.strip():
            count = found.count("unreferenced object")
            head = "\n".join(found.splitlines()[:MAX_REPORT_LINES])
            problems.append(f"kmemleak: {count} unreferenced objects after the session:\n{head}")
        else:
            lines.append(f"kmemleak: no leak found (scan after the session, {took:.0f} s)")
    return Report(lines, problems)
