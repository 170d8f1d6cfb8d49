"""The C fuzzer: vblk-fuzz (tools/bench/vblk-fuzz.c) against /dev/vhost-blk.

The same properties as test_fuzz.py, at a rate the Python driver cannot
reach under TCG: valid and hostile chains of every request type on
several virtqueues and workers at once, each completion checked against
the rules of vblk.oracle (which tests/unit/test_cfuzz_oracle.py
cross-checks chain by chain), read data against a shadow of the disk,
rejected requests against poisoned buffers; broken rings answered with a
used entry or the error eventfd; and the lifecycle ioctls (memory table,
vrings, backend stop/restart/swap, workers, features, RESET_OWNER, close)
with requests in flight.

``--cfuzz-requests N`` (default 50000, CI's budget) is shared by the
runs below; ring examples are one per 200 requests.  Every run is
seeded: a failure line carries the seed, the chain and the command line
that sends the chain again alone (``vblk-fuzz --replay SEED:INDEX``).

The binary is the host's build/cfuzz/vblk-fuzz when it was built from
these very sources (``python -m vblk.cfuzz build`` on the host, or the
integration tier), otherwise gcc builds it here into /tmp.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from vblk_env import REPORT_LINES, Backend, brd, kmsg, loop, null_blk

from vblk import cfuzz

ROOT = Path(__file__).resolve().parents[2]
STATS: Counter[str] = Counter()
RUNS: list[str] = []


@dataclass(frozen=True)
class Case:
    name: str
    share: float  # of --cfuzz-requests
    seed: int
    queues: int
    workers: int
    args: tuple[str, ...] = ()


@pytest.fixture(scope="module")
def binary() -> Iterator[Path]:
    found = cfuzz.prebuilt(ROOT, ROOT / "build" / "cfuzz")
    if found is None:
        kmsg("cfuzz: no host build of vblk-fuzz matching the sources; compiling it here")
        found = cfuzz.build(ROOT, Path(tempfile.mkdtemp(prefix="cfuzz-")))
    yield found
    if STATS["seconds"]:
        line = (f"cfuzz: requests: {STATS['requests']}, seconds: {STATS['seconds']:.0f}, "
                f"rate: {STATS['requests'] / STATS['seconds']:.0f}/s")
        REPORT_LINES.append(line)
        REPORT_LINES.extend(RUNS)
        kmsg(line)


def _run(binary: Path, name: str, args: list[str], requests: int) -> cfuzz.Result:
    """Run one fuzzer invocation; its numbers go to the session's summary."""
    kmsg(f"cfuzz: {name}: vblk-fuzz {' '.join(args)}")
    t0 = time.monotonic()
    # The fuzzer bounds every wait itself (--stall, its watchdog); this is the last resort.
    res = cfuzz.run(binary, args, timeout=max(900.0, requests / 5))
    s = res.summary
    note = (f"cfuzz [{name}]: {s.get('requests', 0)} requests in {s.get('seconds', 0):.0f} s "
            f"({s.get('rate', 0):.0f}/s; set-up {s.get('setup_s', 0):.0f} s, "
            f"{time.monotonic() - t0:.0f} s in all), statuses {s.get('status')}, "
            f"failures {s.get('failures')}, seed {s.get('seed')}")
    RUNS.append(note)
    kmsg(note)
    return res


def _check(res: cfuzz.Result, requests: int) -> None:
    s = res.summary
    assert res.ok, res.describe()
    assert s["mismatches"] == s["data_mismatches"] == s["poisoned"] == 0, res.describe()
    assert s["requests"] >= requests, f"only {s['requests']} of {requests} requests"
    # Hostile chains were sent and answered: every status shows up.
    for status in ("ok", "ioerr", "unsupp", "none"):
        assert s["status"][status] > 0, f"no {status} completion: {res.describe()}"


# Shares of --cfuzz-requests.  The lifecycle run gets little: its ioctls wait
# for RCU grace periods and requests in flight (about 20 requests/s under TCG).
LIFECYCLE_SHARE = 0.05
REQUEST_CASES = [
    Case("null_blk 512", 0.35, 1, 4, 2),
    # Not null_blk with 4096-byte blocks: it keeps a 512-byte DMA alignment
    # but copies memory-backed data a logical block at a time from the
    # segment's offset, past the end of its page (repro_nullb_unaligned.py).
    Case("loop 4096", 0.20, 2, 2, 2),
    # brd in 6.12 frees a page on discard under a concurrent write
    # (Documentation/in-guest-tests.md): no discard on brd.
    Case("brd, no discard", 0.30, 3, 3, 3, ("--no-discard",)),
    Case("null_blk 512, read-only", 0.10, 4, 1, 1, ("--read-only",)),
]


@pytest.fixture
def backend_for(request: pytest.FixtureRequest) -> Iterator[Backend]:
    case: Case = request.param
    if case.name.startswith("brd"):
        with brd(2) as be:
            yield be
    elif case.name.startswith("loop"):
        with loop(64 << 20, block_size=4096) as be:
            yield be
    else:
        with null_blk(size_mb=64, blocksize=4096 if "4096" in case.name else 512) as be:
            yield be


@pytest.mark.parametrize("backend_for", REQUEST_CASES, ids=[c.name for c in REQUEST_CASES],
                         indirect=True)
def test_cfuzz_requests(binary: Path, backend_for: Backend, cfuzz_requests: int,
                        request: pytest.FixtureRequest) -> None:
    """Valid and hostile chains on several queues and workers; every answer checked."""
    case: Case = request.node.callspec.params["backend_for"]
    n = max(100, int(cfuzz_requests * case.share))
    res = _run(binary, case.name,
               ["--dev", backend_for.path, "--requests", str(n), "--seed", str(case.seed),
                "--queues", str(case.queues), "--workers", str(case.workers), *case.args], n)
    STATS["requests"] += int(res.summary.get("requests", 0))
    STATS["seconds"] += float(res.summary.get("seconds", 0))
    _check(res, n)
    assert res.summary["verified_sectors"] > 0, "no read was checked against the shadow"
    assert res.summary["vq_errors"] == 0


def test_cfuzz_lifecycle(binary: Path, cfuzz_requests: int) -> None:
    """Requests in flight across SET_MEM_TABLE, SET_VRING_*, backend stop/restart/swap,
    workers, features, RESET_OWNER and close: documented returns, nothing hangs."""
    n = max(100, int(cfuzz_requests * LIFECYCLE_SHARE))
    with null_blk(size_mb=64) as a, null_blk(size_mb=64) as b:
        res = _run(binary, "lifecycle",
                   ["--lifecycle", "--dev", a.path, "--dev2", b.path, "--requests", str(n),
                    "--seed", "5", "--queues", "3", "--workers", "2"], n)
    STATS["requests"] += int(res.summary.get("requests", 0))
    STATS["seconds"] += float(res.summary.get("seconds", 0))
    assert res.ok, res.describe()
    assert res.summary["mismatches"] == res.summary["data_mismatches"] == 0
    assert res.summary["lifecycle_actions"] > 0
    assert res.summary["expected_ioctl_errors"] > 0
    # What was generated was either answered or dropped where the documentation allows it.
    assert res.summary["requests"] + res.summary["dropped"] >= n * 0.9, res.describe()


def test_cfuzz_rings(binary: Path, cfuzz_requests: int) -> None:
    """Broken rings: a used entry or the error eventfd, never a hang; the queue is reset
    (stop, new base, start; sometimes close) and serves again."""
    n = max(10, cfuzz_requests // 200)
    with null_blk(size_mb=64) as be:
        res = _run(binary, "rings", ["--ring", str(n), "--dev", be.path, "--seed", "6",
                                     "--queues", "2", "--workers", "2"], n)
    assert res.ok, res.describe()
    s = res.summary
    assert s["requests"] == n
    assert s["ring"]["used"] + s["ring"]["error"] == n
    assert s["ring"]["error"] > 0
    assert s["ring"]["served_after"] == n


def test_cfuzz_replay(binary: Path) -> None:
    """--replay SEED:N sends chain N of the seed alone on a fresh device: the chain a
    failure line names can be tried again by itself."""
    with null_blk(size_mb=64) as be:
        for index in (0, 7):
            res = cfuzz.run(binary, ["--replay", f"1:{index}", "--dev", be.path], timeout=600)
            assert res.ok, res.describe()
            lines = [json.loads(x) for x in res.stdout.splitlines() if '"replay": true' in x]
            assert len(lines) == 1, res.stdout[-2000:]
            assert lines[0]["index"] == index and lines[0]["failed"] is False
            assert lines[0]["actual"] is not None
