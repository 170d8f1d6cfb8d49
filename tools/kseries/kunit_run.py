"""Run the tree's tools/testing/kunit/kunit.py and read its JSON.

KTAP parsing is kunit.py's job; this module only asks it for
``--json=FILE`` (KernelCI test-group format, see kunit_json.py in the
tree) and turns the groups into flat per-test results.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .build import make_env
from .errors import KseriesError, UsageError
from .progress import Progress

STATUSES = ("PASS", "FAIL", "SKIP", "ERROR")
# kunit.py's own stage lines worth forwarding as progress.
_STAGE_WORDS = ("Configuring", "Building", "Starting", "Testing complete")
HEARTBEAT = 30.0  # seconds between "kunit: still running" lines


@dataclass(frozen=True)
class Case:
    suite: str
    name: str
    status: str

    @property
    def full_name(self) -> str:
        return f"{self.suite}.{self.name}" if self.suite else self.name


@dataclass
class KunitResult:
    cases: list[Case]
    returncode: int
    log: Path
    json_path: Path
    seconds: float = 0.0
    counts: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and bool(self.cases) and not (
            self.counts["FAIL"] or self.counts["ERROR"])

    def summary(self) -> str:
        parts = [f"{self.counts[s]} {s.lower()}" for s in STATUSES if self.counts[s]]
        return f"{len(self.cases)} tests: " + (", ".join(parts) or "none")


def parse_json(text: str) -> list[Case]:
    """Flatten kunit.py's JSON (nested groups) into test cases."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise KseriesError(f"kunit.py wrote invalid JSON: {exc}",
                           "run kunit.py by hand and look at its output") from None
    if not isinstance(data, dict) or "test_cases" not in data:
        raise KseriesError("kunit.py JSON has no test_cases: not a KUnit test group",
                           "check the kunit.py version in the tree")
    cases: list[Case] = []
    _walk(data, [], cases, top=True)
    return cases


def _walk(group: dict[str, Any], path: list[str], out: list[Case], top: bool = False) -> None:
    here = path if top else [*path, str(group.get("name", "?"))]
    for case in group.get("test_cases", []):
        status = str(case.get("status", "FAIL"))
        out.append(Case(".".join(here), str(case.get("name") or "(crashed before naming)"),
                        status if status in STATUSES else "FAIL"))
    for sub in group.get("sub_groups", []):
        _walk(sub, here, out)


def run(tree: Path, kunitconfig: Path, build_dir: Path, progress: Progress,
        arch: str = "um", jobs: int = 2, timeout: int = 1800,
        extra_args: list[str] | None = None) -> KunitResult:
    """Build and run KUnit with kunit.py; results per test."""
    script = tree / "tools" / "testing" / "kunit" / "kunit.py"
    if not script.is_file():
        raise UsageError(f"{script} does not exist", "--tree must point at a kernel tree")
    if not kunitconfig.is_file():
        raise UsageError(f"kunitconfig {kunitconfig} does not exist",
                         "pass --kunitconfig with a file under kunit/")
    if (tree / ".config").exists():
        raise UsageError(f"{tree} has an in-tree build (.config); kunit.py refuses it",
                         f"run `make -C {tree} mrproper` (builds belong in O= directories)")
    build_dir.mkdir(parents=True, exist_ok=True)
    json_path = build_dir / "kunit.json"
    log = build_dir / "kunit.log"
    json_path.unlink(missing_ok=True)
    cmd = ["python3", str(script), "run", f"--kunitconfig={kunitconfig.resolve()}",
           f"--build_dir={build_dir.resolve()}", f"--json={json_path}", f"--jobs={jobs}",
           f"--timeout={timeout}", f"--arch={arch}",
           # The release string must not follow the commit (LOCALVERSION_AUTO's
           # -gSHA): each new one rebuilt utsrelease.h's users (kernel/sys.o,
           # the firmware loader, ~14 of the ~25 s of an incremental build).
           "--kconfig_add=CONFIG_LOCALVERSION_AUTO=n"]
    if shutil.which("ccache"):
        cmd.append("--make_options=CC=ccache gcc")
    if arch == "x86_64":
        cmd.append("--qemu_args=-accel tcg")
    cmd += extra_args or []
    progress.say(f"kunit: {kunitconfig.name} on {arch} (build dir {build_dir})")
    t0 = time.monotonic()
    with log.open("w") as fh:
        fh.write(f"$ {' '.join(cmd)}\n")
        fh.flush()
        # make_env(): the same ccache base directory as the kernel builds.
        proc = subprocess.Popen(cmd, cwd=tree, stdout=subprocess.PIPE, env=make_env(),
                                stderr=subprocess.STDOUT, text=True, errors="replace")
        assert proc.stdout is not None
        with progress.heartbeat("kunit", HEARTBEAT):
            for line in proc.stdout:
                fh.write(line)
                if line.startswith("[") and any(word in line for word in _STAGE_WORDS):
                    progress.say(f"kunit: {line.strip()[11:]}")
            rc = proc.wait(timeout=timeout + 600)
    took = time.monotonic() - t0
    if not json_path.exists():
        raise KseriesError(f"kunit.py produced no results (exit {rc})",
                           f"the build or boot failed; see {log}")
    cases = parse_json(json_path.read_text())
    result = KunitResult(cases, rc, log, json_path, took, Counter(c.status for c in cases))
    if not cases:
        raise KseriesError(f"kunit.py ran no tests from {kunitconfig.name} (exit {rc})",
                           f"check that the kunitconfig enables the tests; see {log}")
    progress.say(f"kunit: {result.summary()} in {took:.0f}s")
    return result
