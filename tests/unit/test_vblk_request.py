"""vblk.request: chain builders and the submit/complete path (fake device)."""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vblk_fake import FakeDevice

from vblk import request as rq
from vblk import uapi
from vblk.device import Vq
from vblk.memory import GuestMemory
from vblk.vring import SplitVring


def _hdr(chain: rq.Chain) -> bytes:
    out = b""
    for b in chain.bufs:
        if b.write:
            break
        out += b.data
    return out[:16]


def test_read_default_layout() -> None:
    chain = rq.read(8, 4096)
    assert [(b.size, b.write) for b in chain.bufs] == [(16, False), (4096, True), (1, True)]
    assert _hdr(chain) == uapi.outhdr(uapi.VIRTIO_BLK_T_IN, 8)
    assert chain.bufs[1].align == 4096


def test_write_split_header_and_data() -> None:
    data = bytes(range(256)) * 8
    chain = rq.write(0, data, rq.DescLayout(header_cuts=(1, 4, 15), data_segs=(512, 1024, 512)))
    assert [b.size for b in chain.bufs] == [1, 3, 11, 1, 512, 1024, 512, 1]
    assert b"".join(b.data for b in chain.bufs if not b.write) == uapi.outhdr(1) + data
    assert [b.write for b in chain.bufs] == [False] * 7 + [True]


def test_status_merged_into_last_data_buffer() -> None:
    chain = rq.read(0, 1024, rq.DescLayout(data_segs=(512, 512), status_merged=True))
    assert [(b.size, b.write) for b in chain.bufs] == [(16, False), (512, True), (513, True)]
    # Nothing to merge with for a flush: the status stays alone.
    assert [b.size for b in rq.flush(rq.DescLayout(status_merged=True)).bufs] == [16, 1]


def test_header_merged_with_data() -> None:
    chain = rq.write(0, b"x" * 512, rq.DescLayout(header_merged=True))
    assert [b.size for b in chain.bufs] == [528, 1]


def test_data_segments_must_add_up() -> None:
    with pytest.raises(ValueError):
        rq.read(0, 1024, rq.DescLayout(data_segs=(512,)))


def test_discard_and_write_zeroes_segments() -> None:
    chain = rq.write_zeroes([(0, 8), (64, 8, uapi.VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP)])
    payload = b"".join(b.data for b in chain.bufs if not b.write)[16:]
    assert payload == uapi.dwz_seg(0, 8) + uapi.dwz_seg(64, 8, 1)
    assert rq.discard([(0, 8)]).bufs[0].data == uapi.outhdr(uapi.VIRTIO_BLK_T_DISCARD)


def test_malformed_builders() -> None:
    m = rq.malformed
    assert m.short_header(8).out_bytes == 8
    assert not m.no_status().has_status
    assert not m.status_readonly().has_status
    assert m.read_with_readable_data().out_bytes == 16 + 512
    assert m.write_with_writable_data().in_bytes == 513
    assert m.zero_length_read().in_bytes == 1
    too_many = m.too_many_segments()
    assert too_many.indirect and len(too_many.bufs) == 1 + 1023
    assert m.discard_partial_segment().out_bytes == 16 + 12
    assert m.dwz_too_many_segments().out_bytes == 16 + 16 * 257
    assert _hdr(m.huge_sector())[8:] == b"\xff" * 8
    assert m.past_capacity(1000, 1024).bufs[0].data == uapi.outhdr(0, 999)


# -- BlkQueue against the fake device -------------------------------------------------


@pytest.fixture
def queue() -> Iterator[tuple[rq.BlkQueue, FakeDevice]]:
    with GuestMemory(4 << 20) as mem:
        ring = SplitVring(mem, 64, event_idx=True)
        vq = Vq(0, ring, os.eventfd(0, os.EFD_NONBLOCK), os.eventfd(0, os.EFD_NONBLOCK),
                os.eventfd(0, os.EFD_NONBLOCK))
        try:
            yield rq.BlkQueue(vq, mem), FakeDevice(mem, ring)
        finally:
            vq.close()
            ring.release()


def serve(dev: FakeDevice, q: rq.BlkQueue, disk: bytearray) -> int:
    """A tiny virtio-blk device: reads and writes on ``disk``; returns requests served."""
    n = 0
    while (got := dev.pop()) is not None:
        head, bufs = got
        readable = b"".join(dev.mem.read(a, n) for a, n, w in bufs if not w)
        writable = [(a, n) for a, n, w in bufs if w]
        req_type, _, sector = uapi.OUTHDR.unpack(readable[:16])
        status_addr = writable[-1][0] + writable[-1][1] - 1
        used = 1
        if req_type == uapi.VIRTIO_BLK_T_OUT:
            data = readable[16:]
            disk[sector * 512:sector * 512 + len(data)] = data
        elif req_type == uapi.VIRTIO_BLK_T_IN:
            pos = sector * 512
            left = sum(n for _, n in writable) - 1
            for addr, length in writable:
                chunk = min(length, left)
                dev.mem.write(addr, bytes(disk[pos:pos + chunk]))
                pos += chunk
                left -= chunk
                used += chunk
        dev.mem.write(status_addr, b"\0")
        dev.push(head, used)
        n += 1
    os.eventfd_write(q.vq.call_fd, 1)
    return n


def test_round_trip_through_the_ring(queue: tuple[rq.BlkQueue, FakeDevice]) -> None:
    q, dev = queue
    disk = bytearray(1 << 20)
    data = os.urandom(8192)
    layout = rq.DescLayout(header_cuts=(8,), data_segs=(512, 3584, 4096), status_merged=True,
                           align=4096, phase=512)
    p = q.submit(rq.write(16, data, layout))
    assert q.kicks == 1
    assert serve(dev, q, disk) == 1
    (c,) = q.wait([p], timeout=1)
    assert c.ok and c.used_len == 1 and c.data == b""
    serve_later(dev, q, disk)
    c = q.run(rq.read(16, 8192, rq.DescLayout(indirect=True)))
    assert c.data == data and c.used_len == 8193
    assert q.inflight == 0
    assert q.mem.allocated_bytes == q.vq.ring.mem.allocated_bytes


def serve_later(dev: FakeDevice, q: rq.BlkQueue, disk: bytearray) -> None:
    """Serve from a helper thread, as the kernel would, while the caller waits."""

    def loop() -> None:
        for _ in range(200):
            if serve(dev, q, disk):
                return
            threading.Event().wait(0.005)

    threading.Thread(target=loop, daemon=True).start()


def test_status_and_poison(queue: tuple[rq.BlkQueue, FakeDevice]) -> None:
    q, dev = queue
    p = q.submit(rq.get_id())
    got = dev.pop()
    assert got is not None
    head, _ = got
    # The device writes nothing but the used entry: the status is still poisoned.
    dev.push(head, 0)
    (c,) = q.wait([p], timeout=1)
    assert c.status == rq.STATUS_POISON
    assert c.data == bytes([rq.POISON]) * 20


def test_no_status_chain_reports_none(queue: tuple[rq.BlkQueue, FakeDevice]) -> None:
    q, dev = queue
    p = q.submit(rq.malformed.no_status())
    got = dev.pop()
    assert got is not None
    dev.push(got[0], 0)
    (c,) = q.wait([p], timeout=1)
    assert c.status is None and c.used_len == 0


def test_timeout_names_the_request(queue: tuple[rq.BlkQueue, FakeDevice]) -> None:
    q, _ = queue
    p = q.submit(rq.flush())
    with pytest.raises(TimeoutError, match="flush"):
        q.wait([p], timeout=0.05)


def test_vq_error_eventfd(queue: tuple[rq.BlkQueue, FakeDevice]) -> None:
    q, _ = queue
    p = q.submit(rq.flush())
    os.eventfd_write(q.vq.err_fd, 1)
    with pytest.raises(rq.VqError):
        q.wait([p], timeout=1)


def test_run_many_batches_by_ring_space(queue: tuple[rq.BlkQueue, FakeDevice]) -> None:
    q, dev = queue
    disk = bytearray(1 << 20)
    chains = [rq.write(i * 8, bytes([i]) * 4096) for i in range(100)]  # 3 descs each
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            serve(dev, q, disk)
            stop.wait(0.001)

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        done = q.run_many(chains, timeout=5)
    finally:
        stop.set()
        t.join()
    assert all(c.ok for c in done)
    assert all(disk[i * 4096:(i + 1) * 4096] == bytes([i]) * 4096 for i in range(100))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 16), st.lists(st.integers(0, 15), max_size=4), st.booleans(),
       st.booleans(), st.sampled_from([0, 1, 8, 511, 512, 4095]))
def test_any_layout_reads_back(nsec: int, cuts: list[int], merged: bool, indirect: bool,
                               phase: int) -> None:
    length = nsec * 512
    # Split the data at sector boundaries chosen by the cuts.
    points = sorted({0, length, *[(c % nsec) * 512 for c in cuts]})
    segs = tuple(b - a for a, b in itertools.pairwise(points))
    layout = rq.DescLayout(header_cuts=tuple(cuts), data_segs=segs, status_merged=merged,
                           indirect=indirect, phase=phase)
    with GuestMemory(1 << 20) as mem:
        ring = SplitVring(mem, 32)
        vq = Vq(0, ring, os.eventfd(0), os.eventfd(0), os.eventfd(0, os.EFD_NONBLOCK))
        try:
            q = rq.BlkQueue(vq, mem)
            dev = FakeDevice(mem, ring)
            disk = bytearray(os.urandom(64 << 10))
            p = q.submit(rq.read(3, length, layout))
            serve(dev, q, disk)
            (c,) = q.wait([p], timeout=1)
            assert c.ok and c.used_len == length + 1
            assert c.data == disk[3 * 512:3 * 512 + length]
            assert mem.allocated_bytes == sum(hi - lo for lo, hi in [
                (ring.addrs.desc, ring.addrs.desc + 16 * 32),
                (ring.addrs.avail, ring.addrs.avail + 6 + 2 * 32),
                (ring.addrs.used, ring.addrs.used + 6 + 8 * 32)])
        finally:
            vq.close()
            ring.release()
