"""Scratch worktrees: where jobs apply a series, never the developer's checkout.

Every job that needs patches applied (the main job, check-series, the
benchmark) does it in a detached ``git worktree`` of the kernel tree, so
the developer's branches and working files are never touched.  Jobs that
check the same series against the same base share one worktree (the
layout's ``series_tree``) and so one set of build directories: a kernel
build is only incremental when its source tree keeps its path, because
kbuild records the absolute source path in every object's command line.

Commits made here use a fixed committer and the author's date, so the
same patches on the same base give the same commit ids on every machine.
git runs through ``kseries.git``, like everywhere else in the tools.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError
from .git import git, patch_id
from .progress import Progress
from .series import am_failure

IDENTITY = {"GIT_COMMITTER_NAME": "kseries", "GIT_COMMITTER_EMAIL": "kseries@invalid"}


def _common_dir(path: Path) -> Path:
    out = git(path, "rev-parse", "--path-format=absolute", "--git-common-dir").stdout.strip()
    return Path(out).resolve()


@contextlib.contextmanager
def lock(worktree: Path) -> Iterator[None]:
    """Hold the worktree for one job: a second job on it at once is refused.

    Two jobs moving the same worktree's HEAD, or building from it into
    the same directories, would each test the other's tree.
    """
    worktree.parent.mkdir(parents=True, exist_ok=True)
    with worktree.with_name(worktree.name + ".lock").open("w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"another job is using the worktree {worktree}",
                             "wait for it to finish (a main job, check-series or bench run)"
                             ) from None
        yield


def prepare(tree: Path, worktree: Path, base_commit: str) -> None:
    """A detached worktree of ``tree`` at ``base_commit``, clean."""
    tree, worktree = tree.resolve(), worktree.resolve()
    if worktree == tree:
        raise UsageError(f"the worktree {worktree} is the tree itself",
                         "give the worktree a path of its own; the tree's checkout is not touched")
    if worktree.exists() and any(worktree.iterdir()):
        if not (worktree / ".git").exists() or _common_dir(worktree) != _common_dir(tree):
            raise UsageError(f"{worktree} exists and is not a worktree of {tree}",
                             "move it away or give the job another worktree path")
        git(worktree, "am", "--abort", check=False)  # left over from an interrupted run
        git(worktree, "checkout", "-q", "-f", "--detach", base_commit)
        git(worktree, "clean", "-fdq")
        return
    git(tree, "worktree", "prune")
    worktree.parent.mkdir(parents=True, exist_ok=True)
    git(tree, "worktree", "add", "-q", "--detach", str(worktree), base_commit)


def patch_ids_of_files(patches: list[Path]) -> list[str]:
    return [patch_id(p) for p in patches]


def patch_ids_of_range(cwd: Path, base: str, tip: str) -> list[str]:
    """``git patch-id --stable`` of each commit in base..tip, oldest first."""
    log = git(cwd, "log", "--reverse", "--no-merges", "-p", "--format=commit %H",
              f"{base}..{tip}").stdout
    if not log.strip():
        return []
    out = git(cwd, "patch-id", "--stable", stdin=log).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def holds_series(worktree: Path, base_commit: str, patches: list[Path]) -> bool:
    """Whether the worktree is clean and its HEAD is exactly base + these patches."""
    if not (worktree / ".git").exists():
        return False
    if git(worktree, "status", "--porcelain", "--untracked-files=no", check=False).stdout.strip():
        return False
    if git(worktree, "merge-base", "--is-ancestor", base_commit, "HEAD",
           check=False).returncode != 0:
        return False
    if not patches:
        return git(worktree, "rev-parse", "HEAD").stdout.strip() == base_commit
    have = patch_ids_of_range(worktree, base_commit, "HEAD")
    return have == patch_ids_of_files(patches)


@dataclass(frozen=True)
class Applied:
    head: str
    count: int
    reused: bool  # the worktree already held the series: nothing was rewritten


def apply_series(tree: Path, worktree: Path, base_commit: str, patches: list[Path],
                 progress: Progress) -> Applied:
    """Base + patches in ``worktree`` (git am, one patch at a time).

    When the worktree already holds exactly these patches on this base
    (a check-series run of the same series leaves it so), nothing is
    checked out again: rewritten files would make the next build
    recompile what they touch for nothing.
    """
    if holds_series(worktree, base_commit, patches):
        head = git(worktree, "rev-parse", "HEAD").stdout.strip()
        progress.say(f"{worktree} already holds the {len(patches)} patches at {head[:12]}: "
                     "nothing to apply")
        return Applied(head, len(patches), True)
    progress.say(f"worktree {worktree} at {base_commit[:12]}")
    prepare(tree, worktree, base_commit)
    for i, patch in enumerate(patches, 1):
        progress.say(f"apply [{i}/{len(patches)}] {patch.name}")
        proc = git(worktree, "am", "--committer-date-is-author-date", str(patch.resolve()),
                   check=False, env=IDENTITY)
        if proc.returncode != 0:
            git(worktree, "am", "--abort", check=False)
            raise am_failure(patch, proc.stderr)
    head = git(worktree, "rev-parse", "HEAD").stdout.strip()
    return Applied(head, len(patches), False)
