"""submit.toml's [submit] section, and the subject prefixes and changelog rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from kseries.errors import UsageError
from kseries.submit import cli, config

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "submit"
ROOT = Path(__file__).resolve().parents[2]


def test_fixture_and_project_files_load() -> None:
    cfg = config.load(FIX / "submit.toml")
    assert cfg.to == ("Series Lead <lead@example.org>",)
    assert cfg.changes["2"].startswith("- foo: handle errors")
    assert cfg.check_json is None  # the layout decides: paths.Places.check_report
    project = config.load(ROOT / "submit.toml")
    assert project.path == ROOT / "submit.toml"


def test_missing_file_gives_defaults(tmp_path: Path) -> None:
    assert config.load(tmp_path / "none.toml") == config.SubmitConfig()


@pytest.mark.parametrize(("text", "words"), [
    ("[submit]\nto = 3\n", "must be a string or a list"),
    ("[submit]\nbogus = 1\n", "unknown key"),
    ("[submit]\noutput = ''\n", "non-empty string"),
    ("[submit]\nto = [\"a@b\", 3]\n", r"submit\.to\[1\] must be a string, not 3"),
    ("[submit.changes]\nv2 = 2\n", r"submit\.changes\.v2 must be a string, not 2"),
    ("submit = 1\n", "must be a table"),
    ("[submit\n", "not valid TOML"),
])
def test_bad_files(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "submit.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=words):
        config.load(path)


@pytest.mark.parametrize(("cfg", "rfc", "extra", "expected"), [
    ((), False, [], []),
    ((), True, [], ["RFC", "PATCH"]),
    (("net-next",), False, [], ["PATCH", "net-next"]),
    (("RFC",), False, ["net-next", "PATCH"], ["RFC", "PATCH", "net-next"]),
])
def test_prefixes(cfg: tuple[str, ...], rfc: bool, extra: list[str],
                  expected: list[str]) -> None:
    assert cli.prefixes(config.SubmitConfig(prefixes=cfg), rfc, extra) == expected


def test_changelog(tmp_path: Path) -> None:
    cfg = config.SubmitConfig(changes={"2": "- two", "3": "- three"})
    assert cli.changelog(cfg, 1, None) == ()
    assert cli.changelog(cfg, 3, None) == ((3, "- three"), (2, "- two"))
    given = tmp_path / "log"
    given.write_text("- from a file\n")
    assert cli.changelog(cfg, 2, given) == ((2, "- from a file"),)
    with pytest.raises(UsageError, match="version 4 has no changelog"):
        cli.changelog(cfg, 4, None)
