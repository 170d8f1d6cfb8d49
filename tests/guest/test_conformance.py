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
import itertools
import mmap
import multiprocessing
import os
import signal
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path

import pytest
from vblk_env import (
    NULLB,
    Backend,
    brd,
    dm_delay,
    kmsg,
    loop,
    null_blk,
    open_bdev,
    open_excl,
    start,
)

from vblk import request as rq
from vblk import uapi
from vblk.device import DEFAULT_FEATURES
from vblk.vring import Seg


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


def test_backend_is_claimed_exclusively(ram: Backend) -> None:
    """While a guest owns a block device, the host cannot mount it or give
    it to another guest: vhost-blk holds it as a file system would."""
    assert open_excl(ram.path) is None
    with start(ram) as b:
        assert open_excl(ram.path) == errno.EBUSY
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
        assert open_excl(ram.path) is None
    assert open_excl(ram.path) is None


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


# -- any layout, any alignment ------------------------------------------------------------

# 2.6.4: a device offering VIRTIO_F_VERSION_1 must not assume any layout.
# What real drivers send that the backend cannot DMA to in place: firmware
# (SeaBIOS, OVMF) uses 8-byte aligned buffers, Linux on a 4096-byte-sector
# disk may split a block across two pages, legacy drivers put the header
# and the data in one descriptor.  Each size: 12 KiB, and 2 MiB + 4 KiB,
# more than one bounce chunk.
ANY_LAYOUT: dict[str, Callable[[int], rq.DescLayout]] = {
    "8-byte-aligned": lambda size: rq.DescLayout(align=4096, phase=8),
    "odd-address": lambda size: rq.DescLayout(align=4096, phase=1),
    "block-split-3584-512": lambda size: rq.DescLayout(
        data_segs=(3584, 512, size - 4096), align=4096, phase=512),
    "8-byte-aligned-segments": lambda size: rq.DescLayout(
        data_segs=(1000, 3096, size - 4096), align=8, phase=0),
    "header-merged": lambda size: rq.DescLayout(header_merged=True),
}


ANY_LAYOUT_CASES = [(lbs, name, 12 << 10) for lbs in (512, 4096) for name in ANY_LAYOUT] + [
    (4096, "8-byte-aligned", (2 << 20) + 4096), (4096, "block-split-3584-512", (2 << 20) + 4096)]


@pytest.mark.parametrize(("lbs", "name", "size"), ANY_LAYOUT_CASES,
                         ids=[f"{lbs}-{n}-{size >> 10}K" for lbs, n, size in ANY_LAYOUT_CASES])
def test_any_layout_and_alignment_is_served(lbs: int, name: str, size: int) -> None:
    """Served with the right data, on 512 and 4096-byte-sector backends;
    failed (IOERR) before vhost-blk bounced such buffers."""
    layout = ANY_LAYOUT[name](size)
    data = os.urandom(size)
    with null_blk(blocksize=lbs) as be, start(be, mem_size=64 << 20) as b:
        c = b.run(rq.write(8, data, layout))
        assert (c.status, c.used_len) == (uapi.VIRTIO_BLK_S_OK, 1), c.chain.label
        assert be.direct_read(8 * 512, size) == data
        if not layout.header_merged:
            be.direct_write(1 << 20, data[::-1])
            c = b.run(rq.read(2048, size, layout))
            assert (c.status, c.used_len) == (uapi.VIRTIO_BLK_S_OK, size + 1)
            assert c.data == data[::-1]
        b.still_serves()


def test_bounced_write_to_read_only_backend_fails(ram: Backend) -> None:
    with start(ram, features=DEFAULT_FEATURES | uapi.bit(uapi.VIRTIO_BLK_F_RO)) as b:
        c = b.run(rq.write(0, b"\7" * 4096, rq.DescLayout(align=4096, phase=8)))
        assert c.status == uapi.VIRTIO_BLK_S_IOERR
    assert ram.direct_read(0, 4096) != b"\7" * 4096


# -- what one guest can hold ---------------------------------------------------------------


def _pins() -> int:
    """Pages pinned with FOLL_PIN in the whole VM, from /proc/vmstat."""
    stat = dict(line.split() for line in Path("/proc/vmstat").read_text().splitlines())
    return int(stat["nr_foll_pin_acquired"]) - int(stat["nr_foll_pin_released"])


def test_pinned_pages_per_queue_are_bounded(ram: Backend) -> None:
    """A guest can point every segment of its requests at one page, which
    FOLL_PIN then pins once per segment: 80 reads of 950 segments into the
    same 512 bytes are 76000 pins of one page.  vhost-blk stops taking
    requests from a queue past 65536 pins (256 MiB of 4 KiB pages), and
    resumes as they complete.  The backend is a suspended dm device, which
    holds every read until it is resumed."""
    nseg, nreq = 950, 80
    base = _pins()
    with dm_delay(ram, 0) as dm, start(dm, ring_size=128) as b:
        mem, ring = b.dev.mem, b.q.vq.ring
        header = mem.alloc(16)
        mem.write(header, uapi.outhdr(uapi.VIRTIO_BLK_T_IN, 0))
        page, status = mem.alloc(4096, align=4096), mem.alloc(1)
        chain = [Seg(header, 16, False), *[Seg(page, 512, True)] * nseg, Seg(status, 1, True)]
        with _suspended(dm):
            for _ in range(nreq):
                ring.publish(ring.add_chain(chain, indirect=True))
            b.q.vq.kick()
            # Until the worker stops pinning: the same count for 2 s.
            samples = [-1]
            deadline = time.monotonic() + 120
            while samples[-5:] != [samples[-1]] * 5 or samples[-1] <= 0:
                assert time.monotonic() < deadline, f"pins still moving: {samples[-5:]}"
                time.sleep(0.5)
                samples.append(_pins() - base)
            held = samples[-1]
        deadline = time.monotonic() + 120
        while ring.used_idx != nreq:
            assert time.monotonic() < deadline, f"{ring.used_idx} of {nreq} reads completed"
            time.sleep(0.1)
        assert mem.read(status, 1) == bytes([uapi.VIRTIO_BLK_S_OK])
    kmsg(f"pinned pages bound: {held} pins held by one queue")
    assert held > 10000, f"only {held} pages pinned: the test did not load the queue"
    assert held <= 65536 + nseg, f"{held} pins held by one queue"


def test_large_requests_do_not_starve_another_queue(ram: Backend) -> None:
    """Two queues on one worker (the default): 8 reads of 4 MiB on queue 0
    and one of 4 KiB on queue 1, kicked together.  Counting requests only
    (256 per pass), the worker served all of queue 0 before queue 1; with a
    byte weight it yields to queue 1 after a few."""
    ram.direct_write(0, os.urandom(4 << 20))
    with start(ram, num_queues=2, mem_size=64 << 20) as b:
        big = [b.queues[0].submit(rq.read(0, 4 << 20), kick=False) for _ in range(8)]
        small = b.queues[1].submit(rq.read(0, 4096), kick=False)
        b.queues[0].kick()
        b.queues[1].kick()
        b.queues[1].wait([small], timeout=60)
        served_before = b.queues[0].vq.ring.used_idx
        assert all(c.ok for c in b.queues[0].wait(big, timeout=60))
    assert served_before < 8, "queue 1 waited for every request of queue 0"


def test_chain_straddling_memory_regions_is_served(ram: Backend) -> None:
    """A buffer that crosses from one region of the memory table into the
    next takes two iovecs.  A read of seg_max segments, 63 of which straddle
    the boundaries of a 64-region table (vhost's max_mem_regions), must fit
    vhost's 1024 iovecs; with seg_max 1022 it did not, and the queue stopped."""
    regions_max = int(Path("/sys/module/vhost/parameters/max_mem_regions").read_text())
    assert regions_max == 64
    with start(ram, mem_size=32 << 20) as b:
        seg_max = int(b.dev.get_config().seg_max)
        data = os.urandom(4096 * seg_max)
        ram.direct_write(0, data)
        layout = rq.DescLayout(data_segs=(4096,) * seg_max, indirect=True, align=4096, phase=2048)
        pending = b.q.submit(rq.read(0, len(data), layout), kick=False)
        # A region boundary in the middle of each of the first 63 data buffers.
        data_addrs = pending.addrs[1:1 + seg_max]
        gpa, size, uaddr = b.dev.mem.region
        points = [gpa, *sorted(a + 2048 for a in data_addrs[:regions_max - 1]), gpa + size]
        b.dev.set_mem_table([(a, e - a, uaddr + a - gpa) for a, e in itertools.pairwise(points)])
        b.q.kick()
        c = b.q.wait([pending], timeout=60)[0]
        assert (c.status, c.used_len) == (uapi.VIRTIO_BLK_S_OK, len(data) + 1)
        assert c.data == data
        assert not b.q.vq_error()


def test_oversized_chain_that_honours_seg_max_completes_with_ioerr(ram: Backend) -> None:
    """A write of seg_max segments that all point at one 4 KiB buffer, with a
    region boundary of the memory table in the middle of that buffer: every
    segment takes two iovecs, 1918 in all, more than vhost's 1024.  The chain
    honours seg_max (buffers the device only reads may overlap), so it must
    complete, with IOERR and the status byte as its used length, and the
    queue go on.  vhost's own walk, which gave up on the chain, has
    signalled the error eventfd (the uAPI page says so).  Before, vhost left
    the chain in the ring and the queue stopped."""
    ram.direct_write(0, bytes(4096))
    with start(ram, mem_size=32 << 20) as b:
        mem, ring = b.dev.mem, b.q.vq.ring
        seg_max = int(b.dev.get_config().seg_max)
        header = mem.alloc(16)
        mem.write(header, uapi.outhdr(uapi.VIRTIO_BLK_T_OUT, 0))
        page, status = mem.alloc(4096, align=4096), mem.alloc(1)
        mem.write(page, b"\7" * 4096)
        mem.write(status, b"\xff")
        gpa, size, uaddr = mem.region
        cut = page + 2048
        b.dev.set_mem_table([(gpa, cut - gpa, uaddr), (cut, gpa + size - cut, uaddr + cut - gpa)])
        chain = [Seg(header, 16, False), *[Seg(page, 4096, False)] * seg_max,
                 Seg(status, 1, True)]
        head = ring.add_chain(chain, indirect=True)
        ring.publish(head)
        b.q.vq.kick()
        deadline = time.monotonic() + 30
        while not ring.has_used():
            assert time.monotonic() < deadline, "the chain never completed: the queue stopped"
            time.sleep(0.1)
        [(used, _)] = ring.get_used()
        assert (used.id, used.length) == (head, 1)
        assert mem.read(status, 1) == bytes([uapi.VIRTIO_BLK_S_IOERR])
        assert ram.direct_read(0, 4096) != b"\7" * 4096
        assert b.q.vq_error(), "vhost's failed walk signals the error eventfd"
        b.still_serves()


# -- a backend that never completes -------------------------------------------------------


def _dm(be: Backend, *args: str) -> None:
    rdev = os.stat(be.path).st_rdev
    subprocess.run(["dmsetup", *args, "-j", str(os.major(rdev)), "-m", str(os.minor(rdev))],
                   check=True, capture_output=True)


@contextlib.contextmanager
def _suspended(dm: Backend) -> Iterator[None]:
    """The dm device suspended with --noflush: it holds every new bio until
    it is resumed, on leaving the block."""
    _dm(dm, "suspend", "--noflush")
    try:
        yield
    finally:
        _dm(dm, "resume")


def _stuck_vmm(path: str, op: str, conn: Connection) -> None:
    """A VMM (a child process) with one read held by a suspended dm device,
    which then stops the device, sets a memory table, or just waits."""
    with open_bdev("dm", path) as be, start(be) as b:
        b.q.submit(rq.read(0, 4096))
        conn.send("submitted")
        time.sleep(1)
        if op == "stop":
            b.dev.set_backend(-1)
        elif op == "mem-table":
            b.dev.set_mem_table()
        conn.send("returned")
        time.sleep(3600)


@pytest.mark.parametrize("op", ["stop", "mem-table", "exit"])
def test_vmm_stays_killable_with_a_stuck_backend(ram: Backend, op: str) -> None:
    """A backend can hold bios forever (dm multipath queue_if_no_path; here a
    dm device suspended with --noflush, which queues new bios).  The VMM
    waiting for them in SET_BACKEND(-1), SET_MEM_TABLE or at exit must
    still die on SIGKILL; the requests complete when the backend resumes,
    and then the device lets go of the backend.  Before, the VMM stayed in
    D state until the backend resumed."""
    with dm_delay(ram, 0) as dm:
        ctx = multiprocessing.get_context("fork")
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_stuck_vmm, args=(dm.path, op, child))
        try:
            with _suspended(dm):
                proc.start()
                assert parent.poll(30) and parent.recv() == "submitted"
                time.sleep(2)
                if op != "exit":
                    assert not parent.poll(), f"{op} returned with a read held by the backend"
                assert proc.pid is not None
                os.kill(proc.pid, signal.SIGKILL)
                proc.join(10)
                killed = not proc.is_alive()
        finally:
            if proc.pid is not None:
                proc.join(30)
        assert killed, f"the VMM did not die on SIGKILL while in {op}"
        # The held read completes, then the device is freed and its claim
        # on the backend released: another exclusive opener gets it.
        deadline = time.monotonic() + 30
        while True:
            try:
                os.close(os.open(dm.path, os.O_RDONLY | os.O_EXCL))
                break
            except OSError as e:
                assert e.errno == errno.EBUSY, e
                assert time.monotonic() < deadline, "the backend is still claimed"
                time.sleep(0.2)
