"""The real pipeline on the real pinned tree: fetch, apply, build, KUnit, boot.

Slow (a cold debug kernel build is most of it); run with
``pytest -m integration tests/integration``.  The main job runs once per
session and the tests read its report.
"""

from __future__ import annotations

import json
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


def test_in_guest_requests(main_job: dict[str, Any]) -> None:
    """Requests round-trip through /dev/vhost-blk in the booted debug kernel.

    Runs tests/guest/test_requests.py (every request type, malformed
    chains, read-only backends, fault injection) inside the VM with the
    userspace virtio-blk driver; any kernel splat fails the run.
    """
    assert main_job["by_name"]["build"]["status"] == "pass"
    proc = _kseries("run", "--timeout", "2400", "--console-log",
                    str(ROOT / "build" / "logs" / "guest-requests.log"), "--",
                    sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    "--color=no", "tests/guest/test_requests.py", capture=True)
    lines = proc.stdout.strip().splitlines()
    summary = lines[-1] if lines else ""
    assert proc.returncode == 0, f"{summary}\n{proc.stderr[-2000:]}"
    assert " passed" in summary
    assert "failed" not in summary and "error" not in summary
    assert "skipped" not in summary, "in-guest tests skipped: /dev/vhost-blk missing?"
