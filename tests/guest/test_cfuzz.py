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

``--cfuzz-requests N`` (default 10000, CI's budget) is shared by the
runs below; ring examples are one per 300 requests, and each fault run
gets 2 % (at least 300).  Every run is
seeded: a failure line carries the seed, the chain and the command line
that sends the chain again alone (``vblk-fuzz --replay SEED:INDEX``).

The binary is the host's build/cfuzz/vblk-fuzz when it was built from
these very sources (``python -m vblk.cfuzz`` on the host, or the
integration tier), otherwise gcc builds it here into /tmp.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import leaks
import pytest
from vblk_env import (
    NULLB,
    REPORT_LINES,
    Backend,
    brd,
    dm_delay,
    dm_flakey,
    kmsg,
    loop,
    null_blk,
    open_excl,
)

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
    yield cfuzz.find_or_build(ROOT, ROOT / "build" / "cfuzz",
                              Path(tempfile.mkdtemp(prefix="cfuzz-")), say=kmsg)
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


def check_answers(res: cfuzz.Result, requests: int) -> None:
    """Every answer as due, no data mismatch, no rejected request's buffer touched,
    and the whole budget sent (the fault runs' checks too)."""
    s = res.summary
    assert res.ok, res.describe()
    assert s["mismatches"] == s["data_mismatches"] == s["poisoned"] == 0, res.describe()
    assert s["requests"] >= requests, f"only {s['requests']} of {requests} requests"


def check(res: cfuzz.Result, requests: int) -> None:
    """What every request run must show (test_cfuzz_long.py's too)."""
    s = res.summary
    check_answers(res, requests)
    # Hostile chains were sent and answered: every status shows up.
    for status in ("ok", "ioerr", "unsupp", "none"):
        assert s["status"][status] > 0, f"no {status} completion: {res.describe()}"


# The shadowed region of each run: writing it first and reading it back at the end
# cost about 14 s each for 16 MiB (the default) on null_blk under TCG.
REGION = str(4 << 20)
# Shares of --cfuzz-requests.  The lifecycle run gets little: its ioctls wait
# for RCU grace periods and requests in flight (about 20 requests/s under TCG).
LIFECYCLE_SHARE = 0.05
REQUEST_CASES = [
    Case("null_blk 512", 0.35, 1, 2, 2),
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
                "--queues", str(case.queues), "--workers", str(case.workers),
                "--region", REGION, *case.args], n)
    STATS["requests"] += int(res.summary.get("requests", 0))
    STATS["seconds"] += float(res.summary.get("seconds", 0))
    check(res, n)
    assert res.summary["verified_sectors"] > 0, "no read was checked against the shadow"
    assert res.summary["vq_errors"] == 0


def test_cfuzz_lifecycle(binary: Path, cfuzz_requests: int) -> None:
    """Requests in flight across SET_MEM_TABLE, SET_VRING_*, backend stop/restart/swap,
    workers, features, RESET_OWNER and close: documented returns, nothing hangs."""
    n = max(100, int(cfuzz_requests * LIFECYCLE_SHARE))
    with null_blk(size_mb=64) as a, null_blk(size_mb=64) as b:
        res = _run(binary, "lifecycle",
                   ["--lifecycle", "--dev", a.path, "--dev2", b.path, "--requests", str(n),
                    "--seed", "5", "--queues", "3", "--workers", "2", "--region", REGION], n)
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
    n = max(10, cfuzz_requests // 300)
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
            res = cfuzz.run(binary, ["--replay", f"1:{index}", "--dev", be.path,
                                     "--region", REGION], timeout=600)
            assert res.ok, res.describe()
            lines = [json.loads(x) for x in res.stdout.splitlines() if '"replay": true' in x]
            assert len(lines) == 1, res.stdout[-2000:]
            assert lines[0]["index"] == index and lines[0]["failed"] is False
            assert lines[0]["actual"] is not None


# -- faults under load ------------------------------------------------------------------
#
# vblk-fuzz --fault tells the oracle what the backend does wrong (see fault_adjust() in
# vblk-fuzz.c): the requests the fault hits must get exactly the status it makes due,
# every other one the oracle's answer, and reads the shadow's data.  Each run is small
# (FAULT_SHARE of --cfuzz-requests, at least FAULT_MIN) and shadows 4 MiB.

FAULT_SHARE = 0.02
FAULT_MIN = 300
FAULT_REGION = REGION
# The slowest request of a fault run may take this long (a null_blk timeout is 1 s,
# dm-delay holds a bio 100 ms; TCG stretches both).
FAULT_LAT_MAX_MS = 30_000


def _fault_n(cfuzz_requests: int) -> int:
    return max(FAULT_MIN, int(cfuzz_requests * FAULT_SHARE))


def _fault_run(binary: Path, name: str, dev: str, n: int, seed: int,
               extra: list[str]) -> cfuzz.Result:
    args = ["--dev", dev, "--requests", str(n), "--seed", str(seed), "--queues", "2",
            "--workers", "2", "--region", FAULT_REGION, "--stall", "60", *extra]
    res = _run(binary, name, args, n)
    s = res.summary
    note = (f"cfuzz fault [{name}]: fault {s.get('fault')}, slowest "
            f"{s.get('lat_max_ms', 0):.0f} ms ({s.get('slowest', {}).get('label')})")
    RUNS.append(note)
    kmsg(note)
    check_answers(res, n)
    assert s["vq_errors"] == 0
    assert s["lat_max_ms"] < FAULT_LAT_MAX_MS, f"a request took {s['lat_max_ms']} ms"
    return res


def _nullb_node(be: Backend) -> Path:
    """null_blk's configfs directory of a device made by vblk_env.null_blk()."""
    node = NULLB / Path(be.path).name
    assert (node / "power").is_file(), f"no configfs node {node} for {be.path}"
    return node


def _queue_attr(be: Backend, attr: str, value: str) -> None:
    name = Path(os.path.realpath(be.path)).name
    Path(f"/sys/block/{name}/queue/{attr}").write_text(f"{value}\n")


def test_fault_dm_delay(binary: Path, cfuzz_requests: int) -> None:
    """A slow backend (dm-delay, 100 ms a bio): every request gets the oracle's answer,
    the slowest within FAULT_LAT_MAX_MS."""
    n = _fault_n(cfuzz_requests)
    with null_blk(size_mb=64) as nb, dm_delay(nb, 100) as slow:
        _fault_run(binary, "dm-delay 100 ms", slow.path, n, 11, [])


@pytest.mark.parametrize("feature", ["error_writes", "drop_writes"])
def test_fault_dm_flakey(binary: Path, cfuzz_requests: int, feature: str) -> None:
    """dm-flakey, always down: with error_writes every write, discard and write zeroes
    fails with IOERR and changes nothing; with drop_writes they complete OK and change
    nothing; reads (and the final read of the whole region) return the initial data."""
    n = _fault_n(cfuzz_requests)
    with null_blk(size_mb=64) as nb, dm_flakey(nb, feature) as flakey:
        res = _fault_run(binary, f"dm-flakey {feature}", flakey.path, n, 12,
                         ["--fill-dev", nb.path,
                          "--fault", feature.replace("_", "-")])
    s = res.summary
    assert s["verified_sectors"] > 0
    if feature == "error_writes":
        assert s["fault"]["expected"] > 0 and s["fault"]["dropped"] == 0, s["fault"]
    else:
        assert s["fault"]["dropped"] > 0 and s["fault"]["expected"] == 0, s["fault"]


# Bad sectors inside the shadowed 4 MiB (sectors 0-8191) and past it.
BAD_RANGES = [(96, 103), (2048, 2175), (5000, 5000), (40000, 40959)]


def test_fault_null_blk_badblocks(binary: Path, cfuzz_requests: int) -> None:
    """null_blk bad sectors (no merging, so that one request's failure is its own):
    every request touching one fails with IOERR, the others are served."""
    n = _fault_n(cfuzz_requests)
    with null_blk(size_mb=64, badblocks=[f"+{a}-{b}" for a, b in BAD_RANGES]) as be:
        _queue_attr(be, "nomerges", "2")
        spec = ",".join(f"{a}-{b}" for a, b in BAD_RANGES)
        res = _fault_run(binary, "null_blk badblocks", be.path, n, 13,
                         ["--fault", f"badblocks={spec}"])
    assert res.summary["fault"]["expected"] > 0, res.summary["fault"]


def test_fault_null_blk_timeouts(binary: Path, cfuzz_requests: int) -> None:
    """null_blk's timeout injection (CONFIG_BLK_DEV_NULL_BLK_FAULT_INJECTION): 10 % of the
    requests after the first 50 (the initial fill) are never completed by the driver, up
    to 20; the block layer's 1 s timeout fails them.  Each request that failed must have reached the
    backend, and no more failed than timeouts fired."""
    n = _fault_n(cfuzz_requests)
    times = 20
    with null_blk(size_mb=64) as be:
        _queue_attr(be, "nomerges", "2")
        _queue_attr(be, "io_timeout", "1000")
        inject = _nullb_node(be) / "timeout_inject"
        # At 5 % after the first 300, 300 fuzzed requests fired 4 timeouts: too close
        # to none at all.
        for attr, value in [("verbose", 0), ("interval", 1), ("space", 50),
                            ("times", times), ("probability", 10)]:
            (inject / attr).write_text(f"{value}\n")
        try:
            res = _fault_run(binary, "null_blk timeouts", be.path, n, 14,
                             ["--fault", "may-fail"])
            fired = times - int((inject / "times").read_text())
        finally:
            (inject / "probability").write_text("0\n")
    failed = res.summary["fault"]["failed"]
    kmsg(f"cfuzz fault [null_blk timeouts]: {fired} timeouts fired, {failed} requests failed")
    assert 1 <= failed <= fired, f"{failed} requests failed, {fired} timeouts fired"


def test_fault_null_blk_power_off(binary: Path, cfuzz_requests: int) -> None:
    """The backend removed with requests in flight (null_blk power 0: del_gendisk):
    requests in flight then may fail, every one sent after it must (IOERR), and the
    device closes."""
    n = _fault_n(cfuzz_requests)
    with null_blk(size_mb=64) as be:
        power = _nullb_node(be) / "power"
        res = _fault_run(binary, "null_blk power off", be.path, n, 15,
                         ["--fault", f"power-off={power}@{n // 2}"])
    s = res.summary
    assert s["fault"]["power_off"] is True
    assert s["fault"]["expected"] > 0, s["fault"]


def _read_until(proc: subprocess.Popen[bytes], marker: bytes, seconds: float) -> bytes:
    """stderr of ``proc`` until a line with ``marker`` (or the end, or the time)."""
    assert proc.stderr is not None
    fd, got, end = proc.stderr.fileno(), b"", time.monotonic() + seconds
    while marker not in got and time.monotonic() < end:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            got += chunk
    return got


def _within(seconds: float, probe: Callable[[], bool]) -> float | None:
    """Seconds until ``probe()`` held, polling, or None after ``seconds``."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        if probe():
            return time.monotonic() - t0
        time.sleep(0.2)
    return None


# Bounds after SIGKILL: the process is gone, its pins released, its claim on the backend
# dropped.  Requests held by dm-delay (300 ms) complete first.
KILL_EXIT_S = 60.0
KILL_RELEASE_S = 60.0


def test_fault_sigkill(binary: Path) -> None:
    """The owner killed with SIGKILL while dm-delay holds its requests (pages pinned):
    it exits, every pin is released and the backend's claim dropped within the bounds,
    and the same backend serves a new device."""
    before = leaks.pins_held()
    assert before is not None, "no nr_foll_pin_* counters in /proc/vmstat"
    with null_blk(size_mb=64) as nb, dm_delay(nb, 300) as slow:
        kmsg(f"cfuzz fault [SIGKILL]: vblk-fuzz --dev {slow.path}, killed under load")
        proc = subprocess.Popen([str(binary), "--dev", slow.path, "--requests", "100000000",
                                 "--seed", "16", "--queues", "2", "--workers", "2",
                                 "--region", FAULT_REGION],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            started = _read_until(proc, b" requests, ", 600)
            assert b" requests, " in started, f"vblk-fuzz did not start: {started[-2000:]!r}"
            time.sleep(2)
            pinned = 0
            for _ in range(25):
                pinned = max(pinned, (leaks.pins_held() or 0) - before)
                if pinned:
                    break
                time.sleep(0.2)
            assert pinned > 0, "no page pinned: no request in flight to kill"
            assert proc.poll() is None, "vblk-fuzz ended before the kill"
            t0 = time.monotonic()
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=KILL_EXIT_S)
            exit_s = time.monotonic() - t0
        finally:
            if proc.poll() is None:
                proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=KILL_EXIT_S)
            if proc.stderr is not None:
                proc.stderr.close()
        assert proc.returncode == -signal.SIGKILL
        unpinned = _within(KILL_RELEASE_S, lambda: leaks.pins_held() == before)
        claim = _within(KILL_RELEASE_S, lambda: open_excl(slow.path) is None)
        note = (f"cfuzz fault [SIGKILL]: {pinned} pages pinned at the kill; exit after "
                f"{exit_s:.1f} s, pins released after {unpinned} s, claim after {claim} s")
        RUNS.append(note)
        kmsg(note)
        assert unpinned is not None, f"pins left {KILL_RELEASE_S} s after the kill"
        assert claim is not None, f"{slow.path} still claimed {KILL_RELEASE_S} s after the kill"
        res = cfuzz.run(binary, ["--dev", slow.path, "--requests", "100", "--seed", "17",
                                 "--queues", "2", "--workers", "2", "--region", FAULT_REGION],
                        timeout=900)
        assert res.ok, res.describe()
