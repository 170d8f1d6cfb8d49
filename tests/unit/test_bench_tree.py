"""kseries bench prepares its own tree: patches/ on kseries/bench, never the developer's branch."""

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


def test_applies_patches_to_the_bench_branch(lay: paths.Layout) -> None:
    developer_tip = git(lay.tree, "rev-parse", "vhost-blk")
    progress, out = quiet_progress()
    head = cli.prepare_tree(lay, apply=True, progress=progress)
    assert git(lay.tree, "rev-parse", "HEAD") == head
    assert git(lay.tree, "rev-parse", "--abbrev-ref", "HEAD") == cli.BENCH_BRANCH
    subjects = git(lay.tree, "log", "--format=%s", f"{TAG}..HEAD").splitlines()
    assert subjects == ["Documentation: describe foo", "foo: handle errors",
                        "foo: add the driver"]
    # The built tree is the developer's series, and their branch is untouched.
    assert git(lay.tree, "diff", "--stat", "vhost-blk", "HEAD") == ""
    assert git(lay.tree, "rev-parse", "vhost-blk") == developer_tip
    assert f"3 patches on {cli.BENCH_BRANCH}" in out.getvalue()
    # A second run recreates the branch rather than refusing it.
    assert cli.prepare_tree(lay, apply=True, progress=progress) == head


def test_no_apply_builds_the_checkout(lay: paths.Layout) -> None:
    progress, out = quiet_progress()
    head = cli.prepare_tree(lay, apply=False, progress=progress)
    assert head == git(lay.tree, "rev-parse", "master")
    assert cli.BENCH_BRANCH not in git(lay.tree, "branch", "--list")
    assert "patches/ not applied" in out.getvalue()


def test_missing_tree_names_the_fix(tmp_path: Path) -> None:
    lay = paths.layout(tree=tmp_path / "nowhere", base=TAG, work=tmp_path / "build")
    progress, _ = quiet_progress()
    with pytest.raises(KseriesError, match="does not exist") as err:
        cli.prepare_tree(lay, apply=True, progress=progress)
    assert "kseries tree fetch" in (err.value.hint or "")
