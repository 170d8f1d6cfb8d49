"""The git side of a run: the check worktree, git am per patch, diffs.

All of it happens in a worktree of its own (``git worktree add
--detach``), so the developer's checkout and branches are never
touched: commits made by ``git am`` hang off a detached HEAD.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .. import series
from .. import worktree as worktree_mod
from ..errors import UsageError
from ..git import git, git_bytes

_FAILED_AT = re.compile(r"^error: patch failed: (\S+?):(\d+)$", re.M)
_HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+\d+(?:,\d+)? @@.*$", re.M)


def rev_parse(cwd: Path, rev: str) -> str:
    proc = git(cwd, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
    if proc.returncode != 0:
        raise UsageError(f"{rev!r} is not a commit in {cwd}",
                         "give an existing ref with --base (or fetch the pinned tree)")
    return proc.stdout.strip()


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
               env=worktree_mod.IDENTITY)
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
    proc = git_bytes(worktree, "show", f"{rev}:{path}", check=False)
    return proc.stdout if proc.returncode == 0 else None


def exists(worktree: Path, rev: str, path: str) -> bool:
    return git(worktree, "cat-file", "-e", f"{rev}:{path}", check=False).returncode == 0
