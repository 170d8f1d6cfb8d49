"""In-guest tests of /dev/vhost-blk, run inside the VM started by `kseries run`.

  kseries run --timeout 2400 -- python -m pytest -q -p no:cacheprovider tests/guest

The host filesystem is shared read-only; /tmp is writable.  Every test
is skipped, with the reason, when /dev/vhost-blk is missing or the
tests do not run as root.  The backends and the device fixtures are in
vblk_env.py.

``--fuzz-requests N`` sets how many requests test_fuzz.py sends (default
3000); ``--fuzz-seconds S`` gives it a time budget instead, which is how
CI runs it: the rate depends on the machine (under TCG, on what else
runs on the host), a count does not bound the time.  With both, the
fuzzer stops at whichever comes first.  ``--cfuzz-requests N`` is the
request budget of test_cfuzz.py, the C fuzzer (default 10000, CI's).
On a kernel with vhost-blk as a module, ``--module-build DIR`` (its O=
directory) loads the module first.
Around the whole session, leaks.py checks
that every page pinned for I/O was unpinned and that kmemleak finds no
leak; the summary at the end says what was checked and what was not.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import leaks
import pytest
import vblk_env
from vblk_env import FUZZ_STATS, REPORT_LINES, FuzzBudget, backend, blk, kmsg, ram, ramblk

from vblk.device import DEVICE_PATH

__all__ = ["backend", "blk", "ram", "ramblk"]

FUZZ_REQUESTS_DEFAULT = 3000
CFUZZ_REQUESTS_DEFAULT = 10000
LEAK_LINES: list[str] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--fuzz-requests", type=int, default=None, metavar="N",
                     help=f"requests the fuzzer sends (default: {FUZZ_REQUESTS_DEFAULT} "
                          "without --fuzz-seconds; 1000000 for a long run)")
    parser.addoption("--fuzz-seconds", type=float, default=None, metavar="S",
                     help="time budget of the request fuzzer (CI's way: what it reached "
                          "is printed in the summary)")
    parser.addoption("--test-modules", default=None, metavar="DIR",
                     help="prebuilt test modules for the running kernel (test_release_race.py "
                          "needs DIR/vblk_window.ko; without this option it is skipped)")
    parser.addoption("--module-build", default=None, metavar="DIR",
                     help="the O= directory of the running kernel when it has vhost-blk as a "
                          "module (`kseries build --vhost-blk-module`): its modules are loaded "
                          "first, and test_module.py unloads and loads them")
    parser.addoption("--cfuzz-requests", type=int, default=CFUZZ_REQUESTS_DEFAULT, metavar="N",
                     help="requests test_cfuzz.py's C fuzzer sends over all its runs "
                          f"(default {CFUZZ_REQUESTS_DEFAULT}; 1000000 for a long run)")


@pytest.fixture(scope="session")
def fuzz_budget(request: pytest.FixtureRequest) -> FuzzBudget:
    n = request.config.getoption("--fuzz-requests")
    s = request.config.getoption("--fuzz-seconds")
    if n is not None and n < 1:
        raise pytest.UsageError(f"--fuzz-requests must be at least 1, not {n}")
    if s is not None and s <= 0:
        raise pytest.UsageError(f"--fuzz-seconds must be positive, not {s}")
    if n is None and s is None:
        n = FUZZ_REQUESTS_DEFAULT
    return FuzzBudget(n, s)


@pytest.fixture(scope="session", autouse=True)
def no_leaks() -> Iterator[None]:
    """Pinned pages and kmemleak, checked once every test of the session is done."""
    if _skip_reason() is not None:
        yield
        return
    before = leaks.start()
    yield
    report = leaks.finish(before)
    LEAK_LINES.extend(report.lines)
    assert not report.problems, "\n".join(report.problems)


@pytest.fixture(scope="session")
def cfuzz_requests(request: pytest.FixtureRequest) -> int:
    n = int(request.config.getoption("--cfuzz-requests"))
    if n < 100:
        raise pytest.UsageError(f"--cfuzz-requests must be at least 100, not {n}")
    return n


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Progress on the guest's console, which the host follows in the log file."""
    if report.when == "call" or report.outcome != "passed":
        kmsg(f"{report.outcome} {report.nodeid} ({report.when}, {report.duration:.1f} s)")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = [*LEAK_LINES, *REPORT_LINES]
    if FUZZ_STATS:
        lines.append("fuzz: " + ", ".join(f"{k}: {v}" for k, v in sorted(FUZZ_STATS.items())))
        if FUZZ_STATS["seconds"]:
            rate = FUZZ_STATS["requests"] / FUZZ_STATS["seconds"]
            lines.append(f"fuzz rate: {rate:.1f} requests/s")
    if lines:
        terminalreporter.section("vhost-blk")
        for line in lines:
            terminalreporter.write_line(line)


def _skip_reason() -> str | None:
    if not os.path.exists(DEVICE_PATH):
        return (f"{DEVICE_PATH} is missing: not running in a guest with CONFIG_VHOST_BLK "
                "(run through `kseries run`)")
    if os.geteuid() != 0:
        return "the in-guest tests need root"
    return None


def pytest_configure(config: pytest.Config) -> None:
    build = config.getoption("--module-build")
    if build is not None and os.geteuid() == 0 and not os.path.exists(DEVICE_PATH):
        vblk_env.load_vhost_blk(Path(build))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _skip_reason()
    if reason is None:
        return
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.skip(reason=reason))
