"""The data every part of check-series shares: states, patches, results."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import EXIT_INTERRUPTED

INTERRUPTED_EXIT = EXIT_INTERRUPTED  # the exit status of a run stopped by SIGINT or SIGTERM
# How a skip says the check could not run at all (a tool or a setting is missing),
# as opposed to a skip where the check had nothing to look at in the patch.
CANNOT_RUN = "cannot run: "


class State(enum.StrEnum):
    """The result of one check on one patch (patchwork's vocabulary, plus skip)."""

    SUCCESS = "success"
    WARNING = "warning"
    FAIL = "fail"
    SKIP = "skip"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {State.SKIP: 0, State.SUCCESS: 1, State.WARNING: 2, State.FAIL: 3}


@dataclass(frozen=True)
class Subtest:
    """One result inside a check (a KUnit case, say)."""

    name: str
    state: State
    detail: str = ""


@dataclass(frozen=True)
class Outcome:
    """What a check returns: a state, a one-line description, sub-results.

    ``cacheable`` is False for an outcome the resume cache must not keep
    because the same patch can give another one next time (a tool that
    is missing now, a build that failed for a reason outside the patch).
    """

    state: State
    description: str
    subtests: tuple[Subtest, ...] = ()
    cacheable: bool = True

    @classmethod
    def skip(cls, reason: str) -> Outcome:
        """Nothing to check in this patch (no file the check looks at, say)."""
        return cls(State.SKIP, reason)

    @classmethod
    def not_run(cls, reason: str) -> Outcome:
        """A skip because something else failed first (the build, git): not cached."""
        return cls(State.SKIP, reason, cacheable=False)

    @classmethod
    def cannot_run(cls, reason: str) -> Outcome:
        """A skip because the check cannot run here: submit-series counts it as not run."""
        return cls(State.SKIP, CANNOT_RUN + reason, cacheable=False)


@dataclass
class Result:
    """An outcome as recorded for a patch: with timing, log and cache flag."""

    check: str
    state: State
    description: str
    seconds: float = 0.0
    log: str = ""  # relative to the output directory
    cached: bool = False
    subtests: list[Subtest] = field(default_factory=list)


@dataclass(frozen=True)
class PatchInfo:
    """One patch of the series, as read from the input."""

    index: int  # 1-based position in the series
    name: str  # file name (or a name made up from the subject)
    path: Path  # the patch file (format-patch / one mbox message)
    subject: str  # without the [PATCH n/m] prefix
    author: str  # the From header, decoded
    patch_id: str  # git patch-id --stable ("" for a patch without a diff)
    message_key: str  # sha256 of the commit message (patch-id ignores it)
    message_id: str = ""

    @property
    def key(self) -> str:
        """What identifies the patch for the resume cache."""
        return f"{self.patch_id}:{self.message_key}"

    @property
    def label(self) -> str:
        return f"{self.index:02d}"


@dataclass
class PatchReport:
    patch: PatchInfo
    commit: str = ""  # the commit git am made, "" if it did not apply
    results: dict[str, Result] = field(default_factory=dict)

    @property
    def state(self) -> State:
        states = [r.state for r in self.results.values()]
        return max(states, key=lambda s: s.rank) if states else State.SKIP


@dataclass
class SeriesReport:
    """Everything a run found; the reports are views of this."""

    tree: str
    base: str
    base_commit: str
    source: str
    checks: list[tuple[str, str, str]]  # (name, scope, description) in column order
    patches: list[PatchReport] = field(default_factory=list)
    started: str = ""
    seconds: float = 0.0
    stopped_early: str = ""
    interrupted: str = ""  # the signal (SIGINT, SIGTERM) that stopped the run, if one did

    def totals(self) -> dict[str, int]:
        counts = {s.value: 0 for s in State}
        for patch in self.patches:
            for result in patch.results.values():
                counts[result.state.value] += 1
        return counts

    @property
    def failed(self) -> bool:
        return self.totals()[State.FAIL.value] > 0

    @property
    def ok(self) -> bool:
        """Every check that ran passed, and the run was not cut short by a signal."""
        return not self.failed and not self.interrupted

    @property
    def exit_status(self) -> int:
        if self.interrupted:
            return INTERRUPTED_EXIT
        return 1 if self.failed else 0

    def check_seconds(self) -> dict[str, float]:
        took: dict[str, float] = {name: 0.0 for name, _, _ in self.checks}
        for patch in self.patches:
            for name, result in patch.results.items():
                took[name] = took.get(name, 0.0) + result.seconds
        return took
