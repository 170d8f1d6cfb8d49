"""What the virtio 1.2 specification requires beyond the request format.

Each test states the requirement it checks, from section 5.2.6 (block
device) or 2.7 (split virtqueues), and what QEMU's virtio-blk and
vhost-scsi do where the specification leaves room.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import mmap
import os
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from vblk_env import NULLB, Backend, brd, dm_delay, loop, null_blk, open_bdev, start

from kseries.vblk import request as rq
from kseries.vblk import uapi
from kseries.vblk.device import DEFAULT_FEATURES


def _power_cycle(be: Backend) -> None:
    """Turn a null_blk off and on again: its volatile cache is dropped."""
    node = NULLB / Path(be.path).name
    (node / "power").write_text("0\n")
    (node / "power").write_text("1\n")
    for _ in range(100):
        if os.path.exists(be.path):
            return
        time.sleep(0.05)
    raise AssertionError(f"{be.path} did not come back after a power cycle")


@pytest.mark.parametrize("flush", [True, False], ids=["flush-acked", "flush-not-acked"])
def test_writes_are_stable_without_flush(flush: bool) -> None:
    """5.2.6.2: without VIRTIO_BLK_F_FLUSH (and CONFIG_WCE) every completed
    write must be stable.  null_blk with a write cache loses what is in the
    cache when it is powered off: a write the guest could not flush must
    survive that, one it could have flushed and did not may be lost (here
    it is, which shows the cache really is volatile)."""
    features = DEFAULT_FEATURES if flush else DEFAULT_FEATURES & ~uapi.bit(uapi.VIRTIO_BLK_F_FLUSH)
    data = os.urandom(8192)
    with null_blk(cache_mb=4) as be:
        assert be.sysfs("queue/write_cache") == "write back"
        with start(be, features=features) as b:
            b.write(64, data)
        _power_cycle(be)
        with open_bdev("null_blk", be.path) as again:
            got = again.direct_read(64 * 512, len(data))
    if flush:
        assert got != data, "the write survived a power cycle without a flush: the test " \
            "cannot tell a stable write from a cached one"
    else:
        assert got == data, "a completed write was lost although the guest cannot flush"


def _mprotect(addr: int, length: int, prot: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    if libc.mprotect(addr, length, prot) != 0:
        raise OSError(ctypes.get_errno(), "mprotect")


def test_status_write_failure_publishes_no_used_entry(ram: Backend) -> None:
    """A used entry tells the guest its status byte is written (2.7.8, 5.2.6).

    When the device cannot write it (here the VMM made the page read-only),
    it must not publish the entry; it reports a virtqueue error, as
    vhost-scsi does when its response copy fails, and the queue goes on."""
    with start(ram) as b:
        page = mmap.PAGESIZE
        # A flush whose only writable buffer is one whole page: the status
        # byte is its last byte, and nothing else lives on that page.
        chain = rq.Chain((rq.Buf.out(uapi.outhdr(uapi.VIRTIO_BLK_T_FLUSH)),
                          rq.Buf.into(page, align=page)), label="flush, status page read-only")
        pending = b.q.submit(chain, kick=False)
        status_page = pending.addrs[1]
        assert status_page % page == 0
        _mprotect(status_page, page, mmap.PROT_READ)
        try:
            b.q.kick()
            deadline = time.monotonic() + 5
            error = False
            while time.monotonic() < deadline and not error:
                error = b.q.vq_error()
                time.sleep(0.05)
            with contextlib.suppress(TimeoutError, rq.VqError):
                b.q.wait([pending], timeout=1)
            assert pending.done is None, (
                f"used entry published (len {pending.done.used_len}) for a status "
                "the device could not write")
            assert error, "the failed status write was not reported on the error eventfd"
        finally:
            _mprotect(status_page, page, mmap.PROT_READ | mmap.PROT_WRITE)
        # The queue still serves; the lost request's buffers go back.
        b.q.abandon()
        b.still_serves()


@pytest.mark.parametrize("kind", ["brd", "loop"])
def test_write_zeroes_may_unmap_only_when_the_backend_deallocates(kind: str) -> None:
    """5.2.4: write_zeroes_may_unmap says the device MAY deallocate on a
    write zeroes with the unmap flag.  brd has no write zeroes operation
    (the block layer writes zero pages, which never deallocates); a loop
    device punches holes in its file."""
    with (brd(0) if kind == "brd" else loop()) as be, start(be) as b:
        wz = int(be.sysfs("queue/write_zeroes_max_bytes"))
        cfg = b.dev.get_config()
        assert cfg.write_zeroes_may_unmap == (1 if wz else 0), (
            f"{kind}: write_zeroes_max_bytes {wz}, may_unmap {cfg.write_zeroes_may_unmap}")


BLKROSET = 0x125D  # _IO(0x12, 93)


def test_backend_set_read_only_after_attach_fails_writes(ram: Backend) -> None:
    """A device whose backend becomes read-only must fail writes (5.2.6.2
    for RO; the block layer itself only warns about a write to a read-only
    block device and lets it through)."""
    data = os.urandom(4096)
    ram.direct_write(0, data)
    with start(ram) as b:
        assert b.run(rq.write(8, b"\1" * 4096)).ok
        fcntl.ioctl(ram.fd, BLKROSET, struct.pack("i", 1))
        try:
            for chain in (rq.write(0, b"\0" * 4096), rq.write_zeroes([(0, 8)]),
                          rq.discard([(0, 8)])):
                c = b.run(chain)
                assert c.status == uapi.VIRTIO_BLK_S_IOERR, (chain.label, c.status)
            assert b.read(0, 4096) == data
        finally:
            fcntl.ioctl(ram.fd, BLKROSET, struct.pack("i", 0))
        # Writable again: the device follows the block device.
        assert b.run(rq.write(0, b"\2" * 4096)).ok
    assert ram.direct_read(0, 4096) == b"\2" * 4096


def _open_excl(path: str) -> int | None:
    """errno of an exclusive open (what mount and swapon do), None if it worked."""
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_EXCL))
    except OSError as exc:
        return exc.errno
    return None


def test_backend_is_claimed_exclusively(ram: Backend) -> None:
    """While a guest owns a block device, the host cannot mount it or give
    it to another guest: vhost-blk holds it as a file system would."""
    assert _open_excl(ram.path) is None
    with start(ram) as b:
        assert _open_excl(ram.path) == errno.EBUSY
        with start(None) as other:
            with pytest.raises(OSError) as exc:
                other.dev.set_backend(ram.fd)
            assert exc.value.errno == errno.EBUSY
        # The same device may attach it again (the same holder).
        b.dev.set_backend(ram.fd)
        assert b.run(rq.write(0, b"\3" * 4096)).ok
        # A plain open still works: a VMM or a backup tool may read it.
        assert ram.direct_read(0, 4096) == b"\3" * 4096
        b.dev.set_backend(-1)
        assert _open_excl(ram.path) is None
    assert _open_excl(ram.path) is None


CGROUP = Path("/sys/fs/cgroup")


@contextlib.contextmanager
def in_cgroup(*controllers: str) -> Iterator[Path]:
    """This process in a new cgroup with ``controllers`` enabled, as a VMM
    would be; back in the root cgroup afterwards."""
    if not (CGROUP / "cgroup.controllers").exists():
        subprocess.run(["mount", "-t", "cgroup2", "none", str(CGROUP)], check=False)
    have = (CGROUP / "cgroup.controllers").read_text().split()
    missing = [c for c in controllers if c not in have]
    if missing:
        raise AssertionError(f"cgroup2 has no {', '.join(missing)} controller: the test "
                             "kernel needs CONFIG_MEMCG and CONFIG_BLK_CGROUP")
    (CGROUP / "cgroup.subtree_control").write_text(
        " ".join(f"+{c}" for c in controllers) + "\n")
    cg = CGROUP / f"vblk-test-{os.getpid()}"
    cg.mkdir()
    try:
        (cg / "cgroup.procs").write_text(f"{os.getpid()}\n")
        try:
            yield cg
        finally:
            (CGROUP / "cgroup.procs").write_text(f"{os.getpid()}\n")
    finally:
        for _ in range(50):  # vhost workers leave the cgroup as they exit
            try:
                cg.rmdir()
                break
            except OSError:
                time.sleep(0.1)


def _kernel_bytes(cg: Path) -> int:
    for line in (cg / "memory.stat").read_text().splitlines():
        key, value = line.split()
        if key == "kernel":
            return int(value)
    raise AssertionError(f"no 'kernel' in {cg}/memory.stat")


def test_device_memory_is_charged_to_the_owner(ram: Backend) -> None:
    """A guest's device state counts against its VMM's memory cgroup, as the
    guest's RAM does (GFP_KERNEL_ACCOUNT, like vhost-net's and KVM's)."""
    n = 8
    with in_cgroup("memory") as cg:
        before = _kernel_bytes(cg)
        with contextlib.ExitStack() as stack:
            for i in range(n):
                stack.enter_context(start(ram if i == 0 else None, num_queues=4,
                                          ring_size=256, mem_size=1 << 20))
            grown = _kernel_bytes(cg) - before
    # Each open device has 16 virtqueues with their iovec arrays (~300 KiB)
    # and 256 requests a queue set up; a few KiB would be struct files only.
    assert grown >= n * (256 << 10), f"{n} devices grew the cgroup's kernel memory by {grown}"


def _wbytes(cg: Path, be: Backend) -> int:
    st = os.stat(os.path.realpath(be.path))
    dev = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    for line in (cg / "io.stat").read_text().splitlines():
        fields = line.split()
        if fields and fields[0] == dev:
            return int(dict(f.split("=") for f in fields[1:])["wbytes"])
    return 0


def test_write_zeroes_is_charged_to_the_owner(ram: Backend) -> None:
    """Write zeroes is the guest's I/O: it must count against the VMM's io
    cgroup (io.max, io.weight), not the root's.  brd has no write zeroes
    operation, so the block layer writes zero pages: 8 MiB of writes."""
    with in_cgroup("io") as cg:
        with start(ram) as b:  # the vhost worker starts in the VMM's cgroup
            c = b.run(rq.write_zeroes([(0, 16384)]))
            assert c.ok
        wbytes = _wbytes(cg, ram)
    assert wbytes >= 8 << 20, f"the VMM's cgroup was charged {wbytes} bytes of 8 MiB"


def test_zoned_backend_is_refused() -> None:
    """A guest without VIRTIO_BLK_F_ZONED cannot follow write pointers: a
    zoned block device is refused when it is attached, not on the first
    write the guest makes."""
    with null_blk(zoned=True, discard=False) as zbd, start(None) as b:
        assert zbd.sysfs("queue/zoned") != "none"
        with pytest.raises(OSError) as exc:
            b.dev.set_backend(zbd.fd)
        assert exc.value.errno == errno.EOPNOTSUPP


def test_set_mem_table_waits_for_requests_in_flight(ram: Backend) -> None:
    """A request's data and status go where the memory table said when it
    was taken; the VMM may unmap old memory once SET_MEM_TABLE returns, so
    no request may still be in flight then (vhost-scsi's rule too)."""
    with dm_delay(ram, 400) as slow, start(slow) as b:
        pendings = [b.q.submit(rq.read(8 * i, 4096)) for i in range(8)]
        # Wait until the worker has taken them all: with EVENT_IDX it then
        # asks to be kicked at the next request (avail_event), and dm-delay
        # holds each read 400 ms.
        ring = b.q.vq.ring
        assert ring.event_idx
        deadline = time.monotonic() + 10
        while ring.avail_event != len(pendings):
            assert time.monotonic() < deadline, f"requests not taken: avail_event " \
                f"{ring.avail_event}"
            time.sleep(0.01)
        assert ring.used_idx == 0, "dm-delay did not hold the reads"
        t0 = time.monotonic()
        b.dev.set_mem_table()
        took = time.monotonic() - t0
        assert ring.used_idx == len(pendings), (
            f"SET_MEM_TABLE returned after {took:.2f} s with "
            f"{len(pendings) - ring.used_idx} requests still in flight")
        done = b.q.wait(pendings)
        assert all(c.ok for c in done)
        # Served again after the new table.
        b.still_serves()
