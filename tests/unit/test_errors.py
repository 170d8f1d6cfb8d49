"""git failures become one-line errors instead of tracebacks (kseries.git)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import init_repo

from kseries import cli
from kseries import git as g
from kseries.errors import UsageError
from kseries.git import GitError, git


def test_a_failing_git_command_names_itself_the_tree_and_gits_last_line(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    with pytest.raises(GitError) as exc:
        git(repo, "checkout", "-q", "no-such-branch")
    err = exc.value
    assert isinstance(err, UsageError) and err.exit_code == 2
    assert err.message.startswith(f"git checkout -q no-such-branch failed in {repo}: ")
    assert "no-such-branch" in err.message.split(": ", 1)[1]
    assert "\n" not in str(err)
    assert err.returncode != 0 and err.command == ("checkout", "-q", "no-such-branch")
    assert "git status" in err.hint


def test_without_check_the_caller_gets_the_exit_status(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    proc = git(repo, "rev-parse", "--verify", "--quiet", "nothing", check=False)
    assert proc.returncode != 0 and proc.stdout == ""


def test_last_line_skips_blank_lines_and_says_when_there_is_none() -> None:
    assert g.last_line("hint: one\nfatal: two\n\n") == "fatal: two"
    assert g.last_line("fatal: Unable to create 'index.lock'\n\nAnother git process...\n"
                       "remove the file manually to continue.") == \
        "fatal: Unable to create 'index.lock'"
    assert g.last_line("Applying: x\nPatch failed at 0001 x\n") == "Patch failed at 0001 x"
    assert g.last_line("") == "no message"


def test_a_directory_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        git(tmp_path / "missing", "status")
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match="is not a directory"):
        git(tmp_path / "file", "status")


def test_git_missing_from_path_is_a_usage_error(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UsageError, match="git is not installed"):
        git(tmp_path, "status")
    with pytest.raises(UsageError, match="git is not installed"):
        g.git_bytes(tmp_path, "status")


def test_questions_the_tools_ask(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    (repo / "f").write_text("1\n")
    git(repo, "add", "f")
    git(repo, "commit", "-q", "-m", "one")
    head = g.out(repo, "rev-parse", "HEAD")
    assert g.rev(repo, "master") == head and g.rev(repo, "nothing") is None
    assert g.branch_exists(repo, "master") and not g.branch_exists(repo, "other")
    assert g.config_get(repo, "user.email") == "author@example.org"
    assert g.config_get(repo, "branch.master.description") is None
    assert g.is_repo(repo) and not g.is_repo(repo / "f") and not g.is_repo(tmp_path)
    (repo / "sub").mkdir()
    assert not g.is_repo(repo / "sub")  # inside a tree is not the top of one
    assert not g.is_dirty(repo)
    (repo / "f").write_text("2\n")
    assert g.is_dirty(repo)
    (repo / "untracked").write_text("")
    git(repo, "checkout", "-q", "f")
    assert not g.is_dirty(repo)  # untracked files do not count
    assert g.git_dir(repo) == (repo / ".git").resolve()
    assert g.succeeds(repo, "merge-base", "--is-ancestor", head, "HEAD")
    assert g.git_bytes(repo, "show", "HEAD:f").stdout == b"1\n"
    with pytest.raises(GitError):
        g.git_bytes(repo, "show", "HEAD:missing")


def test_patch_id_is_stable_and_empty_without_a_diff(tmp_path: Path) -> None:
    diff = ("diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-1\n+2\n")
    one, two = tmp_path / "1.patch", tmp_path / "2.patch"
    one.write_text("From x\nSubject: a\n\n---\n" + diff)
    two.write_text("From y\nSubject: b, other words\n\n---\n" + diff)
    assert len(g.patch_id(one)) == 40 and g.patch_id(one) == g.patch_id(two)
    (tmp_path / "empty.patch").write_text("From x\nSubject: nothing\n\n")
    assert g.patch_id(tmp_path / "empty.patch") == ""


def test_a_git_failure_under_kseries_ends_in_two_lines(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A git command that fails unexpectedly is an error and a hint, never a traceback."""
    repo = init_repo(tmp_path / "linux")
    (repo / "Makefile").write_text("")
    (repo / "Kconfig").write_text("")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    (repo / ".git" / "index.lock").write_text("")  # another git "running"
    (tmp_path / "patches").mkdir()
    (tmp_path / "patches" / "0001-x.patch").write_text(
        "From 0 Mon Sep 17 00:00:00 2001\nSubject: [PATCH] x\n\n---\n")
    code = cli.main(["apply", "--tree", str(repo), "--base", "master", "--patches",
                     str(tmp_path / "patches"), "--work", str(tmp_path / "w"), "--branch", "s"])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    lines = err.splitlines()
    assert lines[0].startswith("kseries: error: git checkout -q -B failed in ")
    assert "index.lock" in lines[0]
    assert lines[1].startswith("kseries: hint: ")
