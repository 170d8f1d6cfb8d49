"""kseries.qemu.fetch and .download against a fake tarball on a file:// mirror."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import git, next_second, quiet_progress
from qemu_fakes import DIRECTORY, TARBALL, VERSION, FakeSource, make_source, write_manifest

from kseries.errors import InfraError, UsageError
from kseries.qemu import download, fetch, manifest, sources


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> FakeSource:
    return make_source(tmp_path_factory.mktemp("qemu-src"))


@pytest.fixture(autouse=True)
def fake_index(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The Sources index lists the pinned version in DIRECTORY; calls are recorded."""
    calls: list[str] = []

    def lookup(man: manifest.QemuManifest, progress: object) -> sources.SourceEntry:
        calls.append(man.spec)
        return sources.SourceEntry("qemu", VERSION, DIRECTORY,
                                   {TARBALL: (man.tarball_size, man.tarball_sha256)})

    monkeypatch.setattr(sources, "lookup", lookup)
    return calls


def run_fetch(man: manifest.QemuManifest, tarball: Path | None = None) -> tuple[Path, str]:
    progress, stream = quiet_progress()
    return fetch.fetch(man, progress, tarball), stream.getvalue()


def test_fetch_downloads_imports_and_tags(tmp_path: Path, fake: FakeSource,
                                          fake_index: list[str]) -> None:
    man = write_manifest(tmp_path, fake)
    dest, log = run_fetch(man)
    assert dest == tmp_path / "qemu-tree" / "qemu"
    assert fake_index == [f"qemu={VERSION}"]
    assert (man.cache_dir / TARBALL).read_bytes() == fake.tarball.read_bytes()
    assert not list(man.cache_dir.glob("*.part"))
    assert sorted(git(dest, "ls-files").splitlines()) == [
        ".gitignore", "configure", "hw/block/virtio-blk.c", "meson.build"]
    # The import is the tarball as shipped; the base adds the fix on top.
    assert git(dest, "rev-parse", "v10.0.2-ds-base~1") == git(dest, "rev-parse",
                                                              "v10.0.2-ds^{commit}")
    assert "fs.exists" in (dest / "meson.build").read_text()
    assert git(dest, "rev-parse", "HEAD") == git(dest, "rev-parse", "v10.0.2-ds-base^{commit}")
    assert git(dest, "status", "--porcelain") == ""
    assert git(dest, "config", "--get", "gc.auto") == "0"
    assert git(dest, "log", "-1", "--format=%cn %cI", "v10.0.2-ds") == (
        "kseries import 2000-01-01T00:00:00+00:00")
    assert "downloading file://" in log
    assert "tree ready" in log
    assert not list(dest.parent.glob(".fetch-*"))


def test_import_is_reproducible(tmp_path: Path, fake: FakeSource) -> None:
    one, _ = run_fetch(write_manifest(tmp_path / "one", fake))
    next_second()
    two, _ = run_fetch(write_manifest(tmp_path / "two", fake))
    assert git(one, "rev-parse", "v10.0.2-ds-base") == git(two, "rev-parse", "v10.0.2-ds-base")
    assert git(one, "rev-parse", "HEAD") == git(two, "rev-parse", "HEAD")


def test_second_fetch_does_nothing(tmp_path: Path, fake: FakeSource,
                                   fake_index: list[str]) -> None:
    man = write_manifest(tmp_path, fake)
    dest, _ = run_fetch(man)
    (dest / "hw" / "block" / "virtio-blk.c").write_text("/* work in progress */\n")
    again, log = run_fetch(man)
    assert again == dest
    assert "nothing to do" in log
    assert "download" not in log
    assert len(fake_index) == 1
    assert (dest / "hw" / "block" / "virtio-blk.c").read_text() == "/* work in progress */\n"


def test_cached_tarball_needs_no_index(tmp_path: Path, fake: FakeSource,
                                       fake_index: list[str]) -> None:
    man = write_manifest(tmp_path, fake)
    man.cache_dir.mkdir(parents=True)
    (man.cache_dir / TARBALL).write_bytes(fake.tarball.read_bytes())
    _, log = run_fetch(man)
    assert "using cached" in log
    assert fake_index == []


def test_download_with_wrong_sha(tmp_path: Path, fake: FakeSource) -> None:
    man = write_manifest(tmp_path, fake, tarball_sha256="0" * 64)
    with pytest.raises(UsageError) as err:
        run_fetch(man)
    assert f"has {fake.size} bytes, sha256 {fake.sha256}; the manifest pins" in err.value.message
    assert "0" * 64 in err.value.message
    assert "move the pin" in err.value.hint
    assert not (man.cache_dir / TARBALL).exists()
    assert not list(man.cache_dir.glob("*.part"))
    assert not man.tree_dir.exists()


def test_given_tarball_with_wrong_size(tmp_path: Path, fake: FakeSource) -> None:
    man = write_manifest(tmp_path, fake, tarball_size=fake.size + 1)
    with pytest.raises(UsageError) as err:
        run_fetch(man, fake.tarball)
    assert err.value.message == (f"tarball {fake.tarball} has {fake.size} bytes, the manifest "
                                 f"pins {fake.size + 1}")


def test_given_tarball_missing(tmp_path: Path, fake: FakeSource) -> None:
    with pytest.raises(UsageError, match=re.escape("--tarball /nonexistent.tar.xz does not exist")):
        run_fetch(write_manifest(tmp_path, fake), Path("/nonexistent.tar.xz"))


def test_mirror_without_the_file(tmp_path: Path, fake: FakeSource) -> None:
    man = write_manifest(tmp_path, fake, mirror=f"file://{tmp_path}/empty-mirror")
    with pytest.raises(InfraError) as err:
        run_fetch(man)
    assert err.value.message.startswith(f"downloading file://{tmp_path}/empty-mirror/")
    assert "--tarball PATH" in err.value.hint
    assert not man.tree_dir.exists()


def test_other_directory_is_kept(tmp_path: Path, fake: FakeSource) -> None:
    man = write_manifest(tmp_path, fake)
    man.tree_dir.mkdir(parents=True)
    (man.tree_dir / "mine.c").write_text("keep me\n")
    with pytest.raises(UsageError) as err:
        run_fetch(man)
    assert "exists but is not the import" in err.value.message
    assert "move it away" in err.value.hint
    assert (man.tree_dir / "mine.c").read_text() == "keep me\n"


def test_changed_fix_is_noticed(tmp_path: Path, fake: FakeSource) -> None:
    """A tree imported with other fixes (or another pin) is not taken for the pin."""
    man = write_manifest(tmp_path, fake)
    run_fetch(man)
    fixes = tmp_path / "fixes"
    fixes.mkdir()
    (fixes / "series").write_text("")
    with pytest.raises(UsageError, match="is not the import"):
        run_fetch(write_manifest(tmp_path, fake, fixes=str(fixes)))


def test_wrong_topdir(tmp_path: Path, fake: FakeSource) -> None:
    man = write_manifest(tmp_path, fake, topdir="qemu-9.9.9")
    with pytest.raises(UsageError, match=re.escape("did not unpack to a QEMU tree in qemu-9.9.9/")):
        run_fetch(man)
    assert not man.tree_dir.exists()


def test_download_progress_and_rename(tmp_path: Path, fake: FakeSource) -> None:
    progress, _ = quiet_progress()
    dest = tmp_path / "cache" / TARBALL
    download.fetch(f"file://{fake.tarball}", dest, fake.size, fake.sha256, progress)
    assert dest.read_bytes() == fake.tarball.read_bytes()
    assert download.matches(dest, fake.size, fake.sha256)
    assert not download.matches(dest, fake.size, "0" * 64)
