"""The git side of a run: the check worktree, git am per patch, diffs.

All of it happens in a worktree of its own (``git worktree add
--detach``), so the developer's checkout and branches are never
touched: commits made by ``git am`` hang off a detached HEAD.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .. import series
from ..errors import UsageError

_FAILED_AT = re.compile(r"^error: patch failed: (\S+?):(\d+)$", re.M)
_HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+\d+(?:,\d+)? @@.*$", re.M)
_IDENTITY = {"GIT_COMMITTER_NAME": "check-series", "GIT_COMMITTER_EMAIL": "check-series@invalid"}


def git(cwd: Path, *args: str, check: bool = True,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          errors="replace", check=False,
                          env=dict(os.environ, **(env or {})))
    if check and proc.returncode != 0:
        raise UsageError(f"git {' '.join(args[:3])} failed in {cwd}: "
                         f"{(proc.stderr.strip().splitlines() or ['no message'])[-1]}",
                         "check the tree with `git status` there")
    return proc


def rev_parse(cwd: Path, rev: str) -> str:
    proc = git(cwd, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
    if proc.returncode != 0:
        raise UsageError(f"{rev!r} is not a commit in {cwd}",
                         "give an existing ref with --base (or fetch the pinned tree)")
    return proc.stdout.strip()


def _common_dir(path: Path) -> Path:
    out = git(path, "rev-parse", "--path-format=absolute", "--git-common-dir").stdout.strip()
    return Path(out).resolve()


def prepare_worktree(tree: Path, worktree: Path, base_commit: str) -> None:
    """A detached worktree of ``tree`` at ``base_commit``, clean."""
    tree, worktree = tree.resolve(), worktree.resolve()
    if worktree == tree:
        raise UsageError(f"the check worktree {worktree} is the tree itself",
                         "give --worktree a path of its own; the tree's checkout is not touched")
    if worktree.exists() and any(worktree.iterdir()):
        if not (worktree / ".git").exists() or _common_dir(worktree) != _common_dir(tree):
            raise UsageError(f"{worktree} exists and is not a worktree of {tree}",
                             "move it away or give --worktree another path")
        git(worktree, "am", "--abort", check=False)  # left over from an interrupted run
        git(worktree, "checkout", "-q", "-f", "--detach", base_commit)
        git(worktree, "clean", "-fdq")
        return
    git(tree, "worktree", "prune")
    worktree.parent.mkdir(parents=True, exist_ok=True)
    git(tree, "worktree", "add", "-q", "--detach", str(worktree), base_commit)


@dataclass(frozen=True)
class ApplyFailure:
    message: str  # one line: the patch, the file and the hunk
    output: str  # git am's whole output, for the log


def hunk_at(patch_text: str, path: str, line: int) -> str:
    """The header of the hunk of ``path`` that starts at old line ``line``."""
    start = patch_text.find(f"diff --git a/{path} ")
    if start < 0:
        return ""
    end = patch_text.find("\ndiff --git ", start + 1)
    section = patch_text[start:end if end > 0 else None]
    for m in _HUNK.finditer(section):
        if int(m.group(1)) == line:
            return m.group(0).strip()
    return ""


def am(worktree: Path, patch: Path) -> str | ApplyFailure:
    """``git am`` one patch; the new commit, or why it did not apply."""
    proc = git(worktree, "am", "--committer-date-is-author-date", str(patch), check=False,
               env=_IDENTITY)
    if proc.returncode == 0:
        return git(worktree, "rev-parse", "HEAD").stdout.strip()
    output = proc.stdout + proc.stderr
    git(worktree, "am", "--abort", check=False)
    message = str(series.am_failure(patch, proc.stderr).message)
    m = _FAILED_AT.search(proc.stderr)
    if m:
        hunk = hunk_at(patch.read_text(errors="replace"), m.group(1), int(m.group(2)))
        if hunk:
            message += f" (hunk {hunk})"
    elif "patch does not apply" not in proc.stderr and "error:" not in proc.stderr:
        lines = [x for x in output.strip().splitlines() if x.strip()]
        message = f"patch {patch.name} does not apply: {lines[-1] if lines else 'git am failed'}"
    return ApplyFailure(message, output)


def changed_files(worktree: Path, old: str, new: str) -> list[tuple[str, str]]:
    """(status letter, path) for each file that differs from old to new."""
    out = git(worktree, "diff", "--no-renames", "--name-status", old, new).stdout
    result = []
    for line in out.splitlines():
        status, _, path = line.partition("\t")
        if path:
            result.append((status[:1], path))
    return result


def checkout(worktree: Path, rev: str) -> None:
    git(worktree, "checkout", "-q", "-f", "--detach", rev)


def show(worktree: Path, rev: str, path: str) -> bytes | None:
    proc = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=worktree, capture_output=True,
                          check=False)
    return proc.stdout if proc.returncode == 0 else None


def exists(worktree: Path, rev: str, path: str) -> bool:
    return git(worktree, "cat-file", "-e", f"{rev}:{path}", check=False).returncode == 0
