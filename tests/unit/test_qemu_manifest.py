"""kseries.qemu.manifest and .sources: the pin, and the Sources index against it."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from helpers import quiet_progress
from qemu_fakes import TARBALL, VERSION, FakeSource, make_source, write_manifest

from kseries import paths
from kseries.errors import InfraError, UsageError
from kseries.qemu import manifest, sources

SHA = "0901da33844a331bf8b3602b9c1fbd178e60b737c8e3ade678255bd090c9b9f1"
DSC_SHA = "a9eec32b6ddeda8f7e3472b3e9662358a0a764fb2ba9551a8c158c012072bc96"
DEBIAN_SHA = "dd04c78b36212c1b463595028c234e8c18241ef25923e7a135671f76d8ec5547"
DEB = "qemu_10.0.2+ds-2+deb13u1~bpo12+1"

# `apt-cache showsrc qemu` with the private bookworm-backports list, trimmed.
SHOWSRC = f"""\
Package: qemu
Binary: qemu-system, qemu-block-extra,
 qemu-utils, qemu-guest-agent
Version: {VERSION}
Maintainer: Debian QEMU Team <pkg-qemu-devel@lists.alioth.debian.org>
Format: 3.0 (quilt)
Files:
 0123456789abcdef0123456789abcdef 11887 {DEB}.dsc
Checksums-Sha256:
 {DSC_SHA} 11887 {DEB}.dsc
 {SHA} 39449628 qemu_10.0.2+ds.orig.tar.xz
 {DEBIAN_SHA} 139220 {DEB}.debian.tar.xz
Homepage: http://www.qemu.org/
Directory: pool/main/q/qemu
Section: misc

"""


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> FakeSource:
    return make_source(tmp_path_factory.mktemp("qemu-src"))


def pinned(tmp_path: Path, fake: FakeSource) -> manifest.QemuManifest:
    return write_manifest(tmp_path, fake, tarball_size=39449628, tarball_sha256=SHA)


def test_project_manifest_loads() -> None:
    root = Path(__file__).resolve().parents[2]
    man = manifest.load(root / "qemu-tree" / "manifest.toml")
    assert man.debian_version == VERSION
    assert man.tarball == TARBALL
    assert man.tarball_size == 39449628
    assert man.tarball_sha256 == SHA
    assert man.tree_dir == root / "qemu-tree" / "qemu"
    assert paths.places().in_checkout(man.patches) == root / "patches" / "qemu"
    assert (man.fixes_dir / "series").is_file()
    assert man.url("pool/main/q/qemu") == (
        "http://deb.debian.org/debian/pool/main/q/qemu/qemu_10.0.2%2Bds.orig.tar.xz")


def test_missing_manifest() -> None:
    problem = "QEMU manifest /nonexistent.toml does not exist"
    with pytest.raises(UsageError, match=re.escape(problem)):
        manifest.load(Path("/nonexistent.toml"))


@pytest.mark.parametrize(("override", "problem"), [
    ({"tarball_sha256": "ABC"},
     'source.tarball_sha256 must be a sha256 (64 lowercase hex digits), not "ABC"'),
    ({"tarball_size": "big"}, 'source.tarball_size must be a positive integer, not "big"'),
    ({"tarball_size": 0}, "source.tarball_size must be a positive integer, not 0"),
    ({"mirror": "ftp://example.org"},
     'source.mirror must be an http(s) URL, not "ftp://example.org"'),
    ({"suite": ""}, 'source.suite must be a non-empty string, not ""'),
])
def test_bad_manifest_values(tmp_path: Path, fake: FakeSource, override: dict[str, str | int],
                             problem: str) -> None:
    with pytest.raises(UsageError) as err:
        write_manifest(tmp_path, fake, **override)
    assert problem in err.value.message
    assert "\n" not in str(err.value)


def test_manifest_without_source_table(tmp_path: Path) -> None:
    path = tmp_path / "manifest.toml"
    path.write_text("")
    with pytest.raises(UsageError, match=r"source is missing \(a table\) \(add \[source\]"):
        manifest.load(path)
    path.write_text("[base]\n")
    with pytest.raises(UsageError, match=r"unknown key base \(the keys: source, series\)"):
        manifest.load(path)


def test_parse_showsrc() -> None:
    [entry] = sources.parse_showsrc(SHOWSRC)
    assert entry.package == "qemu"
    assert entry.version == VERSION
    assert entry.directory == "pool/main/q/qemu"
    assert entry.files[TARBALL] == (39449628, SHA)
    assert len(entry.files) == 3
    assert entry.orig_tarballs() == [TARBALL]


def test_choose_the_pinned_version(tmp_path: Path, fake: FakeSource) -> None:
    man = pinned(tmp_path, fake)
    other = SHOWSRC.replace(VERSION, "1:9.2.0+ds-1~bpo12+1")
    entry = sources.choose(man, sources.parse_showsrc(other + SHOWSRC))
    assert entry.version == VERSION


def test_vanished_version_names_what_is_offered(tmp_path: Path, fake: FakeSource) -> None:
    man = pinned(tmp_path, fake)
    newer = (SHOWSRC.replace(VERSION, "1:10.0.3+ds-1~bpo12+1")
             .replace("10.0.2+ds.orig", "10.0.3+ds.orig").replace(SHA, "e" * 64))
    with pytest.raises(UsageError) as err:
        sources.choose(man, sources.parse_showsrc(newer))
    message, hint = err.value.message, err.value.hint
    assert message.startswith(f"Debian no longer offers qemu={VERSION} in ")
    assert "bookworm-backports" in message
    assert ("1:10.0.3+ds-1~bpo12+1 (qemu_10.0.3+ds.orig.tar.xz, 39449628 bytes, sha256 "
            + "e" * 64 + ")") in message
    assert hint.startswith("move the pin: ")
    assert str(man.path) in hint
    assert "patches/qemu still applies" in hint
    assert "\n" not in message + hint


def test_vanished_with_nothing_offered(tmp_path: Path, fake: FakeSource) -> None:
    with pytest.raises(UsageError, match="it offers no version at all"):
        sources.choose(pinned(tmp_path, fake), [])


def test_index_disagrees_with_the_pin(tmp_path: Path, fake: FakeSource) -> None:
    man = pinned(tmp_path, fake)
    with pytest.raises(UsageError) as err:
        sources.choose(man, sources.parse_showsrc(SHOWSRC.replace(SHA, "f" * 64)))
    assert f"sha256 {'f' * 64}" in err.value.message
    assert f"pins 39449628 bytes, sha256 {SHA}" in err.value.message
    assert "re-uploaded" in err.value.hint and "move the pin" in err.value.hint


def test_apt_options_keep_the_system_config_out(tmp_path: Path) -> None:
    opts = sources.apt_options(tmp_path)
    assert f"Dir::Etc::sourcelist={tmp_path}/sources.list" in opts
    assert "Dir::Etc::sourceparts=-" in opts
    assert f"Dir::State::Lists={tmp_path}/lists" in opts


def fake_apt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, update: str, showsrc: str) -> Path:
    """apt-get and apt-cache scripts that log their arguments."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "apt.log"
    (tmp_path / "showsrc.txt").write_text(showsrc)
    (bindir / "apt-get").write_text(f'#!/bin/sh\necho "apt-get $*" >> {log}\n{update}')
    (bindir / "apt-cache").write_text(
        f'#!/bin/sh\necho "apt-cache $*" >> {log}\ncat {tmp_path / "showsrc.txt"}\n')
    for tool in ("apt-get", "apt-cache"):
        (bindir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    return log


def test_lookup_reads_the_private_index(tmp_path: Path, fake: FakeSource,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    man = pinned(tmp_path, fake)
    log = fake_apt(tmp_path, monkeypatch, "exit 0\n", SHOWSRC)
    entry = sources.lookup(man, quiet_progress()[0])
    assert entry.directory == "pool/main/q/qemu"
    base = man.cache_dir / "apt"
    assert (base / "sources.list").read_text() == (
        f"deb-src file://{fake.mirror} bookworm-backports main\n")
    update, showsrc = log.read_text().splitlines()
    assert update.startswith(f"apt-get -o Dir::Etc::sourcelist={base}/sources.list ")
    assert "APT::Update::Error-Mode=any update" in update
    assert showsrc.endswith("showsrc qemu")


def test_lookup_when_the_index_cannot_be_fetched(tmp_path: Path, fake: FakeSource,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    man = pinned(tmp_path, fake)
    fake_apt(tmp_path, monkeypatch,
             "echo 'E: Failed to fetch http://mirror/InRelease  Could not connect' >&2\n"
             "echo 'E: Some index files failed to download.' >&2\nexit 100\n", "")
    with pytest.raises(InfraError) as err:
        sources.lookup(man, quiet_progress()[0])
    assert err.value.message.endswith(
        "bookworm-backports failed: Failed to fetch http://mirror/InRelease  Could not connect")
    assert "--tarball PATH" in err.value.hint
