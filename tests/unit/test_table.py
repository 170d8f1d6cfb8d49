"""table: the one plain-text table renderer, and the tables built on it."""

from __future__ import annotations

import pytest

from kseries import pipeline, table
from kseries.table import Column


def test_columns_fit_their_widest_cell_and_align() -> None:
    text = table.render([Column("name"), Column("n", ">"), Column("note")],
                        [("a", 1, "x"), ("longer", 1234, "")])
    assert text.splitlines() == ["name       n  note",
                                 "a          1  x",
                                 "longer  1234"]


def test_a_least_width_holds_until_a_cell_is_wider() -> None:
    cols = [Column("#", ">", 3), Column("s", width=6), Column("c")]
    assert table.render(cols, [("01", "ab", "ok")]).splitlines() == [
        "  #  s       c", " 01  ab      ok"]
    assert table.render(cols, [("1234", "abcdefgh", "ok")]).splitlines() == [
        "   #  s         c", "1234  abcdefgh  ok"]


def test_rules_under_the_header_and_above_the_footer() -> None:
    cols = [Column("a"), Column("bb")]
    line = table.render(cols, [("xyz", "1")], footer=[("t", "2")], rule=True)
    assert line.splitlines() == ["a    bb", "-------", "xyz  1", "-------", "t    2"]
    indented = table.render(cols, [("xyz", "1")], indent="> ", rule=True)
    assert indented.splitlines() == ["> a    bb", "> -------", "> xyz  1"]
    bare = table.render(cols, [("xyz", "1")], footer=[("t", "2")])
    assert bare.splitlines() == ["a    bb", "xyz  1", "t    2"]


def test_no_header_gap_and_indent() -> None:
    text = table.render([Column(width=6), Column()], [("qemu", "/b/q"), ("qos", "/b/t")],
                        gap=" ", indent="  ", header=False)
    assert text == "  qemu   /b/q\n  qos    /b/t"


def test_no_line_ends_in_blanks() -> None:
    text = table.render([Column("a"), Column("b", width=10)], [("x", ""), ("y", "z")],
                        indent="  ", rule=True)
    assert all(line == line.rstrip() for line in text.splitlines())


def test_a_row_of_the_wrong_length_is_an_error() -> None:
    with pytest.raises(ValueError, match="2 cells for 3 columns"):
        table.render([Column(), Column(), Column()], [("a", "b")])
    with pytest.raises(ValueError, match="1 cells for 2 columns"):
        table.markdown(["a", "b"], [("x",)])


def test_markdown() -> None:
    assert table.markdown(["a", "b c"], [(1, "x"), ("", 2.5)]) == (
        "| a | b c |\n|---|---|\n| 1 | x |\n|  | 2.5 |")


def test_the_main_jobs_stage_table() -> None:
    report = pipeline.Report([pipeline.FetchStage("pass", 1.25, "nothing to do"),
                              pipeline.KunitStage("not run", 0.0),
                              pipeline.BootStage("fail", 1234.5, "splat")])
    assert report.table().splitlines() == [
        "fetch  PASS         1.2s  nothing to do",
        "kunit  NOT RUN      0.0s",
        "boot   FAIL      1234.5s  splat"]
