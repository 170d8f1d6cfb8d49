"""report.html as a browser sees it: headless Chromium renders a synthetic report.

Skipped (never passed) when no Chromium is installed: Debian's
``chromium`` package provides it.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "check"))
import browser

from kseries.check import reports
from kseries.check.model import PatchInfo, PatchReport, Result, SeriesReport, State, Subtest

CHROMIUM = browser.find()
pytestmark = pytest.mark.skipif(CHROMIUM is None,
                                reason="no Chromium (apt-get install chromium)")

CHECKS = [("apply", "patch", "git am"), ("checkpatch", "patch", "checkpatch.pl"),
          ("build", "patch", "W=1 build"), ("kunit", "patch", "KUnit"),
          ("diffstat", "tip", "the series' diffstat")]
# (state or None where the check does not apply) per patch, in CHECKS order.
GRID: list[list[State | None]] = [
    [State.SUCCESS, State.SUCCESS, State.SUCCESS, State.SKIP, None],
    [State.SUCCESS, State.WARNING, State.FAIL, State.FAIL, None],
    [State.SUCCESS, State.SUCCESS, State.SUCCESS, State.SUCCESS, State.SUCCESS],
]
# report.html.j2's CSS background of each state's cell.
COLOURS = {State.SUCCESS: (0xD8, 0xF0, 0xD8), State.WARNING: (0xFB, 0xEE, 0xB8),
           State.FAIL: (0xF5, 0xC4, 0xC4), State.SKIP: (0xEE, 0xEE, 0xEE)}


def make_report(out: Path) -> SeriesReport:
    rep = SeriesReport(tree="/t", base="base", base_commit="f" * 40, source="patches/",
                       checks=CHECKS, started="2026-01-01T00:00:00+00:00", seconds=61.0)
    for i, states in enumerate(GRID, 1):
        info = PatchInfo(index=i, name=f"{i:04d}-lib-change-{i}.patch",
                         path=Path(f"/p/{i:04d}.patch"), subject=f"lib: change {i} <&>",
                         author="A <a@example.org>", patch_id=f"{i:02d}" * 20,
                         message_key="cd" * 32)
        row = PatchReport(info, commit=f"{i}" * 40)
        for (name, _, _), state in zip(CHECKS, states, strict=True):
            if state is None:
                continue
            log = f"logs/{i:02d}-{name}.log"
            (out / log).parent.mkdir(parents=True, exist_ok=True)
            (out / log).write_text(f"log of {name} on patch {i}\n")
            subtests = [Subtest("vhost_blk.ok", State.SUCCESS),
                        Subtest("vhost_blk.bad", State.FAIL)] if name == "kunit" else []
            row.results[name] = Result(name, state, f"{name} said {state.value} on {i}",
                                       1.5, log, subtests=subtests)
        rep.patches.append(row)
    return rep


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SeriesReport]:
    out = tmp_path_factory.mktemp("html-report")
    report = make_report(out)
    written = reports.write_all(report, out, None)
    return written["html"], report


def test_matrix_rows_columns_and_links(rendered: tuple[Path, SeriesReport],
                                       tmp_path: Path) -> None:
    page, report = rendered
    assert CHROMIUM is not None
    dom = browser.dump_dom(CHROMIUM, page, tmp_path / "profile")
    verdict = dom.by_id("verdict")
    assert verdict is not None and verdict.all_text() == "FAIL"
    matrix = dom.by_id("matrix")
    assert matrix is not None and matrix.tag == "table"
    heads = [th.all_text().strip() for th in matrix.iter("thead")[0].iter("th")]
    assert heads == ["#", "patch", "apply", "checkpatch", "build", "kunit", "diffstat (tip)"]
    rows = matrix.iter("tbody")[0].iter("tr")
    assert len(rows) == len(GRID)
    for row, states, patch in zip(rows, GRID, report.patches, strict=True):
        cells = row.iter("td")
        assert cells[0].all_text().strip() == patch.patch.label
        assert cells[1].all_text().strip() == patch.patch.subject  # escaped, shown as is
        for (name, _, _), state, cell in zip(CHECKS, states, cells[2:], strict=True):
            where = f"patch {patch.patch.label} {name}"
            if state is None:
                assert cell.attrs["class"] == "na", where
                assert not cell.iter("a"), where
                continue
            assert cell.attrs["class"] == state.value, where
            assert cell.attrs["title"] == f"{name} said {state.value} on {patch.patch.index}"
            links = cell.iter("a")
            assert len(links) == 1, where
            assert links[0].all_text() == state.value, where
            target = page.parent / links[0].attrs["href"]
            assert target.read_text() == f"log of {name} on patch {patch.patch.index}\n"


def test_cells_are_painted_in_their_state_colours(rendered: tuple[Path, SeriesReport],
                                                  tmp_path: Path) -> None:
    page, _ = rendered
    assert CHROMIUM is not None
    pixels = Counter(browser.screenshot(CHROMIUM, page, tmp_path / "profile"))
    cells = Counter(s for states in GRID for s in states if s is not None)
    per_cell = {state: pixels[rgb] / cells[state] for state, rgb in COLOURS.items()}
    # Every cell is a box of at least ~40x15 px of its colour (text takes some).
    for state, area in per_cell.items():
        assert area > 600, f"{state.value} cells: {area:.0f} px each ({per_cell})"
