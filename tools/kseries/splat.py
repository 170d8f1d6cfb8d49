"""Find kernel splats (Oops, BUG, WARNING, KASAN, lockdep...) in a log."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Each pattern marks the first line of a report the kernel prints when
# something is wrong.  Matched against console lines with the
# "[    1.234567] " timestamp prefix removed.
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("kasan", re.compile(r"BUG: KASAN: ")),
    ("kfence", re.compile(r"BUG: KFENCE: ")),
    ("ubsan", re.compile(r"UBSAN: ")),
    ("kmemleak", re.compile(r"kmemleak: \d+ new suspected memory leaks|^unreferenced object 0x")),
    ("lockdep", re.compile(
        r"WARNING: (possible circular locking dependency|possible recursive locking|"
        r"inconsistent lock state|suspicious RCU usage|bad unlock balance|"
        r"lock held when returning to user space|held lock freed|"
        r"possible irq lock inversion|HARDIRQ-safe -> HARDIRQ-unsafe|"
        r"SOFTIRQ-safe -> SOFTIRQ-unsafe|.*lock.*detected)|"
        r"BUG: (sleeping function called from invalid context|scheduling while atomic|"
        r"spinlock|rwlock|workqueue lockup|MAX_LOCKDEP)")),
    ("hung-task", re.compile(r"INFO: task \S+ blocked for more than \d+ seconds|"
                             r"INFO: rcu_\w+ (self-)?detected (expedited )?stalls?|"
                             r"rcu: INFO: rcu_\w+ (self-)?detected")),
    ("soft-lockup", re.compile(r"watchdog: BUG: soft lockup|"
                               r"watchdog: Watchdog detected hard LOCKUP")),
    ("oops", re.compile(r"^Oops: |^[a-z0-9 ]*: \d+ \[#\d+\]|general protection fault|"
                        r"BUG: unable to handle|BUG: kernel NULL pointer dereference")),
    ("bug", re.compile(r"^kernel BUG at |^BUG: |list_(add|del) corruption")),
    ("warning", re.compile(r"^WARNING: CPU: \d+ PID: \d+ at |"
                           r"^------------\[ cut here \]------------$")),
    ("panic", re.compile(r"^Kernel panic - not syncing")),
]

_TIMESTAMP = re.compile(r"^\s*(?:<\d+>)?\[\s*\d+\.\d+\]\s?(?:\[\s*[CT]\d+\]\s?)?")
_CONTEXT_LINES = 12


@dataclass(frozen=True)
class Splat:
    kind: str
    line_no: int
    lines: tuple[str, ...]

    @property
    def title(self) -> str:
        return self.lines[0]

    def excerpt(self, count: int = 6) -> str:
        return "\n".join(self.lines[:count])


def strip_timestamp(line: str) -> str:
    return _TIMESTAMP.sub("", line.rstrip("\r\n"))


def classify(line: str) -> str | None:
    text = strip_timestamp(line)
    for kind, pattern in _PATTERNS:
        if pattern.search(text):
            return kind
    return None


def find(log: str) -> list[Splat]:
    """All splats in a console log, the first line of each and context.

    One report spans many lines (a "cut here" marker, the WARNING line,
    registers and a call trace); lines up to the end of that report are
    absorbed so a report is counted once.
    """
    lines = log.splitlines()
    splats: list[Splat] = []
    skip_until = -1
    for i, line in enumerate(lines):
        if i <= skip_until:
            continue
        kind = classify(line)
        if kind is None:
            continue
        text = [strip_timestamp(x) for x in lines[i:i + _CONTEXT_LINES]]
        if kind == "warning" and text[0].startswith("------------[ cut here"):
            # The real title is the next line (WARNING/kernel BUG at...).
            follow = next((k for k in map(classify, lines[i + 1:i + 3]) if k), None)
            kind = follow or "warning"
            text = text[1:] or text
        splats.append(Splat(kind, i + 1, tuple(text)))
        skip_until = _report_end(lines, i, kind)
    return splats


def _report_end(lines: list[str], start: int, kind: str) -> int:
    """Index of the last line of the report that starts at ``start``.

    A report ends at its end marker, or just before the next report
    starts (kmemleak, lockdep and "sleeping function" reports have no end
    marker).  "BUG: kernel NULL pointer dereference" and the "Oops:" line
    after it are one report.
    """
    for j in range(start + 1, min(len(lines), start + 400)):
        follow = classify(lines[j])
        if follow and j > start + 1 and not (follow == kind == "oops"):
            return j - 1
        text = strip_timestamp(lines[j])
        if text.startswith(("---[ end trace", "==================================")) \
                and j > start + 1:
            return j
        if text.startswith("---[ end Kernel panic"):
            return j
    return start + 1
