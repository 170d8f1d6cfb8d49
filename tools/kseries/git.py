"""The one way the tools run git (as b4's git_run_command, NIPA's cmd_run).

Every git command of the package goes through ``git()`` (text) or
``git_bytes()`` (binary input or output): a subprocess in a given
directory, its output captured, and with ``check`` a failure raised as
a one-line ``GitError`` (a ``UsageError``: the tree's state, not the
code under test, is what needs fixing) that names the command, the
directory and git's fatal:/error: line.  The small helpers below
(``rev()``, ``config_get()``, ``is_repo()``...) are the questions the
tools keep asking; ``patch_id()`` is the one ``git patch-id --stable``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import UsageError

GIT_HINT = "check the tree with `git status` there"


class GitError(UsageError):
    """A git command that had to succeed failed."""

    def __init__(self, cwd: Path, args: tuple[str, ...], returncode: int, stderr: str,
                 hint: str = GIT_HINT) -> None:
        self.cwd, self.command, self.returncode, self.stderr = cwd, args, returncode, stderr
        super().__init__(f"git {' '.join(args[:3])} failed in {cwd}: {last_line(stderr)}", hint)


def last_line(stderr: str) -> str:
    """The line of git's stderr that says what went wrong.

    Its last ``fatal:`` or ``error:`` line when there is one (advice may
    follow it: "remove the file manually to continue."), else its last line.
    """
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("fatal:", "error:"))]
    return (errors or lines or ["no message"])[-1]


def _env(env: Mapping[str, str] | None) -> dict[str, str]:
    return dict(os.environ, **(env or {}))


def _spawn(cwd: Path, args: tuple[str, ...], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """``git ARGS`` in ``cwd``; no git or no such directory is a UsageError."""
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False,
                              **kwargs)
    except (FileNotFoundError, NotADirectoryError):
        if not Path(cwd).is_dir():
            raise UsageError(f"{cwd} does not exist or is not a directory",
                             "give the path of an existing git tree") from None
        raise UsageError("git is not installed",
                         "install it (`apt-get install git`)") from None


def git(cwd: Path, *args: str, check: bool = True, env: Mapping[str, str] | None = None,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``git ARGS`` in ``cwd``, output captured as text.

    With ``check`` a non-zero exit raises ``GitError``; without it the
    caller reads ``returncode`` and says what the failure means itself.
    ``env`` is added to the environment (an identity, a fixed date).
    """
    proc: subprocess.CompletedProcess[str] = _spawn(cwd, args, text=True, errors="replace",
                                                    input=stdin, env=_env(env))
    if check and proc.returncode != 0:
        raise GitError(Path(cwd), args, proc.returncode, proc.stderr)
    return proc


def git_bytes(cwd: Path | None, *args: str, check: bool = True,
              stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """``git()`` for binary data: a file's blob, a patch fed on stdin (``cwd`` None: here)."""
    where = cwd if cwd is not None else Path.cwd()
    proc: subprocess.CompletedProcess[bytes] = _spawn(where, args, input=stdin)
    if check and proc.returncode != 0:
        raise GitError(Path(where), args, proc.returncode,
                       proc.stderr.decode(errors="replace"))
    return proc


def out(cwd: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    """stdout of a git command that must succeed, without surrounding whitespace."""
    return git(cwd, *args, env=env).stdout.strip()


def succeeds(cwd: Path, *args: str) -> bool:
    """Whether a git command (a question: ``merge-base --is-ancestor``...) exits 0."""
    return git(cwd, *args, check=False).returncode == 0


def rev(cwd: Path, ref: str) -> str | None:
    """The commit id ``ref`` names in ``cwd``, or None if it names no commit."""
    proc = git(cwd, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def branch_exists(cwd: Path, branch: str) -> bool:
    return succeeds(cwd, "show-ref", "--verify", "--quiet", f"refs/heads/{branch}")


def config_get(cwd: Path, key: str) -> str | None:
    """``git config --get KEY`` (None when unset)."""
    proc = git(cwd, "config", "--get", key, check=False)
    return proc.stdout.rstrip("\n") if proc.returncode == 0 else None


def is_repo(path: Path) -> bool:
    """Whether ``path`` is the top of a git work tree (not a directory inside one)."""
    if not path.is_dir():
        return False
    proc = git(path, "rev-parse", "--show-toplevel", check=False)
    return proc.returncode == 0 and Path(proc.stdout.strip()).resolve() == path.resolve()


def git_dir(cwd: Path) -> Path:
    """The work tree's own git directory (a linked worktree's, not the common one)."""
    return Path(out(cwd, "rev-parse", "--path-format=absolute", "--git-dir"))


def is_dirty(cwd: Path) -> bool:
    """Uncommitted changes to tracked files (untracked files do not count)."""
    return bool(out(cwd, "status", "--porcelain", "--untracked-files=no"))


def patch_id(patch: Path) -> str:
    """``git patch-id --stable`` of a patch file ('' for one without a diff).

    The one patch-id of the tools: check-series keys its cache and
    submit-series its staleness check with it, and a worktree is known to
    hold a series by it.
    """
    proc = git_bytes(None, "patch-id", "--stable", stdin=patch.read_bytes(), check=False)
    words = proc.stdout.decode(errors="replace").split()
    return words[0] if words else ""
