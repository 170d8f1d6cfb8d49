"""Errors that end a command with a one-line message and a hint."""

from __future__ import annotations

import sys


class KseriesError(Exception):
    """A failure the user can act on.

    ``str(err)`` is the problem; ``hint`` says how to fix it.  The CLI
    prints both on one or two lines and never a traceback.
    """

    exit_code = 1

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

    exit_code = 2


class InfraError(KseriesError):
    """The machine, not the code under test, failed (QEMU, network...)."""

    exit_code = 2


def report(prog: str, err: KseriesError) -> None:
    """Print an error the way every kseries command does: one line, one hint."""
    print(f"{prog}: error: {err.message}", file=sys.stderr)
    if err.hint:
        print(f"{prog}: hint: {err.hint}", file=sys.stderr)
