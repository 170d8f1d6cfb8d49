"""tools/check-series, tools/submit-series and tools/bin/kseries run in the
project's environment whatever python3 starts them (tools/launch.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = [ROOT / "tools" / "check-series", ROOT / "tools" / "submit-series",
           ROOT / "tools" / "bin" / "kseries"]
SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/bin")


def _run(script: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    assert SYSTEM_PYTHON is not None
    environ = {k: v for k, v in os.environ.items() if k != "KSERIES_NO_REEXEC"}
    environ.update(PATH="/usr/bin:/bin", **env)
    return subprocess.run([SYSTEM_PYTHON, str(script), *args], capture_output=True,
                          text=True, check=False, env=environ)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_the_system_python_runs_the_project_environment(script: Path) -> None:
    if not (ROOT / ".venv" / "bin" / "python").exists() or Path(sys.prefix) != ROOT / ".venv":
        pytest.skip("the project's .venv is not set up here (tools/run sets it up)")
    proc = _run(script, "--help")
    assert proc.returncode == 0, proc.stderr
    assert "usage:" in proc.stdout


def test_before_set_up_it_says_what_to_run() -> None:
    assert SYSTEM_PYTHON is not None
    if subprocess.run([SYSTEM_PYTHON, "-c", "import jinja2"], capture_output=True,
                      check=False).returncode == 0:
        pytest.skip("the system python3 has the project's dependencies: nothing to miss")
    proc = _run(SCRIPTS[0], "--help", KSERIES_NO_REEXEC="1")  # as if .venv did not exist
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.splitlines() == [
        line for line in proc.stderr.splitlines() if line.startswith("check-series: ")]
    assert "tools/run unit" in proc.stderr
