"""The opt-in coccinelle check end to end on the synthetic tree (real gcc and
make; the tree's stand-in scripts/coccicheck and a fake spatch on PATH), and
the coccicheck report parser."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from helpers import fake_path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "check"))
import synth
from synth import cells, result, run

from kseries.check import diagnostics

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None,
                                reason="needs gcc and make")

SPATCH = """\
# A stand-in for spatch: reports every memset( of the file it is given.
for file; do :; done
grep -n 'memset(' "$file" | while IFS=: read -r n _; do
	echo "$file:$n:1-7: WARNING: fake: use kzalloc rather than memset on line $n"
done
"""

MEMSET = "void lib_a_clear(char *p);\n\nvoid lib_a_clear(char *p)\n{\n" \
         "\t__builtin_memset(p, 0, 4);\n}\n"


def test_coccinelle_reports_new_findings_only(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", fake_path(tmp_path, {"spatch": SPATCH}))
    tree, patches = synth.make_series(tmp_path, patch2_extra=MEMSET)
    rc, report = run(tmp_path, tree, "--keep-going", "--only", "coccinelle", str(patches),
                     config=synth.write_config(tmp_path / "cs.toml", ["apply"]))
    assert rc == 0  # findings are warnings by default
    assert cells(report, "coccinelle") == ["success", "warning", "success"]
    desc = str(result(report, 2, "coccinelle")["description"])
    assert desc == ("1 new coccinelle finding(s) in 1 file(s); first: lib/a.c:13: coccinelle: "
                    "WARNING: fake: use kzalloc rather than memset on line 13")
    # Patch 3 moves it down (and the line in the message with it): not new.
    assert result(report, 3, "coccinelle")["description"] == (
        "2 file(s) checked, no new coccinelle findings (1 already there)")
    log = (tmp_path / "out" / str(result(report, 2, "coccinelle")["log"])).read_text()
    assert " C=1 CHECK=" in log and "scripts/coccicheck MODE=report lib/a.o" in log


def test_coccinelle_without_spatch_cannot_run(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", fake_path(tmp_path, {}, hide=("spatch",)))
    tree, patches = synth.make_series(tmp_path, patch2_extra=MEMSET)
    rc, report = run(tmp_path, tree, "--keep-going", "--only", "coccinelle", str(patches),
                     config=synth.write_config(tmp_path / "cs.toml", ["apply"]))
    assert rc == 0
    assert cells(report, "coccinelle") == ["skip", "skip", "skip"]
    assert result(report, 2, "coccinelle")["description"] == (
        "cannot run: spatch is not installed (apt-get install coccinelle)")



def test_cocci_report_lines_parse_and_key_without_line_numbers() -> None:
    text = ("/usr/bin/spatch -D report --cocci-file x.cocci drivers/a.c\n"
            "warning: line 140: should noop_llseek be a metavariable?\n"
            "drivers/a.c:12:5-11: ERROR: missing put on line 30, but ...\n"
            "drivers/a.c:40:1-3: WARNING: opportunity for kmemdup\n")
    found = diagnostics.parse_cocci(text)
    assert [(d.file, d.line, d.message) for d in found] == [
        ("drivers/a.c", 12, "ERROR: missing put on line 30, but ..."),
        ("drivers/a.c", 40, "WARNING: opportunity for kmemdup")]
    moved = diagnostics.parse_cocci("drivers/a.c:15:5-11: ERROR: missing put on line 33, but "
                                    "...\n")
    assert diagnostics.new_since(found, moved) == []
