"""Errors that end a command with a one-line message and a hint.

The error's class is its exit status, the one mapping every front door
(``kseries``, ``kseries check``/``check-series``, ``kseries
submit``/``submit-series``) applies through ``kseries.frontdoor``:
a ``KseriesError`` is something that failed (a build, a test, a patch
that does not apply: 1); a ``UsageError`` bad input or a missing
prerequisite, and an ``InfraError`` the machine (2).
"""

from __future__ import annotations

import sys

EXIT_FAILED = 1  # a check failed: a build error, a failing test, a splat, a guest command
EXIT_USAGE = 2  # bad input, a missing prerequisite, the machine (the message names the fix)
EXIT_INTERRUPTED = 130  # SIGINT or SIGTERM
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a killed writer


class KseriesError(Exception):
    """A failure the user can act on.

    ``str(err)`` is the problem; ``hint`` says how to fix it.  The CLI
    prints both on one or two lines and never a traceback.
    """

    exit_code = EXIT_FAILED

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class UsageError(KseriesError):
    """Bad input or a missing prerequisite (exit status 2)."""

    exit_code = EXIT_USAGE


class ReportError(UsageError):
    """A results file its reader will not read (check-series' report.json,
    the benchmark's results.json); the message names the file."""


class InfraError(KseriesError):
    """The machine, not the code under test, failed (QEMU, network...): exit status 2."""

    exit_code = EXIT_USAGE


def report(prog: str, err: KseriesError) -> None:
    """Print an error the way every kseries command does: one line, one hint."""
    print(f"{prog}: error: {err.message}", file=sys.stderr)
    if err.hint:
        print(f"{prog}: hint: {err.hint}", file=sys.stderr)
