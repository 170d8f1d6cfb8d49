"""kseries.qemu.apply: patches/qemu on the series branch, by patch-id, never losing work."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import git, init_repo, quiet_progress

from kseries.errors import KseriesError, UsageError
from kseries.qemu import apply

BASE = "v10.0.2-ds-base"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    repo = init_repo(tmp_path / "qemu")
    (repo / "hw").mkdir()
    (repo / "hw" / "virtio-blk.c").write_text("one\ntwo\nthree\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "QEMU 10.0.2")
    git(repo, "tag", "-a", BASE, "-m", "base")
    return repo


def make_series(tree: Path, dest: Path, count: int = 2, with_series: bool = True) -> list[Path]:
    """``count`` format-patch files made on a scratch branch, then the branch is dropped."""
    git(tree, "checkout", "-q", "-b", "scratch", BASE)
    for i in range(count):
        (tree / "hw" / f"vhost-blk-{i}.c").write_text(f"/* part {i} */\n")
        git(tree, "add", "-A")
        git(tree, "commit", "-q", "-m", f"hw/block: vhost-blk part {i}")
    dest.mkdir(parents=True, exist_ok=True)
    out = git(tree, "format-patch", "--zero-commit", "--cover-letter", "-o", str(dest),
              f"{BASE}..scratch") if count else ""
    git(tree, "checkout", "-q", "master")
    git(tree, "branch", "-q", "-D", "scratch")
    patches = [Path(p) for p in out.splitlines() if not p.endswith("0000-cover-letter.patch")]
    if with_series:
        (dest / "series").write_text("".join(p.name + "\n" for p in patches))
    return patches


def run(tree: Path, patches: Path, force: bool = False) -> tuple[apply.QemuApplied, str]:
    progress, stream = quiet_progress()
    return apply.apply(tree, BASE, "vhost-blk", patches, progress, force), stream.getvalue()


def test_missing_directory_is_zero_patches(tree: Path, tmp_path: Path) -> None:
    res, log = run(tree, tmp_path / "patches" / "qemu")
    assert res.count == 0
    assert git(tree, "symbolic-ref", "--short", "HEAD") == "vhost-blk"
    assert res.head == git(tree, "rev-parse", f"{BASE}^{{commit}}")
    assert "+ 0 patches" in log
    assert "qemu does not exist: 0 patches, pristine QEMU" in log


def test_empty_series_is_zero_patches(tree: Path, tmp_path: Path) -> None:
    patches = tmp_path / "patches" / "qemu"
    patches.mkdir(parents=True)
    (patches / "series").write_text("# nothing yet\n")
    (patches / "0000-cover-letter.patch").write_text("From x\nSubject: [PATCH 0/0] cover\n")
    res, _ = run(tree, patches)
    assert res.count == 0
    again, log = run(tree, patches)
    assert again.reused
    assert "nothing to apply" in log


def test_applies_the_series_then_reuses_it(tree: Path, tmp_path: Path) -> None:
    patches = tmp_path / "patches" / "qemu"
    make_series(tree, patches)
    res, log = run(tree, patches)
    assert (res.count, res.reused) == (2, False)
    assert "apply [1/2] 0001-hw-block-vhost-blk-part-0.patch" in log
    assert git(tree, "log", "--format=%s", f"{BASE}..vhost-blk").splitlines() == [
        "hw/block: vhost-blk part 1", "hw/block: vhost-blk part 0"]
    assert (tree / "hw" / "vhost-blk-1.c").exists()
    mtime = (tree / "hw" / "vhost-blk-1.c").stat().st_mtime_ns
    again, log = run(tree, patches)
    assert again.reused and again.head == res.head
    assert "nothing to apply" in log
    # Nothing rewritten: the next build recompiles nothing.
    assert (tree / "hw" / "vhost-blk-1.c").stat().st_mtime_ns == mtime


def test_without_series_file_patches_go_by_name(tree: Path, tmp_path: Path) -> None:
    patches = tmp_path / "p"
    make_series(tree, patches, with_series=False)
    res, _ = run(tree, patches)
    assert res.count == 2


def test_branch_elsewhere_with_the_series_is_checked_out(tree: Path, tmp_path: Path) -> None:
    patches = tmp_path / "p"
    make_series(tree, patches)
    res, _ = run(tree, patches)
    git(tree, "checkout", "-q", "master")
    again, log = run(tree, patches)
    assert again.reused and again.head == res.head
    assert git(tree, "symbolic-ref", "--short", "HEAD") == "vhost-blk"
    assert "checked out vhost-blk" in log


def test_a_new_series_replaces_the_old_one(tree: Path, tmp_path: Path) -> None:
    patches = tmp_path / "p"
    run(tree, patches)  # branch at the base, 0 patches
    make_series(tree, patches)
    res, _ = run(tree, patches)
    assert res.count == 2 and not res.reused


def test_uncommitted_changes_are_refused(tree: Path, tmp_path: Path) -> None:
    patches = tmp_path / "p"
    make_series(tree, patches)
    (tree / "hw" / "virtio-blk.c").write_text("local edit\n")
    with pytest.raises(UsageError) as err:
        run(tree, patches)
    assert "has uncommitted changes" in err.value.message
    assert "--no-apply" in err.value.hint
    assert (tree / "hw" / "virtio-blk.c").read_text() == "local edit\n"


def test_other_commits_on_the_branch_are_kept(tree: Path, tmp_path: Path) -> None:
    patches = tmp_path / "p"
    make_series(tree, patches)
    run(tree, patches)
    (tree / "hw" / "virtio-blk.c").write_text("new work\n")
    git(tree, "commit", "-q", "-a", "-m", "work not exported yet")
    work = git(tree, "rev-parse", "HEAD")
    with pytest.raises(UsageError) as err:
        run(tree, patches)
    assert "has commits that are not the 2 patches" in err.value.message
    assert "--force" in err.value.hint
    assert git(tree, "rev-parse", "vhost-blk") == work
    res, _ = run(tree, patches, force=True)
    assert res.count == 2
    assert git(tree, "rev-parse", "vhost-blk") != work


def test_patch_that_does_not_apply(tree: Path, tmp_path: Path) -> None:
    patches = tmp_path / "p"
    [first] = make_series(tree, patches, count=1)
    first.write_text(first.read_text().replace("+/* part 0 */", "+/* part 0 */\n+more"))
    text = first.read_text().replace("new file mode 100644\n", "")
    first.write_text(text.replace("--- /dev/null", "--- a/hw/vhost-blk-0.c"))
    with pytest.raises(KseriesError) as err:
        run(tree, patches)
    assert err.value.message.startswith(f"patch {first.name} does not apply")
    assert "rebase" in err.value.hint and "kseries export" not in err.value.hint
    assert git(tree, "rev-parse", "vhost-blk") == git(tree, "rev-parse", f"{BASE}^{{commit}}")
    assert not (Path(git(tree, "rev-parse", "--absolute-git-dir")) / "rebase-apply").exists()
