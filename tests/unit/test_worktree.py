"""The scratch worktree every series job applies patches in (kseries.worktree)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from helpers import git, quiet_progress
from test_submit_flow import TAG, make_series, make_tree

from kseries import series, worktree
from kseries.errors import KseriesError, UsageError


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, list[Path], str]:
    repo = make_tree(tmp_path / "linux")
    patches = tmp_path / "patches"
    make_series(repo, patches)
    base = git(repo, "rev-parse", TAG + "^{commit}")
    return repo, tmp_path / "build" / "series-tree", series.list_patches(patches), base


def test_applies_in_a_detached_worktree_and_leaves_the_tree_alone(
        setup: tuple[Path, Path, list[Path], str]) -> None:
    repo, wt, patches, base = setup
    branch, head = git(repo, "rev-parse", "--abbrev-ref", "HEAD"), git(repo, "rev-parse", "HEAD")
    progress, out = quiet_progress()
    res = worktree.apply_series(repo, wt, base, patches, progress)
    assert not res.reused and res.count == 3
    assert git(wt, "rev-parse", "HEAD") == res.head
    assert git(wt, "rev-parse", "--abbrev-ref", "HEAD") == "HEAD"  # detached
    assert git(wt, "log", "--format=%s", f"{base}..HEAD").splitlines() == [
        "Documentation: describe foo", "foo: handle errors", "foo: add the driver"]
    # The developer's checkout, branch and branches list are as they were.
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == branch
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "diff", "--stat", "vhost-blk", res.head) == ""
    assert "apply [3/3]" in out.getvalue()


def test_same_patches_on_two_machines_give_the_same_commits(
        setup: tuple[Path, Path, list[Path], str], tmp_path: Path) -> None:
    repo, wt, patches, base = setup
    progress, _ = quiet_progress()
    first = worktree.apply_series(repo, wt, base, patches, progress).head
    other = worktree.apply_series(repo, tmp_path / "other", base, patches, progress).head
    assert first == other


def test_a_worktree_that_holds_the_series_is_not_rewritten(
        setup: tuple[Path, Path, list[Path], str]) -> None:
    """Rewriting the files would make the next build recompile what they touch."""
    repo, wt, patches, base = setup
    progress, out = quiet_progress()
    first = worktree.apply_series(repo, wt, base, patches, progress)
    touched = wt / "drivers" / "foo" / "foo.c"
    old = time.time() - 3600
    os.utime(touched, (old, old))
    again = worktree.apply_series(repo, wt, base, patches, progress)
    assert again.reused and again.head == first.head
    assert touched.stat().st_mtime == pytest.approx(old)
    assert "nothing to apply" in out.getvalue()


def test_a_different_series_or_a_dirty_worktree_is_applied_again(
        setup: tuple[Path, Path, list[Path], str]) -> None:
    repo, wt, patches, base = setup
    progress, _ = quiet_progress()
    worktree.apply_series(repo, wt, base, patches, progress)
    fewer = worktree.apply_series(repo, wt, base, patches[:2], progress)
    assert not fewer.reused
    assert git(wt, "rev-list", "--count", f"{base}..HEAD") == "2"
    (wt / "drivers" / "foo" / "foo.c").write_text("edited\n")
    again = worktree.apply_series(repo, wt, base, patches[:2], progress)
    assert not again.reused and again.head == fewer.head
    assert (wt / "drivers" / "foo" / "foo.c").read_text() != "edited\n"


def test_holds_series_compares_diffs_not_commit_ids(
        setup: tuple[Path, Path, list[Path], str]) -> None:
    repo, wt, patches, base = setup
    progress, _ = quiet_progress()
    worktree.apply_series(repo, wt, base, patches, progress)
    assert worktree.holds_series(wt, base, patches)
    assert not worktree.holds_series(wt, base, list(reversed(patches)))
    assert not worktree.holds_series(wt, base, [])


def test_a_patch_that_does_not_apply_names_itself(
        setup: tuple[Path, Path, list[Path], str], tmp_path: Path) -> None:
    repo, wt, patches, base = setup
    progress, _ = quiet_progress()
    bad = tmp_path / "0009-bad.patch"
    bad.write_text(patches[1].read_text().replace("drivers/foo/foo.c", "drivers/foo/nothere.c"))
    with pytest.raises(KseriesError, match=r"0009-bad\.patch does not apply"):
        worktree.apply_series(repo, wt, base, [patches[0], bad], progress)
    # No git am left half-way: the next run starts clean.
    assert worktree.apply_series(repo, wt, base, patches, progress).count == 3


def test_the_tree_itself_is_refused_as_worktree(
        setup: tuple[Path, Path, list[Path], str]) -> None:
    repo, _, patches, base = setup
    progress, _ = quiet_progress()
    with pytest.raises(UsageError, match="is the tree itself"):
        worktree.apply_series(repo, repo, base, patches, progress)


def test_a_second_job_on_the_same_worktree_is_refused(tmp_path: Path) -> None:
    wt = tmp_path / "series-tree"
    with worktree.lock(wt), pytest.raises(UsageError, match="another job is using"), \
            worktree.lock(wt):
        pass
    with worktree.lock(wt):  # released again
        pass
