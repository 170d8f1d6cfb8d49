"""The long run of the C fuzzer: one fast configuration, --cfuzz-requests in one go.

Not part of CI's in-guest boot (test_cfuzz.py is, with its short budget);
run it on its own, e.g. for the million-request run of issue 17::

  PYTHONPATH=tools .venv/bin/python -m vblk.cfuzz
  .venv/bin/kseries run --timeout 7500 -- 'PYTHONPATH=tools .venv/bin/python -m pytest -q \
      -p no:cacheprovider --color=no tests/guest/test_cfuzz_long.py --cfuzz-requests 1000000'

The backend is brd without discard, the fastest of the probe's
configurations (Documentation/in-guest-tests.md): alone on the host it
ran the million requests in 16.4 minutes, 1,016/s.
Every completion is checked as in test_cfuzz.py (oracle, shadow, poison);
the session's leak checks (conftest.py) and the boot's splat scan apply.
The summary line has the rate and where the time went.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_cfuzz import check
from vblk_env import REPORT_LINES, brd, kmsg

from vblk import cfuzz

ROOT = Path(__file__).resolve().parents[2]
# The configuration with the best measured rate (Documentation/in-guest-tests.md): brd,
# 2 queues on 2 workers (the guest has 2 vCPUs).
LONG_QUEUES, LONG_WORKERS = 2, 2
LONG_SEED = 100


@pytest.fixture(scope="module")
def binary() -> Path:
    return cfuzz.find_or_build(ROOT, ROOT / "build" / "cfuzz",
                               Path(tempfile.mkdtemp(prefix="cfuzz-")), say=kmsg)


@pytest.fixture
def backend() -> Iterator[str]:
    with brd(3) as be:
        yield be.path


def test_cfuzz_long(binary: Path, backend: str, cfuzz_requests: int) -> None:
    """--cfuzz-requests valid and hostile chains on brd (no discard: brd in 6.12 frees a
    page on discard under a concurrent write), every answer checked; the rate goes to
    the summary."""
    n = cfuzz_requests
    args = ["--dev", backend, "--requests", str(n), "--seed", str(LONG_SEED),
            "--queues", str(LONG_QUEUES), "--workers", str(LONG_WORKERS), "--no-discard"]
    kmsg(f"cfuzz long: vblk-fuzz {' '.join(args)}")
    res = cfuzz.run(binary, args, timeout=max(900.0, n / 5))
    s = res.summary
    line = (f"cfuzz long: requests: {s.get('requests', 0)}, seconds: {s.get('seconds', 0):.0f}, "
            f"rate: {s.get('rate', 0):.0f}/s, set-up {s.get('setup_s', 0):.0f} s, "
            f"cpu {s.get('cpu')}, blocked in poll {s.get('wait_s', 0):.0f} s, "
            f"statuses {s.get('status')}, failures {s.get('failures')}, seed {s.get('seed')}")
    REPORT_LINES.append(line)
    kmsg(line)
    check(res, n)
    assert s["verified_sectors"] > 0 and s["vq_errors"] == 0
