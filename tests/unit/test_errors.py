"""git failures become one-line errors instead of tracebacks."""

from __future__ import annotations

import git

from kseries.errors import git_failure


def test_git_failure_names_the_command_and_gits_last_line() -> None:
    exc = git.GitCommandError(["git", "checkout", "-q", "submit/vhost-blk"], 128,
                              b"fatal: 'submit/vhost-blk' is already checked out at '/w/wt'")
    err = git_failure(exc)
    assert err.message == ("`git checkout -q submit/vhost-blk` failed: fatal: "
                           "'submit/vhost-blk' is already checked out at '/w/wt'")
    assert "worktree" in err.hint


def test_git_failure_without_stderr_gives_the_status() -> None:
    err = git_failure(git.GitCommandError(["git", "am"], 1, b""))
    assert err.message == "`git am` failed: exit 1"
