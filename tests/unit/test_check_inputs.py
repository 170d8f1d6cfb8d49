"""check-series on bad input: exit 2 with a one-line cause and fix, or the right failing cell."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "check"))
import synth

from kseries import paths
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
    # What reads the patch alone still runs; what needs the tree cannot.
    assert report["patches"][0]["results"]["checkpatch"]["state"] == "success"
    assert report["patches"][0]["results"]["hygiene"]["state"] == "success"
    assert report["patches"][0]["results"]["build"]["description"] == \
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
                    "Subject: [PATCH 1/2] lib: a thought\n\nJust words.\n")
    assert main(tmp_path, tree, str(mbox)) == 2
    lines = error_lines(capsys)
    assert "holds no diff and is not a reply" in lines[0]
    assert "b4 am" in lines[1]


def test_mbox_of_replies_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = synth.init_tree(tmp_path / "tree")
    mbox = tmp_path / "talk.mbox"
    mbox.write_text("From nobody Mon Sep 17 00:00:00 2001\nFrom: A <a@example.org>\n"
                    "Subject: Re: [PATCH 1/2] lib: a thought\n\nJust a reply.\n")
    assert main(tmp_path, tree, str(mbox)) == 2
    lines = error_lines(capsys)
    assert "holds no patches (1 replies left out)" in lines[0]
    assert "b4 am" in lines[1]


def _messages(text: str) -> list[str]:
    """format-patch --stdout output, one string per message."""
    parts = re.split(r"(?m)^(?=From [0-9a-f]{40} )", text)
    return [p for p in parts if p.strip()]


REPLY = ("From reviewer Mon Sep 17 00:00:00 2001\nFrom: R <r@example.org>\n"
         "Subject: Re: [PATCH v2 2/3] lib: a: add a counter\nIn-Reply-To: <x@y>\n\n"
         "> -int a(void)\nLooks fine.\n\nReviewed-by: R <r@example.org>\n\n")


def test_a_thread_mbox_is_read_as_a_maintainer_receives_it(tmp_path: Path) -> None:
    """Cover letter, a review reply, a v1 resend and patches 3, 1, 2 out of order."""
    tree, _ = synth.make_series(tmp_path)
    v1 = _messages(synth.git(tree, "format-patch", "--stdout", "base..series"))
    v2 = _messages(synth.git(tree, "format-patch", "-v2", "--cover-letter", "--stdout",
                             "base..series"))
    cover, p1, p2, p3 = v2
    mbox = tmp_path / "thread.mbox"
    mbox.write_text("\n".join([cover, p3, REPLY, *v1, p1, p2]) + "\n")
    out = tmp_path / "out"
    assert main(tmp_path, tree, "--only", "apply", str(mbox)) == 0
    report = json.loads((out / "report.json").read_text())
    assert [p["subject"] for p in report["patches"]] == [
        "lib: b: add zero", "lib: a: add a counter", "lib: a: document the file"]
    assert [p["results"]["apply"]["state"] for p in report["patches"]] == ["success"] * 3


def test_inputs_notes_say_what_was_left_out(tmp_path: Path) -> None:
    tree, _ = synth.make_series(tmp_path)
    v1 = _messages(synth.git(tree, "format-patch", "--stdout", "base..series"))
    v2 = _messages(synth.git(tree, "format-patch", "-v2", "--stdout", "base..series"))
    mbox = tmp_path / "thread.mbox"
    mbox.write_text("\n".join([v2[2], REPLY, *v1, v2[0], v2[1]]) + "\n")
    got = inputs.from_mbox(mbox, tmp_path / "w")
    assert [p.index for p in got.patches] == [1, 2, 3]
    assert got.notes == ("left out 1 reply",
                         "left out 3 patch(es) of older version(s) v1; checking v2",
                         "ordered by [k/N], not by the order of the messages")


def test_an_mbox_missing_a_patch_is_refused(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    tree, _ = synth.make_series(tmp_path)
    p1, _, p3 = _messages(synth.git(tree, "format-patch", "--stdout", "base..series"))
    mbox = tmp_path / "holes.mbox"
    mbox.write_text(p3 + "\n" + p1 + "\n")
    assert main(tmp_path, tree, str(mbox)) == 2
    lines = error_lines(capsys)
    assert "lacks patch(es) 2/3 of v1" in lines[0]


def test_a_v2_directory_with_a_cover_letter(tmp_path: Path) -> None:
    """`git format-patch -v2 --cover-letter -o DIR`: v2-0000 is not patch 1."""
    tree, _ = synth.make_series(tmp_path)
    out = tmp_path / "v2"
    synth.git(tree, "format-patch", "-v2", "--cover-letter", "-o", str(out), "base..series")
    got = inputs.load(str(out), tmp_path / "none", tree, tmp_path / "w")
    assert [p.name[:8] for p in got.patches] == ["v2-0001-", "v2-0002-", "v2-0003-"]


def test_numbering() -> None:
    assert inputs.numbering("[PATCH v2 3/5] x: y") == (2, 3, 5)
    assert inputs.numbering("[PATCH 03/10] x") == (1, 3, 10)
    assert inputs.numbering("[RFC PATCH net-next v3 1/2] x") == (3, 1, 2)
    assert inputs.numbering("[PATCH] x: y 1/2") is None
    assert inputs.numbering("x: y") is None


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
    assert "is not a directory, a file, a git range or a message-id" in error_lines(capsys)[0]


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


def test_outside_the_project_the_working_directory_is_the_project(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run in a maintainer's own directory with --tree: reports and config there,
    never this project's build/check-series (submit-series gates on it)."""
    project = Path(__file__).resolve().parents[2]
    where = paths.places(root=project)
    assert where.check_home(project / "tools") == (
        project, project / "build" / "check-series", project / "build" / "check-work")
    elsewhere = tmp_path / "maint"
    elsewhere.mkdir()
    assert where.check_home(elsewhere) == (
        elsewhere, elsewhere / "check-series", elsewhere / "check-series-work")
    tree, patches = synth.make_series(tmp_path)
    mine = project / "build" / "check-series" / "report.json"
    before = mine.stat().st_mtime if mine.exists() else None
    monkeypatch.chdir(elsewhere)
    assert cli.main(["-q", "--tree", str(tree), "--base", "base", "--only", "apply,hygiene",
                     str(patches)]) == 0
    report = json.loads((elsewhere / "check-series" / "report.json").read_text())
    assert [p["results"]["apply"]["state"] for p in report["patches"]] == ["success"] * 3
    assert (elsewhere / "check-series-work" / "worktree").is_dir()
    assert (mine.stat().st_mtime if mine.exists() else None) == before


def test_url_base_must_be_a_web_url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree, patches = synth.make_series(tmp_path)
    assert main(tmp_path, tree, "--url-base", "/srv/ci/run7", str(patches)) == 2
    assert "is not an http(s) URL" in error_lines(capsys)[0]
