"""progress: the stage lines and the one heartbeat every long step uses."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable

import pytest

from kseries.progress import Heartbeat, Progress


class FakeClock:
    """Seconds that move only when the test says so."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def collector(want: int) -> tuple[list[str], threading.Event, Callable[[str], None]]:
    lines: list[str] = []
    enough = threading.Event()

    def say(line: str) -> None:
        lines.append(line)
        if len(lines) >= want:
            enough.set()

    return lines, enough, say


def test_a_beat_says_what_and_how_long() -> None:
    clock = FakeClock()
    lines, _, say = collector(1)
    beat = Heartbeat(say, "kunit", 30.0, clock=clock)
    clock.now += 61.4
    beat.beat()
    clock.now += 30
    beat.beat()
    assert lines == ["kunit: still running, 61s", "kunit: still running, 91s"]
    suffixed = Heartbeat(say, "[1/3 x] build", suffix=" (next: sparse)", clock=clock)
    suffixed.beat()
    assert lines[-1] == "[1/3 x] build: still running, 0s (next: sparse)"


def test_the_thread_beats_at_the_interval_until_stopped() -> None:
    clock = FakeClock()
    lines, enough, say = collector(3)
    with Heartbeat(say, "boot", 0.01, clock=clock) as beat:
        clock.now += 5
        assert enough.wait(10), "three beats at a 10 ms interval took over 10 s"
    after = len(lines)
    assert after >= 3 and set(lines) == {"boot: still running, 5s"}
    # stop() joined the thread: nothing more comes, and stopping again is harmless.
    threading.Event().wait(0.05)
    beat.stop()
    assert len(lines) == after


def test_no_beat_before_the_first_interval() -> None:
    lines, _, say = collector(1)
    with Heartbeat(say, "quick", 60.0):
        pass
    assert lines == []


def test_the_heartbeat_stops_when_the_step_raises() -> None:
    lines, enough, say = collector(1)
    beat = Heartbeat(say, "doomed", 0.01)
    with pytest.raises(RuntimeError, match="the step failed"), beat:
        assert enough.wait(10)
        raise RuntimeError("the step failed")
    after = len(lines)
    threading.Event().wait(0.05)
    assert len(lines) == after


def test_a_heartbeat_starts_once_and_needs_a_positive_interval() -> None:
    beat = Heartbeat(lambda _: None, "x", 60.0)
    with beat, pytest.raises(RuntimeError, match="already started"):
        beat.start()
    with pytest.raises(ValueError, match="positive"):
        Heartbeat(lambda _: None, "x", 0)


def test_progress_heartbeat_prints_progress_lines_on_its_clock() -> None:
    clock = FakeClock(0.0)
    stream = io.StringIO()
    progress = Progress(stream, clock=clock)
    beat = progress.heartbeat("kunit", 30.0)
    clock.now = 12.5
    beat.beat()
    assert stream.getvalue() == "[kseries    12.5s] kunit: still running, 12s\n"


def test_quiet_progress_prints_no_heartbeat() -> None:
    stream = io.StringIO()
    Progress(stream, quiet=True).heartbeat("x").beat()
    assert stream.getvalue() == ""


class YieldingStream(io.StringIO):
    """Lets other threads run inside every write, as a slow terminal would."""

    def write(self, text: str) -> int:
        time.sleep(0.0005)
        return super().write(text)


def test_progress_lines_from_threads_never_share_a_line() -> None:
    stream = YieldingStream()
    progress = Progress(stream)
    threads = [threading.Thread(target=lambda n=n: [progress.say(f"t{n} {'x' * 20}")
                                                    for _ in range(50)])
               for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 200
    assert all(line.endswith("x" * 20) and line.count("[kseries") == 1 for line in lines)


def test_check_series_live_heartbeat_names_the_cell_and_what_comes_next() -> None:
    from kseries.check.live import Live

    stream = io.StringIO()
    live = Live(Progress(stream), total=3, beat=0.01)
    with live.running(2, "0002-foo.patch", "build", "sparse"):
        for _ in range(1000):
            if "still running" in stream.getvalue():
                break
            threading.Event().wait(0.01)
    lines = stream.getvalue().splitlines()
    assert lines[0].endswith("] [2/3 0002-foo.patch] build: running (next: sparse)")
    assert len(lines) > 1 and all(
        line.endswith("] [2/3 0002-foo.patch] build: still running, 0s (next: sparse)")
        for line in lines[1:])
