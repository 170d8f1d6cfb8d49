"""The integration tier's shared pieces: the main job, the order, the times.

Every job of this tier works on one scratch worktree of the pinned tree
(build/series-tree) and one build of each configuration: the main job
builds the debug kernel and the UML KUnit kernel first, the in-guest
suite boots that kernel, and check-series then finds both build
directories warm (kbuild only rebuilds incrementally when the source tree
keeps its path).  So the main job runs first, whichever test asks for it.

Each test's wall time (its fixtures included, so the first test of a
file carries the file's big fixture) is appended to the tier table that
``tools/run test`` prints at the end (``$KSERIES_CI_TIMES``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
KSERIES = [sys.executable, str(ROOT / "tools" / "bin" / "kseries")]

# Main job and in-guest suite first (the suite boots the kernel the main
# job built, before anything else writes to its build directory), then
# check-series on the warm builds.
ORDER = ["test_pipeline.py", "test_check_series.py"]

_SECONDS: dict[str, float] = defaultdict(float)
_OUTCOME: dict[str, str] = {}


def kseries(*args: str, capture: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KSERIES, *args], cwd=ROOT, text=True, check=False,
                          capture_output=capture)


KseriesRunner = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture(scope="session")
def run_kseries() -> KseriesRunner:
    """``kseries ARGS...`` from the checkout; ``capture=True`` to read its output."""
    return kseries


@pytest.fixture(scope="session")
def main_job() -> dict[str, Any]:
    """`kseries all --skip boot`: fetch, apply, build, KUnit.

    The boot stage is left to the in-guest suite (test_pipeline.py), which
    boots the same kernel with the same harness and checks the same
    release and /dev/vhost-blk before its tests: a second boot under TCG
    costs 2-6 minutes and would find nothing the first does not.
    """
    proc = kseries("all", "--skip", "boot")
    report: dict[str, Any] = json.loads((ROOT / "build" / "report.json").read_text())
    report["returncode"] = proc.returncode
    report["by_name"] = {s["name"]: s for s in report["stages"]}
    return report


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = Path(str(item.fspath)).name
        return ORDER.index(name) if name in ORDER else len(ORDER)

    items.sort(key=rank)  # stable: the order within a file is kept


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _SECONDS[report.nodeid] += report.duration
    if report.when == "call" or report.outcome != "passed":
        _OUTCOME[report.nodeid] = report.outcome


def pytest_sessionfinish(session: pytest.Session) -> None:
    target = os.environ.get("KSERIES_CI_TIMES")
    if not target:
        return
    with open(target, "a") as fh:
        for nodeid, seconds in _SECONDS.items():
            name = nodeid.split("/")[-1]
            fh.write(f"  {name}\t{seconds:.0f}\t{_OUTCOME.get(nodeid, 'not run')}\n")
        report = ROOT / "build" / "report.json"
        if report.exists() and "test_pipeline.py" in " ".join(_SECONDS):
            for stage in json.loads(report.read_text()).get("stages", []):
                fh.write(f"    main job stage {stage['name']}\t{stage['seconds']:.0f}\t"
                         f"{stage['status']}\n")
