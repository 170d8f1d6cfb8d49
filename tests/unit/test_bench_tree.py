"""kseries bench applies patches/ in the series worktree, never on a branch of the
developer's tree."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import git, quiet_progress
from test_submit_flow import TAG, make_series, make_tree

from kseries import paths
from kseries.bench import cli
from kseries.errors import KseriesError


@pytest.fixture
def lay(tmp_path: Path) -> paths.Layout:
    repo = make_tree(tmp_path / "linux")
    patches = tmp_path / "patches"
    make_series(repo, patches)
    return paths.layout(tree=repo, base=TAG, patches=patches, work=tmp_path / "build")


def test_applies_patches_in_the_series_worktree(lay: paths.Layout) -> None:
    developer_tip = git(lay.tree, "rev-parse", "vhost-blk")
    developer_head = git(lay.tree, "rev-parse", "--abbrev-ref", "HEAD")
    branches = git(lay.tree, "branch", "--list")
    progress, out = quiet_progress()
    head, source = cli.prepare_tree(lay, apply=True, progress=progress)
    assert source == lay.series_tree
    assert git(source, "rev-parse", "HEAD") == head
    subjects = git(source, "log", "--format=%s", f"{TAG}..HEAD").splitlines()
    assert subjects == ["Documentation: describe foo", "foo: handle errors",
                        "foo: add the driver"]
    # The built tree is the developer's series; their tree is as it was.
    assert git(lay.tree, "diff", "--stat", "vhost-blk", head) == ""
    assert git(lay.tree, "rev-parse", "vhost-blk") == developer_tip
    assert git(lay.tree, "rev-parse", "--abbrev-ref", "HEAD") == developer_head
    assert git(lay.tree, "branch", "--list") == branches
    assert f"3 patches in {lay.series_tree}" in out.getvalue()
    # A second run finds the worktree holding the series and rewrites nothing.
    assert cli.prepare_tree(lay, apply=True, progress=progress) == (head, source)
    assert "nothing to apply" in out.getvalue()


def test_no_apply_builds_the_checkout(lay: paths.Layout) -> None:
    progress, out = quiet_progress()
    head, source = cli.prepare_tree(lay, apply=False, progress=progress)
    assert head == git(lay.tree, "rev-parse", "master")
    assert source == lay.tree.resolve()
    assert not lay.series_tree.exists()
    assert "patches/ not applied" in out.getvalue()


def test_missing_tree_names_the_fix(tmp_path: Path) -> None:
    lay = paths.layout(tree=tmp_path / "nowhere", base=TAG, work=tmp_path / "build")
    progress, _ = quiet_progress()
    with pytest.raises(KseriesError, match="does not exist") as err:
        cli.prepare_tree(lay, apply=True, progress=progress)
    assert "kseries tree fetch" in (err.value.hint or "")
