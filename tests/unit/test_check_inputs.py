"""check-series on bad input: exit 2 with a one-line cause and fix, or the right failing cell."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "check"))
import synth

from kseries.check import cli, gitops, inputs


def main(tmp: Path, tree: Path, *extra: str) -> int:
    return cli.main(synth.cli_args(tmp, tree, *extra))


def error_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith("check-series:")]


def test_empty_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = synth.init_tree(tmp_path / "tree")
    (tmp_path / "empty").mkdir()
    assert main(tmp_path, tree, str(tmp_path / "empty")) == 2
    lines = error_lines(capsys)
    assert "holds no patches" in lines[0]
    assert lines[1].startswith("check-series: hint:")


def test_non_patch_file_in_the_directory(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    tree, patches = synth.make_series(tmp_path)
    (patches / "0004-notes.patch").write_text("just some notes\n")
    (patches / "series").write_text((patches / "series").read_text() + "0004-notes.patch\n")
    assert main(tmp_path, tree, str(patches)) == 2
    assert "0004-notes.patch is not a git format-patch file" in error_lines(capsys)[0]


def test_series_file_names_a_missing_patch(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    tree, patches = synth.make_series(tmp_path)
    (patches / "0002-lib-a-add-a-counter.patch").unlink()
    assert main(tmp_path, tree, str(patches)) == 2
    assert "which does not exist" in error_lines(capsys)[0]


def test_patch_against_another_tree_fails_apply_naming_file_and_hunk(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, patches = synth.make_series(tmp_path)
    # Another tree: lib/b.c differs where patch 1 changes it.
    other = synth.init_tree(tmp_path / "other-src")
    synth.write(other, "lib/b.c", synth.B_C.replace("v * 2", "v * 7"))
    synth.git(other, "commit", "-q", "-a", "-m", "diverge")
    synth.git(other, "tag", "-f", "base")
    assert main(tmp_path, other, str(patches)) == 1
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    apply = report["patches"][0]["results"]["apply"]
    assert apply["state"] == "fail"
    assert "0001-lib-b-add-zero.patch does not apply" in apply["description"]
    assert "lib/b.c:" in apply["description"]
    assert "(hunk @@ -2,5 +2,5 @@ int lib_b(int v);)" in apply["description"]
    assert report["patches"][0]["results"]["checkpatch"]["description"] == \
        "the patch did not apply"
    assert "did not apply" in report["patches"][1]["results"]["apply"]["description"]
    out = capsys.readouterr().out
    assert "FAIL 01 0001-lib-b-add-zero.patch [apply]" in out


def test_file_that_is_not_an_mbox(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = synth.init_tree(tmp_path / "tree")
    junk = tmp_path / "junk.txt"
    junk.write_text("hello\nthis is not mail\n")
    assert main(tmp_path, tree, str(junk)) == 2
    assert "neither an mbox nor a patch" in error_lines(capsys)[0]


def test_mbox_message_without_a_diff(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = synth.init_tree(tmp_path / "tree")
    mbox = tmp_path / "talk.mbox"
    mbox.write_text("From nobody Mon Sep 17 00:00:00 2001\nFrom: A <a@example.org>\n"
                    "Subject: Re: [PATCH 1/2] lib: a thought\n\nJust a reply.\n")
    assert main(tmp_path, tree, str(mbox)) == 2
    assert "holds no diff" in error_lines(capsys)[0]


def test_corrupt_mbox_fails_apply_of_the_broken_patch(tmp_path: Path) -> None:
    tree, _ = synth.make_series(tmp_path)
    text = synth.git(tree, "format-patch", "--stdout", "base..series")
    # Cut the last patch in the middle of its first hunk.
    cut = text.rindex("@@ -")
    mbox = tmp_path / "cut.mbox"
    mbox.write_text(text[:cut + 40] + "\n")
    assert main(tmp_path, tree, "--keep-going", str(mbox)) == 1
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    states = [p["results"]["apply"]["state"] for p in report["patches"]]
    assert states == ["success", "success", "fail"]
    assert "0003-" in report["patches"][2]["results"]["apply"]["description"]


def test_unknown_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree, patches = synth.make_series(tmp_path)
    assert main(tmp_path, tree, "--only", "bogus", str(patches)) == 2
    assert "unknown check 'bogus'" in error_lines(capsys)[0]


def test_apply_cannot_be_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree, patches = synth.make_series(tmp_path)
    assert main(tmp_path, tree, "--skip", "apply", str(patches)) == 2
    assert "cannot be skipped" in error_lines(capsys)[0]


def test_only_and_skip_of_the_same_check_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--only checkpatch --skip checkpatch` ran apply alone and said PASS."""
    tree, patches = synth.make_series(tmp_path)
    assert main(tmp_path, tree, "--only", "checkpatch,hygiene", "--skip", "checkpatch",
                str(patches)) == 2
    lines = error_lines(capsys)
    assert "--only and --skip both name checkpatch" in lines[0]
    assert not (tmp_path / "out" / "report.json").exists()


@pytest.mark.parametrize("kind", ["directory", "unreadable"])
def test_a_config_that_cannot_be_read_is_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str) -> None:
    tree, patches = synth.make_series(tmp_path)
    config = tmp_path / "cfg"
    if kind == "directory":
        config.mkdir()
        expected = "is a directory"
    else:
        config.write_text("[checks]\n")
        config.chmod(0)
        expected = "cannot be read"
        if os.access(config, os.R_OK):  # root reads it anyway; make it unreadable otherwise
            config.unlink()
            config.symlink_to(config)  # a symlink loop: ELOOP
            expected = "cannot be read"
    assert main(tmp_path, tree, "--config", str(config), str(patches)) == 2
    lines = error_lines(capsys)
    assert expected in lines[0], lines


def test_from_beyond_the_series(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree, patches = synth.make_series(tmp_path)
    assert main(tmp_path, tree, "--from", "5", str(patches)) == 2
    assert "not within the series' 3 patches" in error_lines(capsys)[0]


def test_missing_base_ref(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree, patches = synth.make_series(tmp_path)
    assert cli.main(synth.cli_args(tmp_path, tree, str(patches), base="v9.9")) == 2
    assert "'v9.9' is not a commit" in error_lines(capsys)[0]


def test_tree_that_is_not_a_git_repository(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    _, patches = synth.make_series(tmp_path)
    plain = tmp_path / "plain"
    shutil.copytree(synth.HERE / "tree", plain)
    assert main(tmp_path, plain, str(patches)) == 2
    assert "is not a git repository" in error_lines(capsys)[0]


def test_input_that_does_not_exist(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = synth.init_tree(tmp_path / "tree")
    assert main(tmp_path, tree, str(tmp_path / "nope")) == 2
    assert "is not a directory, a file or a git range" in error_lines(capsys)[0]


def test_worktree_path_taken_by_something_else(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    tree, patches = synth.make_series(tmp_path)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "file").write_text("mine\n")
    assert main(tmp_path, tree, "--worktree", str(busy), str(patches)) == 2
    assert "is not a worktree of" in error_lines(capsys)[0]
    assert (busy / "file").read_text() == "mine\n"


def test_patch_ids_and_message_keys(tmp_path: Path) -> None:
    _, patches = synth.make_series(tmp_path)
    got = inputs.from_directory(patches).patches
    assert [p.index for p in got] == [1, 2, 3]
    assert all(len(p.patch_id) == 40 for p in got)
    assert got[0].author == synth.AUTHOR
    assert len({p.key for p in got}) == 3


def test_hunk_header_lookup() -> None:
    patch = ("diff --git a/x.c b/x.c\n--- a/x.c\n+++ b/x.c\n@@ -1,3 +1,3 @@\n-a\n+b\n"
             "@@ -20,4 +20,5 @@ int f(void)\n+c\n")
    assert gitops.hunk_at(patch, "x.c", 20) == "@@ -20,4 +20,5 @@ int f(void)"
    assert gitops.hunk_at(patch, "y.c", 20) == ""
