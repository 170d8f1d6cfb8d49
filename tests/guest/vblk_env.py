"""Backends and a started device for the in-guest tests of /dev/vhost-blk.

The host filesystem is shared read-only; /tmp is writable.  Every test
is skipped, with the reason, when /dev/vhost-blk is missing or the
tests do not run as root.  Backends: brd (/dev/ram0..3, built in),
null_blk devices made through configfs (memory backed) and a loop
device over a file in /tmp.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import mmap
import os
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from vblk import request as rq
from vblk import uapi
from vblk.device import DEVICE_PATH, VhostBlk

NULLB = Path("/sys/kernel/config/nullb")
LOOP_CTL_GET_FREE = 0x4C82
LOOP_SET_FD = 0x4C00
LOOP_CLR_FD = 0x4C01
LOOP_SET_BLOCK_SIZE = 0x4C09
BLKGETSIZE64 = 0x80081272
BLKFLSBUF = 0x1261


# Loaded in this order by load_vhost_blk().
VHOST_KOS = ("vhost_iotlb", "vhost", "vhost_blk")


def load_vhost_blk(build: Path) -> None:
    """insmod vhost-blk and what it needs from a kernel build directory
    (O=, built with `kseries build --vhost-blk-module`); a module already
    loaded or built in (vhost_iotlb, which VDUSE selects) is left alone.
    Waits for /dev/vhost-blk."""
    builtin = (build / "modules.builtin").read_text() if (build / "modules.builtin").exists() \
        else ""
    for name in VHOST_KOS:
        if Path(f"/sys/module/{name}/initstate").exists() or f"/{name}.ko\n" in builtin:
            continue
        ko = build / "drivers" / "vhost" / f"{name}.ko"
        if not ko.is_file():
            raise pytest.UsageError(f"{ko} is missing: give --module-build the O= directory "
                                    "of `kseries build --vhost-blk-module`")
        done = subprocess.run(["insmod", str(ko)], capture_output=True, text=True, check=False)
        if done.returncode:
            raise AssertionError(f"insmod {ko}: {done.stderr.strip()}")
    for _ in range(200):
        if os.path.exists(DEVICE_PATH):
            return
        time.sleep(0.05)
    raise AssertionError(f"vhost_blk loaded but {DEVICE_PATH} did not appear in 10 s")


# -- backends -------------------------------------------------------------------------


@dataclass
class Backend:
    """An opened block device: path, fd and size."""

    kind: str
    path: str
    fd: int
    size: int

    @property
    def sectors(self) -> int:
        return self.size // 512

    def sysfs(self, attr: str) -> str:
        """/sys/block/<the device>/<attr>, e.g. "queue/write_cache", stripped."""
        name = Path(os.path.realpath(self.path)).name
        return Path(f"/sys/block/{name}/{attr}").read_text().strip()

    def direct_read(self, offset: int, length: int) -> bytes:
        """Read the device with O_DIRECT, past every page cache."""
        fd = os.open(self.path, os.O_RDONLY | os.O_DIRECT)
        try:
            with mmap.mmap(-1, length) as buf:
                n = os.preadv(fd, [buf], offset)
                return bytes(buf[:n])
        finally:
            os.close(fd)

    def direct_write(self, offset: int, data: bytes) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_DIRECT)
        try:
            with mmap.mmap(-1, len(data)) as buf:
                buf[:] = data
                assert os.pwritev(fd, [buf], offset) == len(data)
        finally:
            os.close(fd)


def _size(fd: int) -> int:
    buf = bytearray(8)
    fcntl.ioctl(fd, BLKGETSIZE64, buf, True)
    return int.from_bytes(buf, "little")


def open_excl(path: str) -> int | None:
    """errno of an exclusive open (what mount and swapon do), None if it worked:
    whether anyone, such as a vhost-blk device, holds a claim on the block device."""
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_EXCL))
    except OSError as exc:
        return exc.errno
    return None


@contextlib.contextmanager
def open_bdev(kind: str, path: str, flags: int = os.O_RDWR) -> Iterator[Backend]:
    fd = os.open(path, flags | os.O_CLOEXEC)
    try:
        yield Backend(kind, path, fd, _size(fd))
    finally:
        os.close(fd)


@contextlib.contextmanager
def brd(index: int = 0, flags: int = os.O_RDWR) -> Iterator[Backend]:
    path = f"/dev/ram{index}"
    if not os.path.exists(path):
        pytest.skip(f"{path} is missing (CONFIG_BLK_DEV_RAM=y with 4 devices expected)")
    with open_bdev("brd", path, flags) as be:
        yield be


def _configfs() -> None:
    if not NULLB.parent.is_dir():
        pytest.skip("no /sys/kernel/config (CONFIG_CONFIGFS_FS)")
    if not NULLB.is_dir():
        subprocess.run(["mount", "-t", "configfs", "configfs", str(NULLB.parent)],
                       check=False, capture_output=True)
    if not NULLB.is_dir():
        pytest.skip("no null_blk configfs directory (CONFIG_BLK_DEV_NULL_BLK)")


_nullb_seq = 0


@contextlib.contextmanager
def null_blk(size_mb: int = 64, blocksize: int = 512, discard: bool = True,
             badblocks: list[str] | None = None, cache_mb: int = 0,
             zoned: bool = False) -> Iterator[Backend]:
    """A memory-backed null_blk device made through configfs; ``cache_mb``
    gives it a volatile write cache (and FUA) of that size, ``zoned`` makes
    it a zoned device (CONFIG_BLK_DEV_ZONED)."""
    global _nullb_seq
    _configfs()
    _nullb_seq += 1
    node = NULLB / f"vblk{os.getpid()}_{_nullb_seq}"
    node.mkdir()
    try:
        for attr, value in [("size", size_mb), ("blocksize", blocksize),
                            ("memory_backed", 1), ("discard", int(discard)),
                            ("cache_size", cache_mb), ("zoned", int(zoned)),
                            # Zones of 4 MiB: the default (256 MiB) is larger than the disk.
                            ("zone_size", 4)]:
            (node / attr).write_text(f"{value}\n")
        for bad in badblocks or []:
            (node / "badblocks").write_text(f"{bad}\n")
        (node / "power").write_text("1\n")
        index = int((node / "index").read_text())
        # Since 6.0 the disk is named after the configfs item; older: nullb<index>.
        candidates = [f"/dev/{node.name}", f"/dev/nullb{index}"]
        path = candidates[0]
        for _ in range(100):
            found = [c for c in candidates if os.path.exists(c)]
            if found:
                path = found[0]
                break
            time.sleep(0.05)
        with open_bdev("null_blk", path) as be:
            yield be
    finally:
        with contextlib.suppress(OSError):
            (node / "power").write_text("0\n")
        node.rmdir()


@contextlib.contextmanager
def _dm(kind: str, under: Backend, target: str, config: str) -> Iterator[Backend]:
    """A device-mapper device of one ``target`` line over all of ``under``."""
    name = f"vblk-{kind.removeprefix('dm-')}-{os.getpid()}"
    table = f"0 {under.size // 512} {target}"
    # No udev in the VM: nothing would answer dmsetup's udev synchronisation.
    done = subprocess.run(["dmsetup", "create", "--noudevsync", name, "--table", table],
                          capture_output=True, text=True, check=False)
    if done.returncode:
        raise AssertionError(f"dmsetup create {name}: {done.stderr.strip()} "
                             f"({config}=y is expected)")
    try:
        # No udev in the VM, so no /dev/mapper link: devtmpfs has /dev/dm-N.
        info = subprocess.run(["dmsetup", "info", "-c", "--noheadings", "-o", "blkdevname",
                               name], capture_output=True, text=True, check=True)
        with open_bdev(kind, f"/dev/{info.stdout.strip()}") as be:
            yield be
    finally:
        subprocess.run(["dmsetup", "remove", "--noudevsync", "--retry", name], check=False,
                       capture_output=True)


@contextlib.contextmanager
def dm_delay(under: Backend, ms: int) -> Iterator[Backend]:
    """A dm-delay device over ``under``: every bio is held ``ms`` milliseconds."""
    with _dm("dm-delay", under, f"delay {os.path.realpath(under.path)} 0 {ms}",
             "CONFIG_DM_DELAY") as be:
        yield be


@contextlib.contextmanager
def dm_flakey(under: Backend, feature: str) -> Iterator[Backend]:
    """A dm-flakey device over ``under`` that is always down (up interval 0 s, down
    interval 1 s) with one ``feature``: ``error_writes`` fails every write bio
    (reads pass), ``drop_writes`` completes them without writing."""
    with _dm("dm-flakey", under, f"flakey {os.path.realpath(under.path)} 0 0 1 1 {feature}",
             "CONFIG_DM_FLAKEY") as be:
        yield be


@contextlib.contextmanager
def loop(size: int = 64 << 20, block_size: int = 512) -> Iterator[Backend]:
    """A loop device over a file in /tmp (LOOP_CTL_GET_FREE + LOOP_SET_FD, like losetup),
    with ``block_size``-byte logical blocks (LOOP_SET_BLOCK_SIZE)."""
    image = Path(tempfile.mkstemp(prefix="vblk-loop-", suffix=".img")[1])
    try:
        with image.open("r+b") as fh:
            fh.truncate(size)
        ctl = os.open("/dev/loop-control", os.O_RDWR | os.O_CLOEXEC)
        try:
            index = fcntl.ioctl(ctl, LOOP_CTL_GET_FREE)
        finally:
            os.close(ctl)
        path = f"/dev/loop{index}"
        lfd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        ifd = os.open(image, os.O_RDWR | os.O_CLOEXEC)
        try:
            fcntl.ioctl(lfd, LOOP_SET_FD, ifd)
        finally:
            os.close(ifd)
        if block_size != 512:
            fcntl.ioctl(lfd, LOOP_SET_BLOCK_SIZE, block_size)
        try:
            with open_bdev("loop", path) as be:
                yield be
        finally:
            for _ in range(50):
                try:
                    fcntl.ioctl(lfd, LOOP_CLR_FD)
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY:
                        raise
                    time.sleep(0.1)
            os.close(lfd)
    finally:
        image.unlink()


BACKENDS = ["brd", "null_blk", "loop"]


@dataclass(frozen=True)
class FuzzBudget:
    """When the request fuzzer stops: after ``requests``, or ``seconds``, or either."""

    requests: int | None
    seconds: float | None

    def done(self, sent: int, elapsed: float) -> bool:
        return ((self.requests is not None and sent >= self.requests)
                or (self.seconds is not None and elapsed >= self.seconds))

    @property
    def ring_examples(self) -> int:
        """Broken rings for test_ring_fuzz: one per 100 requests, or 30 on a time budget."""
        return max(10, self.requests // 100) if self.requests is not None else 30


# What the fuzzer sent and got, for the run's summary (conftest.py).
FUZZ_STATS: Counter[str] = Counter()
# Lines for the session summary (the host-side integration test reads them).
REPORT_LINES: list[str] = []


def kmsg(line: str) -> None:
    """Progress for the host: a line in the kernel log, hence on the console
    the host's log file follows while the tests run (pytest's own output
    only arrives when the guest command ends)."""
    with contextlib.suppress(OSError), open("/dev/kmsg", "w") as fh:
        fh.write(f"<6>vhost-blk tests: {line}\n")


def bounded(fn: Callable[[], object], seconds: float = 60.0) -> float:
    """Run ``fn`` and fail if it takes longer than ``seconds`` (hang detector)."""
    t0 = time.monotonic()
    th = threading.Thread(target=fn, daemon=True)
    th.start()
    th.join(seconds)
    assert not th.is_alive(), f"still blocked after {seconds}s"
    return time.monotonic() - t0


@contextlib.contextmanager
def make_backend(kind: str) -> Iterator[Backend]:
    if kind == "brd":
        with brd(0) as be:
            yield be
    elif kind == "null_blk":
        with null_blk() as be:
            yield be
    elif kind == "loop":
        with loop() as be:
            yield be
    else:
        raise ValueError(kind)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    with make_backend(str(request.param)) as be:
        yield be


@pytest.fixture
def ram() -> Iterator[Backend]:
    with brd(0) as be:
        yield be


# -- a started device -------------------------------------------------------------------


@dataclass
class Blk:
    """A vhost-blk device with a backend and one BlkQueue per virtqueue."""

    dev: VhostBlk
    backend: Backend
    queues: list[rq.BlkQueue]

    @property
    def q(self) -> rq.BlkQueue:
        return self.queues[0]

    @property
    def capacity(self) -> int:
        return int(self.dev.get_config().capacity)

    def run(self, chain: rq.Chain, timeout: float = 20.0) -> rq.Completion:
        return self.q.run(chain, timeout)

    def write(self, sector: int, data: bytes, layout: rq.DescLayout = rq.DEFAULT) -> None:
        c = self.run(rq.write(sector, data, layout))
        assert (c.status, c.used_len) == (uapi.VIRTIO_BLK_S_OK, 1), c.chain.label

    def read(self, sector: int, length: int, layout: rq.DescLayout = rq.DEFAULT) -> bytes:
        c = self.run(rq.read(sector, length, layout))
        assert (c.status, c.used_len) == (uapi.VIRTIO_BLK_S_OK, length + 1), c.chain.label
        return c.data

    def still_serves(self, sector: int = 0) -> None:
        """A good write and read-back after a bad request."""
        data = os.urandom(4096)
        self.write(sector, data)
        assert self.read(sector, 4096) == data


@contextlib.contextmanager
def start(backend: Backend | None, num_queues: int = 1, ring_size: int = 128,
          features: int | None = None, serial: bytes | None = None,
          mem_size: int = 32 << 20) -> Iterator[Blk]:
    with VhostBlk(mem_size=mem_size) as dev:
        vqs = dev.setup(num_queues, ring_size, features)
        if serial is not None:
            dev.set_serial(serial)
        if backend is not None:
            dev.set_backend(backend.fd)
        blk = Blk(dev, backend if backend is not None else Backend("none", "", -1, 0),
                  [rq.BlkQueue(vq, dev.mem) for vq in vqs])
        yield blk


@pytest.fixture
def blk(backend: Backend) -> Iterator[Blk]:
    with start(backend) as b:
        yield b


@pytest.fixture
def ramblk(ram: Backend) -> Iterator[Blk]:
    with start(ram) as b:
        yield b
