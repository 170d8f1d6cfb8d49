"""kseries.qemu.manifest and .sources: the pin, and the Sources index against it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from qemu_fakes import TARBALL, VERSION, FakeSource, make_source, write_manifest

from kseries.errors import UsageError
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
    assert man.patches_dir == root / "patches" / "qemu"
    assert (man.fixes_dir / "series").is_file()
    assert man.url("pool/main/q/qemu") == (
        "http://deb.debian.org/debian/pool/main/q/qemu/qemu_10.0.2%2Bds.orig.tar.xz")


def test_missing_manifest() -> None:
    problem = "QEMU manifest /nonexistent.toml does not exist"
    with pytest.raises(UsageError, match=re.escape(problem)):
        manifest.load(Path("/nonexistent.toml"))


@pytest.mark.parametrize(("override", "problem"), [
    ({"tarball_sha256": "ABC"}, "tarball_sha256 is not a sha256"),
    ({"tarball_size": "big"}, "tarball_size is missing or not a positive integer"),
    ({"mirror": "ftp://example.org"}, "is not an http(s) URL"),
    ({"suite": ""}, "[source] suite is missing"),
])
def test_bad_manifest_values(tmp_path: Path, fake: FakeSource, override: dict[str, str],
                             problem: str) -> None:
    with pytest.raises(UsageError) as err:
        write_manifest(tmp_path, fake, **override)
    assert problem in err.value.message
    assert "\n" not in str(err.value)


def test_manifest_without_source_table(tmp_path: Path) -> None:
    path = tmp_path / "manifest.toml"
    path.write_text("[base]\n")
    with pytest.raises(UsageError, match=r"has no \[source\] table"):
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
    assert "re-uploaded" in err.value.hint


def test_apt_options_keep_the_system_config_out(tmp_path: Path) -> None:
    opts = sources.apt_options(tmp_path)
    assert f"Dir::Etc::sourcelist={tmp_path}/sources.list" in opts
    assert "Dir::Etc::sourceparts=-" in opts
    assert f"Dir::State::Lists={tmp_path}/lists" in opts
