"""series.apply / series.export on a throwaway git repository."""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import git, init_repo, next_second, quiet_progress

from kseries import series
from kseries.errors import KseriesError, UsageError

BRANCH = "vhost-blk"
BASE_TEXT = "".join(f"line {i}\n" for i in range(1, 21))
COVER_SUBJECT = ("vhost-blk: an in-kernel virtio-blk backend for vhost, so that guests "
                 "get fast block I/O")
COVER_BODY = ("This series adds vhost-blk.\n\n"
              "It is tested with KUnit and by booting a guest.")
PATCH_NAMES = ["0001-add-blk.c.patch", "0002-file-change-line-10.patch",
               "0003-add-blk.h.patch"]


def commit(repo: Path, message: str, when: int) -> None:
    env = dict(os.environ, GIT_AUTHOR_DATE=f"@{when} +0000", GIT_COMMITTER_DATE=f"@{when} +0000")
    subprocess.run(["git", "commit", "-q", "-a", "-m", message], cwd=repo, env=env, check=True,
                   capture_output=True)


def make_repo(path: Path) -> Path:
    """base (tagged) + BRANCH with three commits; BRANCH is checked out."""
    repo = init_repo(path)
    (repo / "file.txt").write_text(BASE_TEXT)
    git(repo, "add", "file.txt")
    commit(repo, "base", 1_700_000_000)
    git(repo, "tag", "base")
    git(repo, "checkout", "-q", "-b", BRANCH)
    (repo / "blk.c").write_text("int vhost_blk(void)\n{\n\treturn 0;\n}\n")
    git(repo, "add", "blk.c")
    commit(repo, "add blk.c\n\nThe backend.", 1_700_000_100)
    (repo / "file.txt").write_text(BASE_TEXT.replace("line 10\n", "line ten\n"))
    commit(repo, "file: change line 10", 1_700_000_200)
    (repo / "blk.h").write_text("int vhost_blk(void);\n")
    git(repo, "add", "blk.h")
    commit(repo, "add blk.h", 1_700_000_300)
    git(repo, "config", f"branch.{BRANCH}.description", f"{COVER_SUBJECT}\n\n{COVER_BODY}\n")
    return repo


def clone(src: Path, dest: Path) -> Path:
    subprocess.run(["git", "clone", "-q", "-b", "master", str(src), str(dest)], check=True,
                   capture_output=True)
    git(dest, "config", "user.name", "Test Author")
    git(dest, "config", "user.email", "author@example.org")
    return dest


def export(repo: Path, patches: Path, **kwargs: int) -> dict[str, bytes]:
    progress, _ = quiet_progress()
    series.export(repo, "base", BRANCH, patches, progress, **kwargs)
    return {p.name: p.read_bytes() for p in sorted(patches.iterdir())}


def apply(repo: Path, patches: Path, base: str = "base", force: bool = False
          ) -> series.ApplyResult:
    progress, _ = quiet_progress()
    return series.apply(repo, base, BRANCH, patches, progress, force=force)


def differences(old: dict[str, bytes], new: dict[str, bytes]) -> str:
    """A unified diff of two exports, empty when they are byte-identical."""
    out: list[str] = []
    for name in sorted(set(old) | set(new)):
        a = old.get(name, b"").decode(errors="replace").splitlines()
        b = new.get(name, b"").decode(errors="replace").splitlines()
        out += difflib.unified_diff(a, b, f"first/{name}", f"second/{name}", n=0, lineterm="")
    return "\n".join(out)


def without_message_ids(files: dict[str, bytes]) -> dict[str, bytes]:
    pattern = re.compile(rb"^(Message-Id|In-Reply-To|References): .*\n", re.M | re.I)
    return {name: pattern.sub(b"", data) for name, data in files.items()}


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository and its export, made once; tests get copies."""
    root = tmp_path_factory.mktemp("series")
    export(make_repo(root / "repo"), root / "patches")
    return root


@pytest.fixture
def repo(template: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(template / "repo", tmp_path / "repo", symlinks=True))


@pytest.fixture
def patches(template: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(template / "patches", tmp_path / "patches"))


def test_export_layout(repo: Path, tmp_path: Path) -> None:
    files = export(repo, tmp_path / "p")
    assert sorted(files) == ["0000-cover-letter.patch", *PATCH_NAMES, "series"]
    assert files["series"].decode() == "".join(f"{n}\n" for n in PATCH_NAMES)
    first = files[PATCH_NAMES[0]].decode()
    assert first.startswith("From 0000000000000000000000000000000000000000 ")
    assert "Subject: [PATCH 1/3] add blk.c\n" in first
    assert "\n-- \n" not in first  # --no-signature: no git version in the output
    cover = files["0000-cover-letter.patch"].decode()
    assert "Subject: [PATCH 0/3] vhost-blk: an in-kernel" in cover
    assert f"base-commit: {git(repo, 'rev-parse', 'base')}" in cover
    # The cover letter carries the tip's author date, not "now".
    assert "Date: Tue, 14 Nov 2023 22:18:20 +0000" in cover
    assert series.list_patches(tmp_path / "p") == [tmp_path / "p" / n for n in PATCH_NAMES]


def test_export_twice_is_byte_identical(repo: Path, tmp_path: Path) -> None:
    first = export(repo, tmp_path / "p")
    next_second()
    second = export(repo, tmp_path / "p")
    assert not differences(without_message_ids(first), without_message_ids(second))
    assert not differences(first, second), differences(first, second)


def test_export_replaces_stale_patches(repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "p"
    out.mkdir()
    (out / "0004-old-patch.patch").write_text("From x\nSubject: old\n")
    files = export(repo, out)
    assert "0004-old-patch.patch" not in files


def test_export_reroll(repo: Path, tmp_path: Path) -> None:
    files = export(repo, tmp_path / "p", reroll=2)
    assert sorted(files) == ["0000-cover-letter.patch", *PATCH_NAMES, "series"]
    assert b"Subject: [PATCH v2 2/3] file: change line 10\n" in files[PATCH_NAMES[1]]
    assert b"Subject: [PATCH v2 0/3]" in files["0000-cover-letter.patch"]


def test_export_default_cover_text(repo: Path, tmp_path: Path) -> None:
    git(repo, "config", "--unset", f"branch.{BRANCH}.description")
    export(repo, tmp_path / "p")
    assert series.cover_text(tmp_path / "p") == (
        "vhost-blk: in-kernel virtio-blk backend\n\n*** BLURB HERE ***\n")


def test_export_errors(repo: Path, tmp_path: Path) -> None:
    progress, _ = quiet_progress()
    with pytest.raises(UsageError, match="branch nope does not exist"):
        series.export(repo, "base", "nope", tmp_path / "p", progress)
    git(repo, "branch", "empty", "base")
    with pytest.raises(UsageError, match="branch empty has no commits on top of base"):
        series.export(repo, "base", "empty", tmp_path / "p", progress)
    with pytest.raises(UsageError, match="base 'nobase' does not exist"):
        series.export(repo, "nobase", "empty", tmp_path / "p", progress)
    assert not (tmp_path / "p").exists()


def test_cover_text(patches: Path) -> None:
    assert series.cover_text(patches) == f"{COVER_SUBJECT}\n\n{COVER_BODY}\n"


def test_cover_text_without_cover(tmp_path: Path) -> None:
    assert series.cover_text(tmp_path) is None


def test_apply_recreates_the_branch(repo: Path, patches: Path, tmp_path: Path) -> None:
    other = clone(repo, tmp_path / "clone")
    result = apply(other, patches)
    assert result.branch == BRANCH
    assert result.applied == PATCH_NAMES
    assert result.head == git(other, "rev-parse", BRANCH)
    assert git(other, "rev-parse", "--abbrev-ref", "HEAD") == BRANCH
    assert git(other, "rev-parse", f"{BRANCH}^{{tree}}") == git(repo, "rev-parse",
                                                                   f"{BRANCH}^{{tree}}")
    assert git(other, "log", "--format=%an|%ae|%at|%ct|%B", f"base..{BRANCH}") == git(
        repo, "log", "--format=%an|%ae|%at|%ct|%B", f"base..{BRANCH}")
    assert git(other, "config", f"branch.{BRANCH}.description") == (
        f"{COVER_SUBJECT}\n\n{COVER_BODY}")
    assert git(other, "status", "--porcelain") == ""


def test_round_trip_is_byte_identical(repo: Path, patches: Path, tmp_path: Path) -> None:
    first = {p.name: p.read_bytes() for p in sorted(patches.iterdir())}
    other = clone(repo, tmp_path / "clone")
    apply(other, patches)
    next_second()
    again = export(other, tmp_path / "again")
    assert series.cover_text(tmp_path / "again") == f"{COVER_SUBJECT}\n\n{COVER_BODY}\n"
    assert not differences(without_message_ids(first), without_message_ids(again))
    assert not differences(first, again), differences(first, again)


def test_apply_in_same_repo_after_deleting_branch(repo: Path, patches: Path) -> None:
    tree_before = git(repo, "rev-parse", f"{BRANCH}^{{tree}}")
    git(repo, "checkout", "-q", "master")
    git(repo, "branch", "-D", BRANCH)
    apply(repo, patches)
    assert git(repo, "rev-parse", f"{BRANCH}^{{tree}}") == tree_before


def conflicting_base(repo: Path) -> None:
    """Tag base2: base with line 10 of file.txt changed, so patch 2 conflicts."""
    git(repo, "checkout", "-q", "master")
    (repo / "file.txt").write_text(BASE_TEXT.replace("line 10\n", "line X\n"))
    commit(repo, "conflicting base change", 1_700_000_400)
    git(repo, "tag", "base2")
    git(repo, "branch", "-D", BRANCH)


def test_apply_conflict_names_patch_and_file(repo: Path, patches: Path) -> None:
    conflicting_base(repo)
    with pytest.raises(KseriesError) as err:
        apply(repo, patches, base="base2")
    message = err.value.message
    assert message.startswith(f"patch {PATCH_NAMES[1]} does not apply: ")
    assert "file.txt" in message
    assert "kseries export" in err.value.hint
    assert not (repo / ".git" / "rebase-apply").exists()
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "branch", "--list", BRANCH) == ""
    assert git(repo, "rev-parse", "HEAD") == git(repo, "rev-parse", "base2")


def test_apply_conflict_names_the_line(repo: Path, patches: Path) -> None:
    """git am says "error: patch failed: file.txt:7"; the message keeps file:line."""
    conflicting_base(repo)
    with pytest.raises(KseriesError) as err:
        apply(repo, patches, base="base2")
    assert "file.txt:7" in err.value.message
    # Once, with its line: not also "file.txt (patch does not apply)".
    assert err.value.message.endswith("does not apply: file.txt:7"), err.value.message


def test_am_failure_names_each_file_once() -> None:
    stderr = ("error: patch failed: drivers/vhost/vhost.c:172\n"
              "error: drivers/vhost/vhost.c: patch does not apply\n"
              "error: include/x.h: does not exist in index\n")
    err = series.am_failure(Path("0003-x.patch"), stderr)
    assert err.message == ("patch 0003-x.patch does not apply: drivers/vhost/vhost.c:172, "
                           "include/x.h (does not exist in index)")


def test_apply_empty_patch_dir_is_refused(repo: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert series.list_patches(empty) == []
    git(repo, "checkout", "-q", "master")
    git(repo, "branch", "-D", BRANCH)
    with pytest.raises(UsageError, match=r"holds no patches"):
        apply(repo, empty)
    assert BRANCH not in git(repo, "branch", "--list", BRANCH)


def test_list_patches_missing_dir(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"patch directory .* does not exist"):
        series.list_patches(tmp_path / "nope")


def test_list_patches_without_series_file_sorts_by_name(patches: Path) -> None:
    (patches / "series").unlink()
    assert [p.name for p in series.list_patches(patches)] == PATCH_NAMES


def test_series_file_order_and_comments(patches: Path) -> None:
    (patches / "series").write_text(f"# the order\n{PATCH_NAMES[1]}\n\n{PATCH_NAMES[0]}\n")
    assert [p.name for p in series.list_patches(patches)] == PATCH_NAMES[1::-1]


def test_not_a_patch_file(tmp_path: Path) -> None:
    (tmp_path / "0001-x.patch").write_text("just some notes\n")
    with pytest.raises(UsageError) as err:
        series.list_patches(tmp_path)
    assert err.value.message == (
        f"{tmp_path / '0001-x.patch'} is not a git format-patch file (no From/Subject header)")


def test_not_a_patch_file_refused_by_apply(repo: Path, tmp_path: Path) -> None:
    (tmp_path / "0001-x.patch").write_text("just some notes\n")
    head = git(repo, "rev-parse", BRANCH)
    with pytest.raises(UsageError, match="is not a git format-patch file"):
        apply(repo, tmp_path, force=True)
    assert git(repo, "rev-parse", BRANCH) == head


def test_series_lists_missing_patch(patches: Path) -> None:
    with (patches / "series").open("a") as fh:
        fh.write("0004-missing.patch\n")
    with pytest.raises(UsageError) as err:
        series.list_patches(patches)
    assert err.value.message == (
        f"{patches / 'series'} lists 0004-missing.patch, which does not exist")


def test_existing_branch_with_commits_needs_force(repo: Path, patches: Path) -> None:
    head = git(repo, "rev-parse", BRANCH)
    with pytest.raises(UsageError) as err:
        apply(repo, patches)
    assert err.value.message == f"branch {BRANCH} already exists in {repo} with commits"
    assert "--force" in err.value.hint
    assert git(repo, "rev-parse", BRANCH) == head
    result = apply(repo, patches, force=True)
    assert git(repo, "rev-parse", f"{result.head}^{{tree}}") == git(repo, "rev-parse",
                                                                    f"{head}^{{tree}}")


def test_existing_branch_at_base_needs_no_force(repo: Path, patches: Path) -> None:
    git(repo, "checkout", "-q", "master")
    git(repo, "branch", "-f", BRANCH, "base")
    assert apply(repo, patches).applied == PATCH_NAMES


def test_dirty_tree_is_refused(repo: Path, patches: Path) -> None:
    (repo / "file.txt").write_text("local change\n")
    with pytest.raises(UsageError) as err:
        apply(repo, patches, force=True)
    assert "has uncommitted changes" in err.value.message
    assert (repo / "file.txt").read_text() == "local change\n"


def test_am_in_progress_is_refused(repo: Path, patches: Path) -> None:
    (repo / ".git" / "rebase-apply").mkdir()
    with pytest.raises(UsageError, match="a `git am` is in progress"):
        apply(repo, patches, force=True)


def test_bad_base_is_refused(repo: Path, patches: Path) -> None:
    with pytest.raises(UsageError, match="base 'nope' does not exist"):
        apply(repo, patches, base="nope", force=True)


def test_apply_without_a_git_identity(repo: Path, patches: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh CI machine has no user.name/user.email: git am must still work."""
    git(repo, "checkout", "-q", "master")
    git(repo, "branch", "-D", BRANCH)
    git(repo, "config", "--unset", "user.email")
    git(repo, "config", "--unset", "user.name")
    monkeypatch.setenv("HOME", str(tmp_path / "nohome"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for var in ("GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "EMAIL"):
        monkeypatch.delenv(var, raising=False)
    result = apply(repo, patches)
    assert len(result.applied) == 3
    assert git(repo, "log", "-1", "--format=%ce", BRANCH) == "kseries@invalid"
