"""patches/qemu on a branch of the QEMU tree (git am), skipped when already there.

The branch is the base tag plus the series' patches.  When the branch is
checked out, clean, and holds exactly those patches (compared by
``git patch-id``), nothing is checked out again: rewritten files would
make the next build recompile what they touch for nothing.  A missing
patches/qemu or an empty ``series`` file is a series of 0 patches.

Work is never thrown away: uncommitted changes, or commits on the branch
that are not the series, stop the command with a hint instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import KseriesError, UsageError
from ..git import git
from ..progress import Progress
from ..series import am_failure, list_patches
from ..worktree import IDENTITY, holds_series, patch_ids_of_files, patch_ids_of_range


@dataclass(frozen=True)
class QemuApplied:
    branch: str
    head: str
    count: int
    reused: bool  # nothing was checked out or applied


def series_patches(patches_dir: Path) -> list[Path]:
    """The series in order; none when the directory does not exist yet."""
    if not patches_dir.is_dir():
        return []
    return list_patches(patches_dir)


def _current_branch(tree: Path) -> str:
    return git(tree, "symbolic-ref", "-q", "--short", "HEAD", check=False).stdout.strip()


def _branch_tip(tree: Path, branch: str) -> str | None:
    proc = git(tree, "rev-parse", "-q", "--verify", f"refs/heads/{branch}^{{commit}}",
               check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def apply(tree: Path, base: str, branch: str, patches_dir: Path, progress: Progress,
          force: bool = False) -> QemuApplied:
    """Make ``branch`` = ``base`` + the series and check it out."""
    patches = series_patches(patches_dir)
    n = len(patches)
    if not patches_dir.is_dir():
        progress.say(f"qemu: {patches_dir} does not exist: 0 patches, pristine QEMU")
    base_commit = git(tree, "rev-parse", f"{base}^{{commit}}").stdout.strip()
    if _current_branch(tree) == branch and holds_series(tree, base_commit, patches):
        head = git(tree, "rev-parse", "HEAD").stdout.strip()
        progress.say(f"qemu: {branch} already holds the {n} patches of {patches_dir}: "
                     "nothing to apply")
        return QemuApplied(branch, head, n, True)
    if (Path(git(tree, "rev-parse", "--absolute-git-dir").stdout.strip()) / "rebase-apply"
            ).exists():
        raise UsageError(f"a `git am` is in progress in {tree}",
                         "finish it or run `git am --abort` there")
    if git(tree, "status", "--porcelain", "--untracked-files=no").stdout.strip():
        raise UsageError(f"the QEMU tree {tree} has uncommitted changes",
                         "commit or stash them, or build the checkout as it is with --no-apply")
    tip = _branch_tip(tree, branch)
    if tip is not None and not force:
        is_on_base = git(tree, "merge-base", "--is-ancestor", base_commit, tip,
                         check=False).returncode == 0
        if is_on_base and patch_ids_of_range(tree, base_commit, tip) == \
                patch_ids_of_files(patches):
            git(tree, "checkout", "-q", branch)
            progress.say(f"qemu: checked out {branch}, which holds the {n} patches")
            return QemuApplied(branch, tip, n, True)
        if tip != base_commit:
            raise UsageError(f"branch {branch} in {tree} has commits that are not the "
                             f"{n} patches of {patches_dir}",
                             f"export your work into {patches_dir} first; --no-apply builds "
                             "the checkout as it is, --force recreates the branch")
    git(tree, "checkout", "-q", "-B", branch, base_commit)
    for i, patch in enumerate(patches, 1):
        progress.say(f"qemu: apply [{i}/{n}] {patch.name}")
        proc = git(tree, "am", "-q", "--committer-date-is-author-date", str(patch.resolve()),
                   check=False, env=IDENTITY)
        if proc.returncode != 0:
            git(tree, "am", "--abort", check=False)
            # Back to the base: a later run then retries instead of refusing
            # a branch with commits that are not the series.
            git(tree, "checkout", "-q", "-B", branch, base_commit)
            err = am_failure(patch, proc.stderr)
            raise KseriesError(err.message, f"rebase {patches_dir} onto {base} "
                                            f"(`git log {base}..` in {tree})")
    head = git(tree, "rev-parse", "HEAD").stdout.strip()
    progress.say(f"qemu: {branch} = {base} + {n} patches = {head[:12]}")
    return QemuApplied(branch, head, n, False)
