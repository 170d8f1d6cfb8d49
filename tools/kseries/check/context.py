"""What a check gets to work with, and the base class every check extends."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from ..progress import Progress
from . import gitops
from .config import ProjectConfig
from .model import Outcome, PatchInfo


@dataclass(frozen=True)
class RunOptions:
    """Command-line choices that checks may look at."""

    range_diff_base: str | None = None
    build_dir: Path | None = None
    kunit_dir: Path | None = None  # kunit.py's --build_dir (default: WORK/kunit-ARCH)
    smoke_tip: bool = False  # boot the tip with [boot] smoke_command, not tip_command


@dataclass
class CheckContext:
    patch: PatchInfo
    series: list[PatchInfo]  # the patches being checked, in order
    tree: Path  # the check worktree, at ``commit``
    base_commit: str
    prev_commit: str  # the tree before this patch (the base for patch 1)
    commit: str  # the tree with this patch ("" until it applied)
    is_tip: bool
    config: ProjectConfig
    log: Path
    work: Path  # build directories and other scratch space
    progress: Progress
    options: RunOptions = field(default_factory=RunOptions)
    shared: dict[str, object] = field(default_factory=dict)

    def write_log(self, text: str) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("a") as fh:
            fh.write(text if text.endswith("\n") or not text else text + "\n")

    def changed_files(self) -> list[tuple[str, str]]:
        """(status, path) of the files this patch changes."""
        return gitops.changed_files(self.tree, self.prev_commit, self.commit)

    @property
    def build_dir(self) -> Path:
        return self.options.build_dir or self.work / "build"

    @property
    def kunit_dir(self) -> Path:
        return self.options.kunit_dir or self.work / f"kunit-{self.config.kunit.arch}"


class Check(abc.ABC):
    """A check plug-in: one module under kseries.check.checks, ``CHECK = MyCheck()``.

    ``needs_tree`` says whether the result depends on the tree the patch
    lands in (then the resume cache keys it by every patch before it
    too) or only on the patch itself.  Bump ``version`` when a change
    of the check should invalidate cached results.  An ``opt_in`` check
    runs only when the config's [checks] or ``--only`` name it.  A module
    with several checks of one class (one per setting) lists them in
    ``CHECKS``; the instances then set ``name`` and ``description``.
    """

    name: str
    description: str
    needs_tree: ClassVar[bool] = True
    cacheable: ClassVar[bool] = True
    version: ClassVar[str] = "1"
    opt_in: ClassVar[bool] = False

    @abc.abstractmethod
    def run(self, ctx: CheckContext) -> Outcome:
        """Check ``ctx.patch``; write details to ``ctx.log``."""
