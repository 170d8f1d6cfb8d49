"""Completion against release, with the window held open (issue 14, item 7).

vhost_blk_req_put() drops a request's last reference in completion
context: it publishes the request on the done list (llist_add) and then
queues the work that completes it (vhost_vq_work_queue).  Between the
two, a pass of the virtqueue's worker can complete the request, bring
the device's in-flight count to 0 and let the VMM's close free the
device, while the completer still holds a pointer into it (a preempted
kworker, dm-crypt, PREEMPT_RT).  Patch 6 closes the window with an RCU
read section around the two steps and a grace period before the device
is freed.

The test module tests/guest/modules/vblk_window holds a completer in
that window: a kprobe on vhost_vq_work_queue() busy-waits when called
from completion context.  The test pins itself (and so the worker it
creates) to CPU 1, the loop device's completions to CPU 0, and while
CPU 0 is held it completes the request with a second kick and closes
the device.  Close must not return before the completer has left the
window; a kernel that frees the device early fails that assertion, and
KASAN then reports the use-after-free in vhost_vq_work_queue().

The module is built on the host against the kernel's build directory
and handed to the test with ``--test-modules DIR`` (without it the test
is skipped); tests/integration/test_pipeline.py does this for the
in-guest suite::

  mkdir -p build/test-modules && cp tests/guest/modules/vblk_window/* build/test-modules/
  make -C build/x86_64-debug M=$PWD/build/test-modules modules
  kseries run -- python -m pytest --test-modules build/test-modules \\
       tests/guest/test_release_race.py

Kprobes patch kernel text, and under multi-threaded TCG a vCPU that is
executing the code being patched may run stale instructions (boot.py,
vng_command).  The probed function runs only for vhost work, and the
module is loaded and removed while no device exists, so no vCPU runs it
then.  If that ever oopses, run the file alone under single-threaded
TCG (``kseries run --tcg-single-thread``), as it first was.
"""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from vblk_env import kmsg, loop, start

from vblk import request as rq
from vblk import uapi

PARAMS = Path("/sys/module/vblk_window/parameters")
WQ_CPUMASK = Path("/sys/devices/virtual/workqueue/cpumask")
# How long the completer is held.  CPU 1 needs a fraction of it to kick,
# see the completion and close, on a host whose cores other guests share.
DELAY_MS = 10000


def _param(name: str) -> int:
    return int((PARAMS / name).read_text())


def _wait_for(what: str, cond: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not cond():
        assert time.monotonic() < deadline, f"{what}: not after {seconds} s"
        time.sleep(0.01)


@pytest.fixture
def window_module(request: pytest.FixtureRequest) -> Iterator[None]:
    opt = request.config.getoption("--test-modules")
    if opt is None:
        pytest.skip("needs --test-modules DIR with vblk_window.ko built for this kernel "
                    "(see the docstring of test_release_race.py)")
    module = Path(opt) / "vblk_window.ko"
    assert module.is_file(), f"{module} is missing: build it first (see this file's docstring)"
    vermagic = subprocess.run(["modinfo", "-F", "vermagic", str(module)], capture_output=True,
                              text=True, check=True).stdout.split()
    assert vermagic[:1] == [platform.release()], \
        f"{module} was built for {vermagic[:1]}, the guest runs {platform.release()}"
    if (os.cpu_count() or 1) < 2:
        pytest.skip("needs two CPUs: the completer is held on one, the worker runs on the other")
    subprocess.run(["insmod", str(module), f"delay_ms={DELAY_MS}"], check=True)
    kmsg("release race: vblk_window loaded")
    try:
        yield
    finally:
        (PARAMS / "armed").write_text("0")
        _wait_for("the held completer left the window", lambda: _param("in_delay") == 0,
                  DELAY_MS / 1000 + 60)
        subprocess.run(["rmmod", "vblk_window"], check=True)


@contextlib.contextmanager
def completions_on_cpu0() -> Iterator[None]:
    """Unbound kworkers (the loop device's) on CPU 0, this task on CPU 1."""
    old_mask = WQ_CPUMASK.read_text().strip()
    old_affinity = os.sched_getaffinity(0)
    WQ_CPUMASK.write_text("1")
    os.sched_setaffinity(0, {1})
    try:
        yield
    finally:
        os.sched_setaffinity(0, old_affinity)
        WQ_CPUMASK.write_text(old_mask)


def _kasan_reports(since: str) -> list[str]:
    log = subprocess.run(["dmesg"], capture_output=True, text=True, check=True).stdout
    tail = log[log.rfind(since):] if since in log else log
    return [line for line in tail.splitlines() if "KASAN" in line or "BUG:" in line]


@pytest.mark.usefixtures("window_module")
def test_release_waits_for_a_completer_held_between_publish_and_queue() -> None:
    marker = f"release race start {time.monotonic_ns()}"
    kmsg(marker)
    with completions_on_cpu0(), loop() as be:
        # Completions where the loop device's worker runs (CPU 0), not
        # sent back to the submitting CPU.
        name = os.path.basename(be.path)
        Path(f"/sys/block/{name}/queue/rq_affinity").write_text("0")
        # The worker inherits this task's CPUs at VHOST_SET_OWNER.
        with start(be) as b:
            (PARAMS / "armed").write_text("1")
            pending = b.q.submit(rq.read(0, 4096))
            _wait_for("a completer entered the window", lambda: _param("in_delay") == 1, 120)
            kmsg("release race: a completer is held in the window")
            # Another pass of the worker completes the published request.
            b.q.vq.kick()
            done = b.q.wait([pending], timeout=DELAY_MS / 1000)[0]
            assert (done.status, done.used_len) == (uapi.VIRTIO_BLK_S_OK, 4097)
            assert _param("in_delay") == 1, \
                f"the completer left the window before the close (raise DELAY_MS={DELAY_MS})"
            kmsg("release race: the worker completed the request; closing")
            t0 = time.monotonic()
        # The device is closed: release must have waited for the completer.
        waited = time.monotonic() - t0
        assert _param("in_delay") == 0, \
            f"close returned after {waited:.2f} s with a completer still in the window"
    assert _param("hits") == 1
    kmsg(f"release race: close waited {waited:.2f} s for the held completer")
    assert not _kasan_reports(marker)
