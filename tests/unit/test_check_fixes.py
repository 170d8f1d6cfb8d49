"""The fixes check: every Fixes: tag names a commit of the tree, by its subject."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import git, init_repo

from kseries.check import config as config_mod
from kseries.check.checks import fixes
from kseries.check.context import CheckContext
from kseries.check.model import PatchInfo, State
from kseries.progress import Progress


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A tree with two commits, and a branch commit that is not in the patch's history."""
    tree = init_repo(tmp_path / "tree")
    shas: dict[str, str] = {}
    for name, subject in (("a", "foo: add the bar"), ("b", "foo: fix the baz")):
        (tree / name).write_text(name + "\n")
        git(tree, "add", name)
        git(tree, "commit", "-q", "-m", subject)
        shas[name] = git(tree, "rev-parse", "HEAD")
    git(tree, "checkout", "-q", "-b", "side", shas["a"])
    (tree / "c").write_text("c\n")
    git(tree, "add", "c")
    git(tree, "commit", "-q", "-m", "foo: elsewhere")
    shas["side"] = git(tree, "rev-parse", "HEAD")
    git(tree, "checkout", "-q", "master")
    return tree, shas


def run(tmp: Path, tree: Path, tags: list[str]) -> tuple[State, str, str]:
    patch_file = tmp / "0001-x.patch"
    body = "foo: do it\n\nThe description.\n\n" + "".join(t + "\n" for t in tags)
    patch_file.write_text("From: A <a@example.org>\nSubject: [PATCH] foo: do it\n\n"
                          + body.split("\n\n", 1)[1]
                          + "Signed-off-by: A <a@example.org>\n---\n a | 1 +\n")
    patch = PatchInfo(1, patch_file.name, patch_file, "foo: do it", "A <a@example.org>", "", "")
    head = git(tree, "rev-parse", "HEAD")
    ctx = CheckContext(patch=patch, series=[patch], tree=tree, base_commit=head,
                       prev_commit=head, commit=head, is_tip=True,
                       config=config_mod.load(None, tmp), log=tmp / "logs" / "fixes.log",
                       work=tmp, progress=Progress(quiet=True))
    outcome = fixes.CHECK.run(ctx)
    return outcome.state, outcome.description, ctx.log.read_text()


def test_a_tag_naming_a_commit_of_the_tree_by_its_subject_passes(
        tmp_path: Path, repo: tuple[Path, dict[str, str]]) -> None:
    tree, shas = repo
    state, text, log = run(tmp_path, tree, [f'Fixes: {shas["a"][:12]} ("foo: add the bar")'])
    assert state == State.SUCCESS, text
    assert shas["a"][:12] in text and "foo: add the bar" in log


def test_no_tag_is_a_skip_not_a_pass(tmp_path: Path, repo: tuple[Path, dict[str, str]]) -> None:
    state, text, _ = run(tmp_path, repo[0], [])
    assert state == State.SKIP and "no Fixes:" in text


def test_every_wrong_tag_is_reported(tmp_path: Path, repo: tuple[Path, dict[str, str]]) -> None:
    tree, shas = repo
    state, text, log = run(tmp_path, tree, [
        'Fixes: 0123456789ab ("foo: never was")',
        f'Fixes: {shas["b"][:12]} ("foo: the wrong subject")',
        f'Fixes: {shas["side"][:12]} ("foo: elsewhere")',
        "Fixes: not-a-hash",
    ])
    assert state == State.FAIL
    assert "(+3 more)" in text
    assert "0123456789ab is not a commit of the tree" in log
    assert "subject 'foo: the wrong subject' is not the commit's 'foo: fix the baz'" in log
    assert f"{shas['side'][:12]} is not in the history of this patch" in log
    assert "malformed" in log


def test_the_check_is_discovered() -> None:
    from kseries.check import registry
    assert "fixes" in registry.discover()
