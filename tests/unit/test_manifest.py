"""kernel-tree/manifest.toml: the real pin parses, bad ones are named."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kseries import manifest
from kseries.errors import UsageError

REAL = Path(__file__).resolve().parents[2] / "kernel-tree" / "manifest.toml"
HEX64 = re.compile(r"^[0-9a-f]{64}$")

GOOD = """\
[base]
kernel_version = "6.12.117"
package = "linux-source-6.12"
debian_version = "1:6.12.117-1~deb12u1"
deb_sha256 = "{a}"
tarball = "usr/src/linux-source-6.12.tar.xz"
tarball_sha256 = "{b}"
topdir = "linux-source-6.12"
tag = "v6.12.117-test"
""".format(a="a" * 64, b="b" * 64)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "kernel-tree" / "manifest.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_real_manifest_parses() -> None:
    man = manifest.load(REAL)
    assert man.kernel_version == "6.12.117"
    assert man.package == "linux-source-6.12"
    assert HEX64.match(man.deb_sha256)
    assert HEX64.match(man.tarball_sha256)
    assert man.deb_sha256 != man.tarball_sha256
    assert man.topdir == "linux-source-6.12"
    assert man.tarball.endswith(".tar.xz")
    assert man.tag
    assert man.branch == "vhost-blk"
    assert man.patches == "patches"
    assert man.path == REAL.resolve()
    assert man.deb_name == f"linux-source-6.12_{man.debian_version}_all.deb"


def test_minimal_manifest_defaults_and_deb_name(tmp_path: Path) -> None:
    man = manifest.load(write(tmp_path, GOOD))
    assert man.branch == "vhost-blk"
    assert man.patches == "patches"
    # apt-get download escapes the epoch colon in the file name.
    assert man.deb_name == "linux-source-6.12_1%3a6.12.117-1~deb12u1_all.deb"


def test_series_table_overrides(tmp_path: Path) -> None:
    man = manifest.load(write(tmp_path, GOOD + '\n[series]\nbranch = "b"\npatches = "p"\n'))
    assert (man.branch, man.patches) == ("b", "p")


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(UsageError) as err:
        manifest.load(missing)
    assert err.value.message == f"manifest {missing} does not exist"
    assert "--manifest" in err.value.hint


def test_invalid_toml(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "\nthis is = = not toml\n")
    with pytest.raises(UsageError) as err:
        manifest.load(path)
    assert f"manifest {path} is not valid TOML" in err.value.message


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_bytes(b"[base]\nkernel_version = \"\xff\"\n")
    with pytest.raises(UsageError, match="is not valid TOML"):
        manifest.load(path)


def test_no_base_table(tmp_path: Path) -> None:
    path = write(tmp_path, '[series]\nbranch = "x"\n')
    with pytest.raises(UsageError) as err:
        manifest.load(path)
    assert err.value.message == f"manifest {path}: base is missing (a table)"
    assert err.value.hint == "add [base]"


@pytest.mark.parametrize("key", ["kernel_version", "deb_sha256", "topdir", "tag"])
def test_missing_base_key(tmp_path: Path, key: str) -> None:
    text = "\n".join(line for line in GOOD.splitlines() if not line.startswith(f"{key} "))
    path = write(tmp_path, text + "\n")
    with pytest.raises(UsageError) as err:
        manifest.load(path)
    expected = ("a sha256 (64 lowercase hex digits)" if key.endswith("sha256")
                else "a non-empty string")
    assert err.value.message == f"manifest {path}: base.{key} is missing ({expected})"
    assert f"add {key} =" in err.value.hint and "in [base]" in err.value.hint


def test_base_key_of_wrong_type(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('tag = "v6.12.117-test"', "tag = 6"))
    with pytest.raises(UsageError, match=r"base\.tag must be a non-empty string, not 6 "):
        manifest.load(path)
    path = write(tmp_path, GOOD.replace('tag = "v6.12.117-test"', 'tag = ""'))
    with pytest.raises(UsageError, match=r'base\.tag must be a non-empty string, not "" '):
        manifest.load(path)


@pytest.mark.parametrize("bad", ["z" * 64, "a" * 63, "A" * 64, "a" * 64 + " "])
def test_sha256_not_hex(tmp_path: Path, bad: str) -> None:
    path = write(tmp_path, GOOD.replace("b" * 64, bad))
    with pytest.raises(UsageError) as err:
        manifest.load(path)
    assert err.value.message.startswith(
        f"manifest {path}: base.tarball_sha256 must be a sha256 (64 lowercase hex digits), "
        "not \"")
    assert "sha256sum" in err.value.hint


def test_series_must_be_a_table(tmp_path: Path) -> None:
    path = write(tmp_path, 'series = "x"\n' + GOOD)
    with pytest.raises(UsageError, match=r"series must be a table"):
        manifest.load(path)


def test_series_values_must_be_strings(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "\n[series]\nbranch = 1\n")
    with pytest.raises(UsageError, match=r"series\.branch must be a non-empty string, not 1"):
        manifest.load(path)
