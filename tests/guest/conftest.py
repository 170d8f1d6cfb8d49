"""In-guest tests of /dev/vhost-blk, run inside the VM started by `kseries run`.

  kseries run --timeout 2400 -- python -m pytest -q -p no:cacheprovider tests/guest

The host filesystem is shared read-only; /tmp is writable.  Every test
is skipped, with the reason, when /dev/vhost-blk is missing or the
tests do not run as root.  The backends and the device fixtures are in
vblk_env.py.

``--fuzz-requests N`` sets how many requests test_fuzz.py sends (the
default is the CI run's).  Around the whole session, leaks.py checks
that every page pinned for I/O was unpinned and that kmemleak finds no
leak; the summary at the end says what was checked and what was not.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import leaks
import pytest
from vblk_env import FUZZ_STATS, backend, blk, kmsg, ram, ramblk

from kseries.vblk.device import DEVICE_PATH

__all__ = ["backend", "blk", "ram", "ramblk"]

FUZZ_REQUESTS_CI = 3000
LEAK_LINES: list[str] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--fuzz-requests", type=int, default=FUZZ_REQUESTS_CI, metavar="N",
                     help="requests the fuzzer sends (default: %(default)s; "
                          "1000000 for a long run)")


@pytest.fixture(scope="session")
def fuzz_requests(request: pytest.FixtureRequest) -> int:
    n = int(request.config.getoption("--fuzz-requests"))
    if n < 1:
        raise pytest.UsageError(f"--fuzz-requests must be at least 1, not {n}")
    return n


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


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Progress on the guest's console, which the host follows in the log file."""
    if report.when == "call" or report.outcome != "passed":
        kmsg(f"{report.outcome} {report.nodeid} ({report.when}, {report.duration:.1f} s)")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = list(LEAK_LINES)
    if FUZZ_STATS:
        lines.append("fuzz: " + ", ".join(f"{k}: {v}" for k, v in sorted(FUZZ_STATS.items())))
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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _skip_reason()
    if reason is None:
        return
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.skip(reason=reason))
