"""vhost-blk as a module: rmmod racing the last close (issue 17, item 4).

What a loadable vhost-blk must do, from how the module core and misc
devices work and from what vhost-net and vhost-scsi do:

- an open /dev/vhost-blk holds a reference on the module (the misc
  device's fops have an owner), so delete_module() is refused
  (EWOULDBLOCK, what kmod's rmmod reports as "in use") and the device
  keeps serving;
- the release of the last file drops that reference, even with requests
  in flight (the VMM must not wait for a backend that holds bios, see
  vhost_blk_release()); delete_module() may then succeed at once, and
  must not return before those requests have completed and their devices
  are freed: when it returns no page is pinned any more, the backend's
  claim is dropped, and every request the device completed got its
  status in the memory, which is still mapped;
- the same when the owner is killed with SIGKILL instead of closing;
- open() racing unload and load fails only with ENOENT, ENODEV or ENXIO;
- after every unload the module loads again and serves requests.

A kernel whose module_exit() returned with devices still waiting for
their requests would fail the pin and claim assertions, and the
requests' completions would then run in unloaded module text.

The kernel must be built with CONFIG_VHOST_BLK=m: ``kseries build
--vhost-blk-module`` (O=build/dev-x86_64-debug-mod), then::

  kseries run --outdir build/dev-x86_64-debug-mod -- python -m pytest \\
      --module-build build/dev-x86_64-debug-mod tests/guest/test_module.py

Without ``--module-build`` or on a kernel with vhost-blk built in (the
CI's), the tests are skipped with the reason.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from leaks import pins_held
from vblk_env import Backend, dm_delay, kmsg, load_vhost_blk, null_blk, open_excl, start

from kseries.l2 import guest
from vblk import request as rq
from vblk import uapi
from vblk.device import VhostBlk
from vblk.memory import GuestMemory

MODULE = "vhost_blk"
SYS_DELETE_MODULE = 176  # x86_64
# How long an unload may wait for the requests of released devices.
UNLOAD_BOUND = 60.0
# dm-delay's hold on every bio: requests are in flight when the file is released.
DELAY_MS = 1000
_libc = ctypes.CDLL(None, use_errno=True)


def delete_module(name: str = MODULE) -> int:
    """delete_module(2) as kmod's rmmod calls it; 0 or the errno."""
    if _libc.syscall(SYS_DELETE_MODULE, name.encode(), os.O_NONBLOCK) == 0:
        return 0
    return ctypes.get_errno()


def loaded() -> bool:
    return Path(f"/sys/module/{MODULE}/initstate").exists()


def unload_when_free(what: str) -> float:
    """Retry delete_module() while the module is in use; seconds until it returned 0."""
    t0 = time.monotonic()
    while True:
        err = delete_module()
        if err == 0:
            return time.monotonic() - t0
        assert err in (errno.EWOULDBLOCK, errno.EBUSY), \
            f"{what}: delete_module: {errno.errorcode.get(err, err)}"
        assert time.monotonic() - t0 < UNLOAD_BOUND, \
            f"{what}: vhost_blk still in use after {UNLOAD_BOUND} s"
        time.sleep(0.001)


@pytest.fixture(scope="module")
def build(request: pytest.FixtureRequest) -> Iterator[Path]:
    # Built in: the device is there with no module behind it (a built-in
    # vhost_blk has no parameters, so no /sys/module/vhost_blk either).
    if os.path.exists("/dev/vhost-blk") and not loaded():
        pytest.skip("vhost_blk is built in (CONFIG_VHOST_BLK=y): boot a kernel from "
                    "`kseries build --vhost-blk-module` (see this file's docstring)")
    opt = request.config.getoption("--module-build")
    if opt is None:
        pytest.skip("needs --module-build DIR, the O= directory of the running kernel "
                    "built with `kseries build --vhost-blk-module`")
    path = Path(opt).resolve()
    ko = path / "drivers" / "vhost" / f"{MODULE}.ko"
    assert ko.is_file(), f"{ko} is missing: was {path} built with --vhost-blk-module?"
    vermagic = subprocess.run(["modinfo", "-F", "vermagic", str(ko)], capture_output=True,
                              text=True, check=True).stdout.split()
    assert vermagic[:1] == [platform.release()], \
        f"{ko} was built for {vermagic[:1]}, the guest runs {platform.release()}"
    load_vhost_blk(path)
    yield path
    # The other tests of a session need the device.
    if not loaded():
        load_vhost_blk(path)


@pytest.fixture(scope="module")
def slow(build: Path) -> Iterator[Backend]:
    with null_blk(size_mb=64) as nb, dm_delay(nb, DELAY_MS) as be:
        yield be


class Device:
    """A device with requests held in the backend, whose memory outlives its file."""

    def __init__(self, backend: Backend, n: int = 48, size: int = 64 << 10) -> None:
        self.mem = GuestMemory(16 << 20)
        self.dev = VhostBlk(mem=self.mem)
        vqs = self.dev.start(backend.fd, ring_size=128)
        self.q = rq.BlkQueue(vqs[0], self.mem)
        self.pending = rq.flood(self.q, n, size)

    def release_file(self) -> None:
        """close() of the device's file only: the memory stays mapped."""
        os.close(self.dev.fd)
        self.dev.fd = -1

    def completed(self) -> list[rq.Completion]:
        self.q.reap()
        return [p.done for p in self.pending if p.done is not None]

    def close(self) -> None:
        self.dev.close()
        self.mem.close()


def wait_pinned(base: int, what: str) -> int:
    """Wait until the device holds pinned pages (requests in the backend)."""
    deadline = time.monotonic() + 30
    while True:
        held = pins_held()
        assert held is not None, "the kernel has no nr_foll_pin_* counters"
        if held > base:
            return held - base
        assert time.monotonic() < deadline, f"{what}: no page pinned after 30 s"
        time.sleep(0.01)


def check_after_unload(base: int, backend: Backend, what: str) -> None:
    """What an unload that returned must have waited for."""
    assert pins_held() == base, f"{what}: pages still pinned when delete_module returned"
    assert open_excl(backend.path) is None, \
        f"{what}: the backend still claimed when delete_module returned"


def serves(backend: Backend) -> None:
    """A device on ``backend`` writes and reads back (after a reload)."""
    with start(backend) as b:
        b.still_serves(8)


def test_unload_refused_while_open(build: Path, slow: Backend) -> None:
    with VhostBlk() as dev:
        dev.start(slow.fd)
        assert delete_module() in (errno.EWOULDBLOCK, errno.EBUSY)
        assert loaded()
    serves(slow)


@pytest.mark.parametrize("round_", range(4))
def test_unload_after_close_with_requests_in_flight(build: Path, slow: Backend,
                                                    round_: int) -> None:
    """The file released first, then delete_module at once."""
    base = pins_held()
    assert base is not None
    d = Device(slow)
    try:
        held = wait_pinned(base, "before close")
        t0 = time.monotonic()
        d.release_file()
        waited = unload_when_free("after close")
        kmsg(f"module: close + unload round {round_}: {held} pages pinned at close, "
             f"delete_module returned after {waited:.2f} s")
        check_after_unload(base, slow, "after close")
        assert time.monotonic() - t0 < UNLOAD_BOUND
        done = d.completed()
        assert done, "no request completed into the still mapped memory"
        assert all((c.status, c.used_len) == (uapi.VIRTIO_BLK_S_OK, 1) for c in done), \
            [(c.status, c.used_len) for c in done if c.status != uapi.VIRTIO_BLK_S_OK]
    finally:
        d.close()
        load_vhost_blk(build)
    serves(slow)


@pytest.mark.parametrize("round_", range(4))
def test_unload_races_the_last_close(build: Path, slow: Backend, round_: int) -> None:
    """delete_module in a loop while another thread releases the file."""
    base = pins_held()
    assert base is not None
    d = Device(slow)
    try:
        wait_pinned(base, "before close")
        closer = threading.Timer(0.001 * round_, d.release_file)
        closer.start()
        waited = unload_when_free("racing close")
        closer.join()
        kmsg(f"module: unload racing close round {round_}: returned after {waited:.2f} s")
        check_after_unload(base, slow, "racing close")
        done = d.completed()
        assert all(c.status == uapi.VIRTIO_BLK_S_OK for c in done)
    finally:
        d.close()
        load_vhost_blk(build)
    serves(slow)


# The owner of test_unload_races_sigkill_of_the_owner: a device on the
# backend (the fd in argv[1]) with writes held in dm-delay, then it waits to be killed.
OWNER = """
import sys, time
from vblk import request as rq
from vblk.device import VhostBlk
dev = VhostBlk(mem_size=16 << 20)
rq.flood(rq.BlkQueue(dev.start(int(sys.argv[1]), ring_size=128)[0], dev.mem), 48)
print("ready", flush=True)
time.sleep(3600)
"""


def test_unload_races_sigkill_of_the_owner(build: Path, slow: Backend) -> None:
    base = pins_held()
    assert base is not None
    tools = Path(rq.__file__).resolve().parents[1]
    owner = subprocess.Popen([sys.executable, "-c", OWNER, str(slow.fd)],
                             stdout=subprocess.PIPE, text=True, pass_fds=(slow.fd,),
                             env={**os.environ, "PYTHONPATH": str(tools)})
    assert owner.stdout is not None
    try:
        ready, _, _ = select.select([owner.stdout], [], [], 120)
        line = owner.stdout.readline() if ready else ""
        assert line == "ready\n", (f"the owner did not set its device up in 120 s "
                                   f"({line!r}):\n{guest.threads(owner.pid, sample=0)}")
        wait_pinned(base, "before the kill")
        owner.kill()
        waited = unload_when_free("racing SIGKILL")
        kmsg(f"module: unload racing SIGKILL: returned after {waited:.2f} s")
        check_after_unload(base, slow, "racing SIGKILL")
        assert owner.wait(timeout=UNLOAD_BOUND) == -signal.SIGKILL
    finally:
        if owner.poll() is None:
            owner.kill()
        load_vhost_blk(build)
    serves(slow)


def test_open_races_unload_and_load(build: Path, slow: Backend) -> None:
    """Devices opened, started and closed while the module comes and goes."""
    stop = time.monotonic() + 30
    errors: list[str] = []
    opened = refused = 0

    def user() -> None:
        nonlocal opened, refused
        while time.monotonic() < stop:
            try:
                with VhostBlk(mem_size=4 << 20) as dev:
                    dev.start(slow.fd)
                    opened += 1
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
                    refused += 1
                    continue
                errors.append(f"{type(exc).__name__}: {exc}")
                return

    t = threading.Thread(target=user)
    t.start()
    cycles = 0
    try:
        while t.is_alive():
            if delete_module() == 0:
                cycles += 1
                time.sleep(0.05)
                load_vhost_blk(build)
            time.sleep(0.01)
    finally:
        t.join()
        if not loaded():
            load_vhost_blk(build)
    kmsg(f"module: open racing unload: {cycles} unloads, {opened} devices started, "
         f"{refused} opens refused")
    assert not errors, errors
    assert cycles > 0 and opened > 0
    serves(slow)
