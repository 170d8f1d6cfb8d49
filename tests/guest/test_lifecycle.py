"""Lifecycle: backend changes, RESET_OWNER and close with requests in flight,
ioctl error paths and ring errors."""

from __future__ import annotations

import errno
import os
import tempfile
import time

import pytest
from vblk_env import Backend, bounded, brd, start

from vblk import request as rq
from vblk import uapi
from vblk.device import VhostBlk, VhostError
from vblk.vring import RawDesc


def test_set_backend_errors(ram: Backend) -> None:
    with start(None) as b:
        with tempfile.TemporaryFile() as fh:
            with pytest.raises(VhostError) as exc:
                b.dev.set_backend(fh.fileno())
            assert exc.value.errno == errno.ENOTBLK
        with pytest.raises(VhostError) as exc:
            b.dev.set_backend(9999)
        assert exc.value.errno == errno.EBADF
        wfd = os.open(ram.path, os.O_WRONLY)
        try:
            with pytest.raises(VhostError) as exc:
                b.dev.set_backend(wfd)
            assert exc.value.errno == errno.EBADF
        finally:
            os.close(wfd)
        b.dev.set_backend(-1)  # no backend: a no-op
        b.dev.set_backend(ram.fd)
        b.still_serves()


def test_failed_set_backend_keeps_the_running_one(ram: Backend) -> None:
    with start(ram) as b, tempfile.TemporaryFile() as fh:
        with pytest.raises(VhostError):
            b.dev.set_backend(fh.fileno())
        b.still_serves()


def test_set_backend_before_owner_fails(ram: Backend) -> None:
    with VhostBlk(mem_size=1 << 20) as dev, pytest.raises(VhostError):
        dev.set_backend(ram.fd)


def test_requests_queued_before_backend_are_served(ram: Backend) -> None:
    with start(None) as b:
        pending = b.q.submit(rq.write(0, b"\x42" * 4096))
        time.sleep(0.2)
        assert pending.done is None
        b.dev.set_backend(ram.fd)
        (c,) = b.q.wait([pending])
        assert c.ok
        assert b.read(0, 4096) == b"\x42" * 4096


def test_stop_backend_with_requests_in_flight(ram: Backend) -> None:
    with start(ram) as b:
        pending = rq.flood(b.q, 40)
        bounded(lambda: b.dev.set_backend(-1))
        # Whatever was taken completed; the rest waits for the next backend.
        b.dev.set_backend(ram.fd)
        done = b.q.wait(pending, timeout=60)
        assert all(c.ok for c in done)
        b.still_serves()


def test_swap_backends_under_load() -> None:
    with brd(0) as a, brd(3) as c, start(a, ring_size=256) as b:
        for rnd in range(6):
            pending = rq.flood(b.q, 60, 16 << 10)
            bounded(lambda be=(c if rnd % 2 == 0 else a): b.dev.set_backend(be.fd))
            done = b.q.wait(pending, timeout=60)
            assert all(x.ok for x in done)
        b.still_serves()


def test_close_with_requests_in_flight(ram: Backend) -> None:
    for _ in range(5):
        b_ctx = start(ram, ring_size=256)
        b = b_ctx.__enter__()
        rq.flood(b.q, 80, 128 << 10)
        seconds = bounded(lambda ctx=b_ctx: ctx.__exit__(None, None, None))
        assert seconds < 60
    with start(ram) as b:
        b.still_serves()


def test_reset_owner_with_requests_in_flight(ram: Backend) -> None:
    with start(ram) as b:
        rq.flood(b.q, 40)
        bounded(b.dev.reset_owner)
        with pytest.raises(VhostError):
            b.dev.get_config()  # the backend is gone
        b.q.abandon()
    # A new owner can set the same file up again.
    with VhostBlk(mem_size=8 << 20) as dev:
        vqs = dev.setup(1, 64)
        dev.reset_owner()
        dev.vqs.clear()
        for vq in vqs:
            vq.close()
        vqs = dev.setup(1, 64)
        dev.set_backend(ram.fd)
        q = rq.BlkQueue(vqs[0], dev.mem)
        assert q.run(rq.flush()).ok


def test_close_without_setup() -> None:
    with VhostBlk(mem_size=1 << 20):
        pass
    with VhostBlk(mem_size=1 << 20) as dev:
        dev.set_owner()


def test_ring_error_on_descriptor_loop(ram: Backend) -> None:
    with start(ram) as b:
        ring = b.q.vq.ring
        hdr = b.dev.mem.alloc(16)
        head = ring.add_raw([RawDesc(hdr, 16, uapi.VRING_DESC_F_NEXT, 1),
                             RawDesc(hdr, 1, uapi.VRING_DESC_F_NEXT | uapi.VRING_DESC_F_WRITE,
                                     0)])
        ring.publish(head)
        b.q.vq.kick()
        deadline = time.monotonic() + 10
        while not b.q.vq_error():
            assert time.monotonic() < deadline, "no error signalled for a descriptor loop"
            time.sleep(0.05)


def test_ring_error_on_address_outside_memory(ram: Backend) -> None:
    with start(ram) as b:
        ring = b.q.vq.ring
        head = ring.add_raw([RawDesc(0x1000, 16, uapi.VRING_DESC_F_NEXT, 1),
                             RawDesc(0x2000, 1, uapi.VRING_DESC_F_WRITE, 0)])
        ring.publish(head)
        b.q.vq.kick()
        deadline = time.monotonic() + 10
        while not b.q.vq_error():
            assert time.monotonic() < deadline, "no error signalled for a bad address"
            time.sleep(0.05)


def test_more_than_1024_buffers_stops_the_queue(ram: Backend) -> None:
    with start(ram) as b:
        chain = rq.read(0, 1024 * 512, rq.DescLayout(data_segs=(512,) * 1024, indirect=True,
                                                     align=512))
        b.q.submit(chain)
        deadline = time.monotonic() + 10
        while not b.q.vq_error():
            assert time.monotonic() < deadline, "no error signalled for 1026 buffers"
            time.sleep(0.05)
