"""Ctrl-C / SIGTERM in the middle of a check: reports written, cells not passed, exit 130.

The synthetic tree's make sleeps in every object, so the signal lands
while the build check runs a child process; the test also makes sure
that child does not outlive the run.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "check"))
import synth
from schema_lite import validate

from kseries.check import interrupt
from kseries.check.reports import json_report

ROOT = Path(__file__).resolve().parents[2]
DELAY = 87  # seconds of `sleep` per object: a number the test can find among processes

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None,
                                reason="needs gcc and make")


def _sleepers(pid: int) -> list[int]:
    """The `sleep DELAY` processes below ``pid``."""
    found = []
    for p in interrupt.descendants(pid):
        try:
            argv = Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[:2] == [b"sleep", str(DELAY).encode()]:
            found.append(p)
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2:][:1] not in ("Z", "X")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_a_check_still_writes_the_reports(tmp_path: Path,
                                                        sig: signal.Signals) -> None:
    tree, patches = synth.make_series(tmp_path, make_delay=DELAY)
    cmd = [sys.executable, str(ROOT / "tools" / "check-series"),
           *synth.cli_args(tmp_path, tree, "--keep-going", str(patches))]
    cmd.remove("-q")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 60
        sleepers: list[int] = []
        while not sleepers and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            sleepers = _sleepers(proc.pid)
        assert sleepers, "the build never started"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert f"interrupted by {sig.name}" in err
    assert "Traceback" not in err
    assert "RESULT: INTERRUPTED" in out
    time.sleep(0.5)
    assert not [p for p in sleepers if _alive(p)], "make's child outlived the run"

    out_dir = tmp_path / "out"
    data = json.loads((out_dir / "report.json").read_text())
    schema = json.loads(json_report.SCHEMA_PATH.read_text())
    validate(data, schema, schema)
    assert data["ok"] is False
    assert data["exit_status"] == 130
    assert data["interrupted"] == sig.name
    rows = data["patches"]
    assert [r["index"] for r in rows] == [1, 2, 3]  # every checked patch has a row
    first = rows[0]["results"]
    assert first["apply"]["state"] == "success"
    assert first["build"]["state"] == "skip"
    assert first["build"]["description"].startswith(f"interrupted by {sig.name} after ")
    assert "not finished" in first["build"]["description"]
    # Nothing that did not run or finish passed.
    for row in rows[1:]:
        assert {r["state"] for r in row["results"].values()} == {"skip"}
        assert all("interrupted" in r["description"] for r in row["results"].values())
    assert "during build of patch 01" in data["stopped_early"]
    log = (out_dir / first["build"]["log"]).read_text()
    assert f"interrupted by {sig.name}" in log

    suites = ET.parse(out_dir / "report.xml").getroot().findall("testsuite")
    assert len(suites) == 3
    assert suites[0].find("testcase[@name='build']/skipped") is not None
    page = (out_dir / "report.html").read_text()
    assert ">INTERRUPTED<" in page and f"Interrupted by {sig.name}" in page
    posted = json.loads((out_dir / "patchwork.json").read_text())
    assert not any(c["check"]["context"] == "check-series-build" for c in posted)


def test_rerun_after_an_interrupt_starts_clean(tmp_path: Path) -> None:
    """The worktree an interrupted run left behind is reused and the series checks out."""
    tree, patches = synth.make_series(tmp_path, make_delay=DELAY)
    cmd = [sys.executable, str(ROOT / "tools" / "check-series"),
           *synth.cli_args(tmp_path, tree, "--keep-going", str(patches))]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 60
    while not _sleepers(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 130
    # The worktree was left mid-check; the next run resets it and checks every patch.
    rerun = subprocess.run([*cmd, "--only", "apply,checkpatch,hygiene"], cwd=ROOT,
                           capture_output=True, text=True, check=False)
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert rerun.returncode == 0, rerun.stderr
    assert data["interrupted"] == ""
    assert [r["results"]["apply"]["state"] for r in data["patches"]] == ["success"] * 3
