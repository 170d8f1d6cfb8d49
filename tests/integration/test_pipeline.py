"""The real pipeline on the real pinned tree: fetch, apply, build, KUnit, boot.

Slow (a cold debug kernel build is most of it); run with
``pytest -m integration tests/integration``.  The main job runs once per
session and the tests read its report.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
KSERIES = [sys.executable, str(ROOT / "tools" / "bin" / "kseries")]


def _kseries(*args: str, capture: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KSERIES, *args], cwd=ROOT, text=True, check=False,
                          capture_output=capture)


@pytest.fixture(scope="session")
def main_job() -> dict[str, Any]:
    proc = _kseries("all")
    report = json.loads((ROOT / "build" / "report.json").read_text())
    report["returncode"] = proc.returncode
    report["by_name"] = {s["name"]: s for s in report["stages"]}
    return report


def test_fetch_is_idempotent(main_job: dict[str, Any]) -> None:
    head = subprocess.run(["git", "-C", str(ROOT / "kernel-tree" / "linux"), "rev-parse",
                           "v6.12.117-deb12u1^{commit}"], capture_output=True, text=True,
                          check=True).stdout.strip()
    again = _kseries("tree", "fetch", capture=True)
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stderr
    after = subprocess.run(["git", "-C", str(ROOT / "kernel-tree" / "linux"), "rev-parse",
                            "v6.12.117-deb12u1^{commit}"], capture_output=True, text=True,
                           check=True).stdout.strip()
    assert head == after


def test_every_stage_passes(main_job: dict[str, Any]) -> None:
    failed = {n: s["detail"] for n, s in main_job["by_name"].items() if s["status"] != "pass"}
    assert not failed
    assert main_job["returncode"] == 0


def test_kunit_ran_tests(main_job: dict[str, Any]) -> None:
    cases = main_job["by_name"]["kunit"]["data"]["cases"]
    assert cases, "KUnit ran no tests"
    assert all(c["status"] == "PASS" for c in cases), cases


def test_guest_runs_the_built_kernel(main_job: dict[str, Any]) -> None:
    release = main_job["by_name"]["build"]["data"]["release"]
    boot = main_job["by_name"]["boot"]["data"]
    assert f"uname -r: {release}" in boot["output"]
    console = Path(boot["console_log"]).read_text(errors="replace")
    assert f"Linux version {release}" in console


# The whole in-guest suite in one boot: Python's start-up in the guest
# (over 9p, under TCG) costs minutes, so a second boot would cost more
# than it isolates.  Order: request types and hostile chains, data
# integrity, fuzzing, lifecycle under load, multiqueue.
GUEST_TESTS = ["tests/guest/test_requests.py", "tests/guest/test_io.py",
               "tests/guest/test_fuzz.py", "tests/guest/test_lifecycle.py",
               "tests/guest/test_multiqueue.py"]
# pytest's last line, e.g. "231 passed in 1620.12s (0:27:00)" or "1 failed, 230 passed in ...".
SUMMARY = re.compile(r"^(?:=+ )?((?:\d+ \w+(?:, )?)+ in [\d.]+s.*?)(?: =+)?$", re.M)


def test_in_guest_suite(main_job: dict[str, Any]) -> None:
    """The in-guest tests round-trip requests through /dev/vhost-blk in the
    booted debug kernel (KASAN, lockdep, kmemleak) with the userspace
    virtio-blk driver.  Any kernel splat fails the run (the boot harness),
    so does a page left pinned or a kmemleak report after the session
    (tests/guest/leaks.py); neither check may be skipped on this kernel.
    """
    assert main_job["by_name"]["build"]["status"] == "pass"
    log = ROOT / "build" / "logs" / "guest-suite.log"
    proc = _kseries("run", "--timeout", "4200", "--console-log", str(log), "--",
                    sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    "--color=no", *GUEST_TESTS, capture=True)
    sys.stdout.write(proc.stdout[-6000:])
    match = SUMMARY.search(proc.stdout)
    summary = match.group(1) if match else "(no pytest summary in the guest's output)"
    assert proc.returncode == 0, f"{summary}\n{proc.stderr[-3000:]}"
    assert match, proc.stdout[-3000:]
    assert " passed" in summary
    for word in ("failed", "error", "skipped", "xfail"):
        assert word not in summary, f"in-guest run: {summary}"
    assert "pinned pages: every page pinned for I/O was unpinned" in proc.stdout
    assert "kmemleak: no leak found" in proc.stdout
    fuzz = re.search(r"fuzz: .*\brequests: (\d+)", proc.stdout)
    assert fuzz and int(fuzz.group(1)) >= 3000, "the fuzzer sent fewer requests than asked"
