"""tree.fetch / open_tree against a fake linux-source .deb built here."""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import git, init_repo, next_second

from kseries import manifest, tree
from kseries.errors import InfraError, UsageError
from kseries.progress import Progress

TARBALL = "usr/src/linux-source-6.12.tar.xz"
TOPDIR = "linux-source-6.12"
TAG = "v6.12.117-test"
# Debian appends these to the kernel's .gitignore: they hide every top-level file.
GITIGNORE = "*.o\n*.ko\n/vmlinux\n\n# Debian packaging\n/*\n!/debian/\n"


@dataclass(frozen=True)
class FakeDeb:
    deb: Path
    deb_sha256: str
    tarball_sha256: str


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_deb(root: Path, with_tarball: bool = True) -> FakeDeb:
    """A linux-source-6.12 package whose payload is the source tarball."""
    src = root / "src" / TOPDIR
    files = {
        "Makefile": "VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 117\n",
        "Kconfig": 'mainmenu "Linux/$(ARCH) $(KERNELVERSION) Kernel Configuration"\n',
        ".gitignore": GITIGNORE,
        "debian/rules": "#!/usr/bin/make -f\n%:\n\tdh $@\n",
        "init/main.c": "int main(void) { return 0; }\n",
    }
    for name, text in files.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text)
    (src / "debian" / "rules").chmod(0o755)
    pkg = root / "pkg"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN" / "control").write_text(
        "Package: linux-source-6.12\nVersion: 6.12.117-1~deb12u1\nArchitecture: all\n"
        "Maintainer: Test <test@example.org>\nDescription: Linux kernel source (fake)\n")
    tarball = pkg / TARBALL
    tarball.parent.mkdir(parents=True)
    subprocess.run(["tar", "-cJf", str(tarball), "-C", str(src.parent), TOPDIR], check=True)
    tar_sha = sha256(tarball)
    if not with_tarball:
        tarball.unlink()
    deb = root / "linux-source-6.12_6.12.117-1~deb12u1_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "-b", str(pkg), str(deb)],
                   check=True, capture_output=True)
    return FakeDeb(deb, sha256(deb), tar_sha)


@pytest.fixture(scope="session")
def fake_deb(tmp_path_factory: pytest.TempPathFactory) -> FakeDeb:
    return build_deb(tmp_path_factory.mktemp("deb"))


def write_manifest(root: Path, deb_sha256: str, tarball_sha256: str,
                   topdir: str = TOPDIR) -> manifest.Manifest:
    path = root / "kernel-tree" / "manifest.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"""\
[base]
kernel_version = "6.12.117"
package = "linux-source-6.12"
debian_version = "6.12.117-1~deb12u1"
deb_sha256 = "{deb_sha256}"
tarball = "{TARBALL}"
tarball_sha256 = "{tarball_sha256}"
topdir = "{topdir}"
tag = "{TAG}"
""")
    return manifest.load(path)


def good_manifest(root: Path, fake: FakeDeb) -> manifest.Manifest:
    return write_manifest(root, fake.deb_sha256, fake.tarball_sha256)


def fetch(man: manifest.Manifest, dest: Path, deb: Path) -> tuple[tree.Tree, str]:
    stream = io.StringIO()
    result = tree.fetch(man, dest=dest, deb=deb, progress=Progress(stream=stream), min_files=3)
    return result, stream.getvalue()


def test_fetch_imports_tagged_tree(tmp_path: Path, fake_deb: FakeDeb) -> None:
    man = good_manifest(tmp_path, fake_deb)
    dest = tmp_path / "kernel-tree" / "linux"
    result, log = fetch(man, dest, fake_deb.deb)
    assert result == tree.Tree(dest.resolve(), TAG)
    tracked = git(dest, "ls-files").splitlines()
    assert sorted(tracked) == [".gitignore", "Kconfig", "Makefile", "debian/rules",
                               "init/main.c"]
    assert git(dest, "status", "--porcelain", "--ignored") == ""
    assert git(dest, "rev-parse", "HEAD") == git(dest, "rev-parse", f"{TAG}^{{commit}}")
    assert git(dest, "cat-file", "-t", TAG) == "tag"
    assert git(dest, "log", "-1", "--format=%an <%ae> %aI|%cn %cI") == (
        "kseries import <kseries@invalid> 2000-01-01T00:00:00+00:00|"
        "kseries import 2000-01-01T00:00:00+00:00")
    assert "6.12.117" in git(dest, "log", "-1", "--format=%s")
    assert fake_deb.tarball_sha256 in git(dest, "log", "-1", "--format=%b")
    # Only the trap lines are gone from .gitignore; the kernel's own rules stay.
    assert (dest / ".gitignore").read_text() == "*.o\n*.ko\n/vmlinux\n\n# Debian packaging\n"
    assert git(dest, "ls-files", "-s", "debian/rules").startswith("100755 ")
    assert result.base_commit() == git(dest, "rev-parse", "HEAD")
    assert "imported 5 files" in log
    assert not list(dest.parent.glob(".fetch-*"))
    # No `git gc --auto` to start in the background during the first build.
    assert git(dest, "config", "--get", "gc.auto") == "0"


def test_import_is_reproducible(tmp_path: Path, fake_deb: FakeDeb) -> None:
    man = good_manifest(tmp_path, fake_deb)
    one, _ = fetch(man, tmp_path / "one", fake_deb.deb)
    next_second()
    two, _ = fetch(man, tmp_path / "two", fake_deb.deb)
    assert one.base_commit() == two.base_commit()
    assert git(one.path, "rev-parse", TAG) == git(two.path, "rev-parse", TAG)


def test_second_fetch_is_a_no_op(tmp_path: Path, fake_deb: FakeDeb) -> None:
    man = good_manifest(tmp_path, fake_deb)
    dest = tmp_path / "linux"
    fetch(man, dest, fake_deb.deb)
    head = git(dest, "rev-parse", "HEAD")
    (dest / "init" / "main.c").write_text("/* local work */\n")
    again, log = fetch(man, dest, fake_deb.deb)
    assert "nothing to do" in log
    assert "git import" not in log
    assert again.path == dest.resolve()
    assert git(dest, "rev-parse", "HEAD") == head
    # The user's uncommitted work is untouched.
    assert (dest / "init" / "main.c").read_text() == "/* local work */\n"


def test_empty_dest_dir_is_used(tmp_path: Path, fake_deb: FakeDeb) -> None:
    man = good_manifest(tmp_path, fake_deb)
    dest = tmp_path / "linux"
    dest.mkdir()
    fetch(man, dest, fake_deb.deb)
    assert (dest / "Makefile").is_file()


def test_deb_hash_mismatch(tmp_path: Path, fake_deb: FakeDeb) -> None:
    man = write_manifest(tmp_path, "0" * 64, fake_deb.tarball_sha256)
    dest = tmp_path / "linux"
    with pytest.raises(UsageError) as err:
        fetch(man, dest, fake_deb.deb)
    assert err.value.message.startswith(f"package {fake_deb.deb} has sha256 ")
    assert f"{fake_deb.deb_sha256}, the manifest pins {'0' * 64}" in err.value.message
    assert "manifest.toml" in err.value.hint
    assert not dest.exists()


def test_tarball_hash_mismatch(tmp_path: Path, fake_deb: FakeDeb) -> None:
    man = write_manifest(tmp_path, fake_deb.deb_sha256, "f" * 64)
    dest = tmp_path / "linux"
    with pytest.raises(UsageError) as err:
        fetch(man, dest, fake_deb.deb)
    assert err.value.message.startswith("tarball ")
    assert f"has sha256 {fake_deb.tarball_sha256}, the manifest pins {'f' * 64}" in str(err.value)
    assert not dest.exists()
    assert not list(tmp_path.glob(".fetch-*"))


def test_deb_without_tarball(tmp_path: Path) -> None:
    fake = build_deb(tmp_path / "build", with_tarball=False)
    man = good_manifest(tmp_path, fake)
    with pytest.raises(UsageError, match=re.escape(f"has no {TARBALL}")):
        fetch(man, tmp_path / "linux", fake.deb)


def test_wrong_topdir(tmp_path: Path, fake_deb: FakeDeb) -> None:
    man = write_manifest(tmp_path, fake_deb.deb_sha256, fake_deb.tarball_sha256,
                         topdir="linux-6.12")
    with pytest.raises(UsageError, match=re.escape("did not unpack to linux-6.12/")):
        fetch(man, tmp_path / "linux", fake_deb.deb)
    assert not (tmp_path / "linux").exists()


def test_missing_deb_argument(tmp_path: Path, fake_deb: FakeDeb) -> None:
    man = good_manifest(tmp_path, fake_deb)
    missing = tmp_path / "nope.deb"
    with pytest.raises(UsageError, match=re.escape(f"--deb {missing} does not exist")):
        fetch(man, tmp_path / "linux", missing)


def test_unrelated_dest_is_kept(tmp_path: Path, fake_deb: FakeDeb) -> None:
    man = good_manifest(tmp_path, fake_deb)
    dest = tmp_path / "linux"
    dest.mkdir()
    (dest / "precious.txt").write_text("mine\n")
    with pytest.raises(UsageError) as err:
        fetch(man, dest, fake_deb.deb)
    assert f"is not an import of {TAG}" in err.value.message
    assert "nothing is deleted" in err.value.hint
    assert (dest / "precious.txt").read_text() == "mine\n"
    assert sorted(p.name for p in dest.iterdir()) == ["precious.txt"]


def test_dest_that_is_a_file_is_kept(tmp_path: Path, fake_deb: FakeDeb) -> None:
    """`kseries tree fetch --tree FILE` must be a one-line error, not a traceback."""
    man = good_manifest(tmp_path, fake_deb)
    dest = tmp_path / "linux"
    dest.write_text("not a directory\n")
    with pytest.raises(UsageError):
        fetch(man, dest, fake_deb.deb)
    assert dest.read_text() == "not a directory\n"


def test_other_git_repo_as_dest_is_kept(tmp_path: Path, fake_deb: FakeDeb) -> None:
    man = good_manifest(tmp_path, fake_deb)
    dest = init_repo(tmp_path / "linux")
    (dest / "README").write_text("x\n")
    git(dest, "add", "README")
    git(dest, "commit", "-q", "-m", "other")
    head = git(dest, "rev-parse", "HEAD")
    with pytest.raises(UsageError, match="is not an import"):
        fetch(man, dest, fake_deb.deb)
    assert git(dest, "rev-parse", "HEAD") == head


def test_too_few_files_is_reported(tmp_path: Path, fake_deb: FakeDeb) -> None:
    man = good_manifest(tmp_path, fake_deb)
    with pytest.raises(InfraError, match="only 5 files were added"):
        tree.fetch(man, dest=tmp_path / "linux", deb=fake_deb.deb,
                   progress=Progress(stream=io.StringIO()), min_files=6)
    assert not (tmp_path / "linux").exists()


def test_open_tree_missing_path(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as err:
        tree.open_tree(tmp_path / "nope", "v1")
    assert err.value.message == f"kernel tree {tmp_path / 'nope'} does not exist"
    assert "kseries tree fetch" in err.value.hint


def test_open_tree_not_git(tmp_path: Path) -> None:
    (tmp_path / "Makefile").write_text("all:\n")
    with pytest.raises(UsageError) as err:
        tree.open_tree(tmp_path, "v1")
    assert err.value.message == f"{tmp_path} is not a git repository"
    assert "--tree" in err.value.hint


def test_open_tree_not_a_kernel(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    with pytest.raises(UsageError, match="does not look like a kernel tree") as err:
        tree.open_tree(repo, "v1")
    assert "top of a kernel source tree" in err.value.hint


def test_open_tree_bad_base(tmp_path: Path, fake_deb: FakeDeb) -> None:
    man = good_manifest(tmp_path, fake_deb)
    dest = tmp_path / "linux"
    fetch(man, dest, fake_deb.deb)
    assert tree.open_tree(dest, TAG).base_commit() == git(dest, "rev-parse", "HEAD")
    with pytest.raises(UsageError) as err:
        tree.open_tree(dest, "v9.9-nope")
    assert err.value.message == f"base ref 'v9.9-nope' does not exist in {dest.resolve()}"
    assert "--base" in err.value.hint


def test_check_hash_and_sha256_file(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(b"x" * (3 << 20))
    assert tree.sha256_file(path) == hashlib.sha256(b"x" * (3 << 20)).hexdigest()
    tree.check_hash(path, tree.sha256_file(path), "blob")
    with pytest.raises(UsageError, match="sha256"):
        tree.check_hash(path, "0" * 64, "blob")
