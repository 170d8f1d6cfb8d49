"""tomlconfig: the one strict, dataclass-driven reader of every TOML file."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import pytest

from kseries import tomlconfig as tc
from kseries.errors import UsageError


class Level(enum.StrEnum):
    LOW = "low"
    HIGH = "high"
    NEVER = "never"


@dataclass(frozen=True)
class Build:
    make_flags: tuple[str, ...] = ("W=1",)
    fragments: tuple[Path, ...] = ()
    level: Annotated[Level, tc.one_of(Level.LOW, Level.HIGH)] = Level.LOW
    jobs: Annotated[int, tc.POSITIVE] = 2
    ratio: float = 0.5
    strict: bool = True


@dataclass(frozen=True)
class Checks:
    build: Build = field(default_factory=Build)
    names: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Shape:
    source: Path
    name: tc.NonEmptyStr
    checks: Checks = field(default_factory=Checks)
    to: str | tuple[str, ...] = ()
    extra: Path | None = None
    sha: Annotated[str, tc.SHA256] = "0" * 64
    links: dict[str, str] = field(default_factory=dict)


def load(tmp_path: Path, text: str) -> Shape:
    path = tmp_path / "x.toml"
    path.write_text(text)
    return tc.load(Shape, path, what="test config", hint="see the docs",
                   fixed={"source": path})


def problem(tmp_path: Path, text: str) -> UsageError:
    with pytest.raises(UsageError) as err:
        load(tmp_path, text)
    assert "\n" not in str(err.value)
    assert err.value.exit_code == 2
    return err.value


def test_defaults_and_values(tmp_path: Path) -> None:
    cfg = load(tmp_path, 'name = "n"\n')
    assert cfg == Shape(source=tmp_path / "x.toml", name="n")
    cfg = load(tmp_path, 'name = "n"\nto = "a@b"\nextra = "sub/f"\nsha = "' + "a" * 64 + '"\n'
                         '[checks]\nnames = ["x", "y"]\n'
                         '[checks.build]\nmake_flags = []\nfragments = ["f.config", "/abs"]\n'
                         'level = "high"\njobs = 8\nratio = 1\nstrict = false\n'
                         '[links]\n"/usr/bin/a" = "b"\n')
    assert cfg.to == "a@b"
    assert cfg.extra == tmp_path / "sub" / "f"  # relative to the file's directory
    assert cfg.checks.names == ["x", "y"]
    assert cfg.checks.build == Build(make_flags=(), level=Level.HIGH, jobs=8, ratio=1.0,
                                     strict=False,
                                     fragments=(tmp_path / "f.config", Path("/abs")))
    assert cfg.links == {"/usr/bin/a": "b"}
    assert load(tmp_path, 'name = "n"\nto = ["a", "b"]\n').to == ("a", "b")


def test_unknown_key(tmp_path: Path) -> None:
    err = problem(tmp_path, 'name = "n"\nnmae = "typo"\n')
    assert err.message == f"test config {tmp_path / 'x.toml'}: unknown key nmae"
    assert "the keys: name, checks, to, extra, sha, links" in err.hint
    assert "see the docs" in err.hint


def test_unknown_nested_key(tmp_path: Path) -> None:
    err = problem(tmp_path, 'name = "n"\n[checks.build]\nmake_flagz = []\n')
    assert err.message.endswith(": unknown key checks.build.make_flagz")
    assert "in [checks.build]" in err.hint and "make_flags" in err.hint


def test_a_fixed_field_is_not_a_key(tmp_path: Path) -> None:
    assert problem(tmp_path, 'name = "n"\nsource = "x"\n').message.endswith(
        "unknown key source")


@pytest.mark.parametrize(("text", "words", "hint"), [
    ("name = 3", 'name must be a non-empty string, not 3', 'write name = "..."'),
    ('name = ""', 'name must be a non-empty string, not ""', 'write name = "..."'),
    ('name = "n"\nto = 3', "to must be a string or a list of strings, not 3", "write to ="),
    ('name = "n"\nchecks = 1', "checks must be a table, not 1", "write [checks]"),
    ('name = "n"\nextra = true', "extra must be a path (a string), not true", "write extra ="),
    ('name = "n"\nextra = ""', 'extra must be a path (a string), not ""', "write extra ="),
    ('name = "n"\nsha = "ABC"', 'sha must be a sha256 (64 lowercase hex digits), not "ABC"',
     "sha256sum"),
    ('name = "n"\n[links]\n"/a/b.c" = 1', 'links."/a/b.c" must be a string, not 1',
     'write each value as "..."'),
])
def test_wrong_type(tmp_path: Path, text: str, words: str, hint: str) -> None:
    err = problem(tmp_path, text + "\n")
    assert err.message == f"test config {tmp_path / 'x.toml'}: {words}"
    assert hint in err.hint


@pytest.mark.parametrize(("text", "words", "hint"), [
    ("make_flags = 3", "checks.build.make_flags must be a list of strings, not 3",
     'write make_flags = ["...", ...]'),
    ('make_flags = ["a", 3]', "checks.build.make_flags[1] must be a string, not 3",
     'write each item as "..."'),
    ('level = "never"', 'checks.build.level must be "low" or "high", not "never"',
     'write level = "low"'),
    ('level = 1', 'checks.build.level must be "low" or "high", not 1', 'write level = "low"'),
    ("jobs = 0", "checks.build.jobs must be a positive integer, not 0", "write jobs = 1"),
    ("jobs = true", "checks.build.jobs must be a positive integer, not true", "write jobs = 1"),
    ('ratio = "x"', 'checks.build.ratio must be a number, not "x"', "write ratio = 1.0"),
    ("strict = 1", "checks.build.strict must be true or false, not 1", "write strict = true"),
])
def test_wrong_type_of_a_nested_key(tmp_path: Path, text: str, words: str, hint: str) -> None:
    err = problem(tmp_path, f'name = "n"\n[checks.build]\n{text}\n')
    assert err.message.endswith(f": {words}")
    assert err.hint.startswith(hint) and err.hint.endswith("; see the docs")


def test_missing_required_key(tmp_path: Path) -> None:
    err = problem(tmp_path, "[checks]\n")
    assert err.message == f"test config {tmp_path / 'x.toml'}: name is missing " \
                          "(a non-empty string)"
    assert err.hint.startswith('add name = "..."')


@dataclass(frozen=True)
class Pin:
    tag: str


@dataclass(frozen=True)
class File:
    base: Pin


def test_missing_required_nested_key(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text("")
    with pytest.raises(UsageError) as err:
        tc.parse(File, {}, path)
    assert err.value.message == f"{path}: base is missing (a table)"
    assert err.value.hint == "add [base]"
    with pytest.raises(UsageError) as err:
        tc.parse(File, {"base": {}}, path)
    assert err.value.message == f"{path}: base.tag is missing (a string)"
    assert err.value.hint == 'add tag = "..." in [base]'


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as err:
        tc.load(Shape, tmp_path / "nope.toml", what="test config", missing_hint="create it")
    assert err.value.message == f"test config {tmp_path / 'nope.toml'} does not exist"
    assert err.value.hint == "create it"


def test_a_directory_given_as_the_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as err:
        tc.load(Shape, tmp_path, what="test config", file_name="x.toml")
    assert err.value.message == f"test config {tmp_path} is a directory, not a file"
    assert err.value.hint == f"give the file: {tmp_path / 'x.toml'}"


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "x.toml"
    path.write_text('name = "n"\n')

    def denied(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(UsageError) as err:
        tc.load(Shape, path, what="test config")
    assert err.value.message == f"test config {path} cannot be read (permission denied)"
    monkeypatch.undo()
    loop = tmp_path / "loop.toml"
    loop.symlink_to(loop)  # ELOOP: unreadable even for root
    with pytest.raises(UsageError) as err:
        tc.load(Shape, loop, what="test config")
    assert err.value.message.startswith(f"test config {loop} cannot be read: ")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("raw", [b"name = = 1\n", b"[checks\n", b'name = "\xff"\n'])
def test_invalid_toml(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "x.toml"
    path.write_bytes(raw)
    with pytest.raises(UsageError) as err:
        tc.load(Shape, path, what="test config")
    assert err.value.message.startswith(f"test config {path} is not valid TOML: ")
    assert "\n" not in str(err.value)


def test_expected_words() -> None:
    assert tc.expected(tuple[Path, ...]) == "a list of paths (strings)"
    assert tc.expected(dict[str, str]) == "a table of strings"
    assert tc.expected(list[bool]) == "a list of true or false values"
    assert tc.expected(list[list[int]]) == "a list of lists of integers"
    assert tc.expected(Annotated[list[tc.NonEmptyStr], tc.NON_EMPTY]) == \
        "a non-empty list of non-empty strings"
    assert tc.expected(Annotated[tuple[str, ...], tc.NON_EMPTY]) == \
        "a non-empty list of strings"
    assert tc.expected(Level) == '"low" or "high" or "never"'
