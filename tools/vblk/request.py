"""virtio-blk requests: build descriptor chains, submit them, wait for completions.

A request is a ``Chain`` of ``Buf``s: device-readable buffers with their
contents and device-writable buffers with a length.  The builders lay out
well-formed requests of every type in any descriptor layout (``DescLayout``);
``malformed`` builds the hostile ones.  ``BlkQueue`` places the buffers in
guest memory, publishes the chain on a virtqueue, kicks, waits on the
call eventfd and returns a ``Completion``: the status byte (the last
device-writable byte, as the spec defines it), the used length and the
bytes the device could have written.
"""

from __future__ import annotations

import itertools
import os
import select
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from . import uapi
from .device import Vq
from .memory import GuestMemory
from .vring import Seg

HDR_LEN = uapi.OUTHDR.size
# Written into device-writable buffers before submission, to see what the
# device left untouched.
POISON = 0xA5
STATUS_POISON = 0xEE


@dataclass(frozen=True)
class Buf:
    """One descriptor's buffer: readable ``data``, or ``length`` writable bytes."""

    data: bytes = b""
    length: int = 0
    write: bool = False
    align: int = 16
    phase: int = 0

    @property
    def size(self) -> int:
        return self.length if self.write else len(self.data)

    @staticmethod
    def out(data: bytes, align: int = 16, phase: int = 0) -> Buf:
        return Buf(data=data, write=False, align=align, phase=phase)

    @staticmethod
    def into(length: int, align: int = 16, phase: int = 0) -> Buf:
        return Buf(length=length, write=True, align=align, phase=phase)


@dataclass(frozen=True)
class Chain:
    """A request as the device sees it: buffers in chain order."""

    bufs: tuple[Buf, ...]
    indirect: bool = False
    label: str = ""

    @property
    def out_bytes(self) -> int:
        return sum(b.size for b in self.bufs if not b.write)

    @property
    def in_bytes(self) -> int:
        return sum(b.size for b in self.bufs if b.write)

    @property
    def has_status(self) -> bool:
        return self.in_bytes > 0


@dataclass(frozen=True)
class DescLayout:
    """How a well-formed request is cut into descriptors.

    header_cuts: offsets inside the 16-byte header where a new descriptor
        starts, e.g. (4, 8) gives three header descriptors.
    data_segs: sizes of the data buffers (summing to the data length);
        None puts all data in one buffer.
    status_merged: the status byte is the last byte of the last writable
        data buffer instead of a descriptor of its own.
    header_merged: the header and the first readable data buffer share a
        descriptor (the legacy "any layout"; misaligned data).
    indirect: the chain goes through an indirect descriptor table.
    align, phase: where data buffers are placed (addr % align == phase).
    """

    header_cuts: tuple[int, ...] = ()
    data_segs: tuple[int, ...] | None = None
    status_merged: bool = False
    header_merged: bool = False
    indirect: bool = False
    align: int = 4096
    phase: int = 0

    def split(self, length: int) -> list[int]:
        if self.data_segs is None:
            return [length] if length else []
        if sum(self.data_segs) != length:
            raise ValueError(f"data segments {self.data_segs} do not add up to {length}")
        return list(self.data_segs)


DEFAULT = DescLayout()


def _header_bufs(header: bytes, cuts: Sequence[int]) -> list[Buf]:
    points = [0, *sorted(c for c in cuts if 0 < c < len(header)), len(header)]
    return [Buf.out(header[a:b]) for a, b in itertools.pairwise(points) if b > a]


def build(req_type: int, sector: int = 0, out_data: bytes = b"", in_len: int = 0,
          layout: DescLayout = DEFAULT, ioprio: int = 0, header: bytes | None = None,
          status: bool = True, label: str = "") -> Chain:
    """A request chain: header, readable data, writable data, status byte.

    ``header`` replaces the 16-byte header (for short or odd ones);
    ``status`` False leaves the status byte out.
    """
    hdr = uapi.outhdr(req_type, sector, ioprio) if header is None else header
    bufs = _header_bufs(hdr, layout.header_cuts)
    out_sizes = layout.split(len(out_data)) if out_data else []
    pos = 0
    for i, size in enumerate(out_sizes):
        chunk = out_data[pos:pos + size]
        pos += size
        if i == 0 and layout.header_merged and bufs:
            last = bufs.pop()
            bufs.append(Buf.out(last.data + chunk, align=layout.align, phase=layout.phase))
        else:
            bufs.append(Buf.out(chunk, align=layout.align, phase=layout.phase))
    in_sizes = layout.split(in_len) if in_len else []
    for i, size in enumerate(in_sizes):
        extra = 1 if status and layout.status_merged and i == len(in_sizes) - 1 else 0
        bufs.append(Buf.into(size + extra, align=layout.align, phase=layout.phase))
    if status and not (layout.status_merged and in_sizes):
        bufs.append(Buf.into(1))
    return Chain(tuple(bufs), indirect=layout.indirect,
                 label=label or f"type={req_type} sector={sector}")


def read(sector: int, length: int, layout: DescLayout = DEFAULT) -> Chain:
    return build(uapi.VIRTIO_BLK_T_IN, sector, in_len=length, layout=layout,
                 label=f"read {length}@{sector}")


def write(sector: int, data: bytes, layout: DescLayout = DEFAULT) -> Chain:
    return build(uapi.VIRTIO_BLK_T_OUT, sector, out_data=data, layout=layout,
                 label=f"write {len(data)}@{sector}")


def flush(layout: DescLayout = DEFAULT) -> Chain:
    return build(uapi.VIRTIO_BLK_T_FLUSH, layout=layout, label="flush")


def get_id(length: int = uapi.VIRTIO_BLK_ID_BYTES, layout: DescLayout = DEFAULT) -> Chain:
    return build(uapi.VIRTIO_BLK_T_GET_ID, in_len=length, layout=layout,
                 label=f"get_id {length}")


def segments(ranges: Iterable[tuple[int, int] | tuple[int, int, int]]) -> bytes:
    """Discard/write zeroes segments from (sector, num_sectors[, flags])."""
    out = b""
    for r in ranges:
        out += uapi.dwz_seg(r[0], r[1], r[2] if len(r) > 2 else 0)
    return out


def discard(ranges: Iterable[tuple[int, int] | tuple[int, int, int]],
            layout: DescLayout = DEFAULT) -> Chain:
    return build(uapi.VIRTIO_BLK_T_DISCARD, out_data=segments(ranges),
                 layout=replace(layout, align=16, phase=0), label="discard")


def write_zeroes(ranges: Iterable[tuple[int, int] | tuple[int, int, int]],
                 layout: DescLayout = DEFAULT) -> Chain:
    return build(uapi.VIRTIO_BLK_T_WRITE_ZEROES, out_data=segments(ranges),
                 layout=replace(layout, align=16, phase=0), label="write_zeroes")


def unknown(req_type: int, in_len: int = 0, out_data: bytes = b"") -> Chain:
    return build(req_type, out_data=out_data, in_len=in_len, label=f"type {req_type}")


class malformed:
    """Hostile chains, each with the status the spec requires in its docstring."""

    @staticmethod
    def short_header(n: int = 8) -> Chain:
        """Fewer than 16 readable bytes: IOERR."""
        return build(uapi.VIRTIO_BLK_T_IN, header=uapi.outhdr(uapi.VIRTIO_BLK_T_IN)[:n],
                     in_len=512, label=f"short header {n}")

    @staticmethod
    def no_status(req_type: int = uapi.VIRTIO_BLK_T_OUT, data: bytes = b"\0" * 512) -> Chain:
        """No device-writable byte at all: used length 0, nothing written."""
        return build(req_type, out_data=data, status=False, label="no status")

    @staticmethod
    def status_readonly() -> Chain:
        """The would-be status byte is device-readable: no writable byte."""
        hdr = uapi.outhdr(uapi.VIRTIO_BLK_T_FLUSH)
        return Chain((Buf.out(hdr), Buf.out(b"\0")), label="status read-only")

    @staticmethod
    def read_with_readable_data(length: int = 512) -> Chain:
        """A read whose data buffer is device-readable: IOERR."""
        return Chain((Buf.out(uapi.outhdr(uapi.VIRTIO_BLK_T_IN)),
                      Buf.out(b"\0" * length, align=4096), Buf.into(1)),
                     label="read, readable data")

    @staticmethod
    def write_with_writable_data(length: int = 512) -> Chain:
        """A write whose data buffer is device-writable: IOERR."""
        return Chain((Buf.out(uapi.outhdr(uapi.VIRTIO_BLK_T_OUT)),
                      Buf.into(length, align=4096), Buf.into(1)),
                     label="write, writable data")

    @staticmethod
    def flush_with_data() -> Chain:
        """FLUSH carrying data: the driver SHOULD NOT send it, the device serves it: OK."""
        return build(uapi.VIRTIO_BLK_T_FLUSH, out_data=b"\0" * 512, label="flush with data")

    @staticmethod
    def past_capacity(capacity: int, length: int = 512) -> Chain:
        """A read starting at (or running past) the capacity: IOERR."""
        return read(capacity - length // 512 + 1, length)

    @staticmethod
    def huge_sector() -> Chain:
        """A read at sector 2**64 - 1 (overflows sector + length): IOERR."""
        return read(2**64 - 1, 512)

    @staticmethod
    def odd_length(length: int = 513) -> Chain:
        """Data length not a multiple of 512: IOERR."""
        return read(0, length)

    @staticmethod
    def zero_length_read() -> Chain:
        """A read without data: IOERR."""
        return build(uapi.VIRTIO_BLK_T_IN, label="read, no data")

    @staticmethod
    def zero_length_write() -> Chain:
        """A write without data: IOERR."""
        return build(uapi.VIRTIO_BLK_T_OUT, label="write, no data")

    @staticmethod
    def zero_length_descs() -> Chain:
        """A read with zero-length descriptors mixed in; valid (512 bytes of data)."""
        return Chain((Buf.out(uapi.outhdr(uapi.VIRTIO_BLK_T_IN)), Buf.out(b""),
                      Buf.into(0), Buf.into(512, align=4096), Buf.into(0), Buf.into(1)),
                     label="zero-length descriptors")

    @staticmethod
    def too_many_segments(nseg: int = 1023) -> Chain:
        """More data segments than seg_max, status merged, indirect: served as long
        as the chain fits in vhost's 1024 iovecs."""
        layout = DescLayout(data_segs=(512,) * nseg, status_merged=True, indirect=True,
                            align=512)
        return read(0, 512 * nseg, layout)

    @staticmethod
    def misaligned_data(phase: int = 8) -> Chain:
        """Data at an address the backend cannot DMA to: bounced, OK."""
        return read(0, 512, DescLayout(align=4096, phase=phase))

    @staticmethod
    def unaligned_sector_lbs(sector: int = 1) -> Chain:
        """Sector not aligned to a 4096-byte logical block: IOERR on such devices."""
        return read(sector, 4096)

    @staticmethod
    def discard_partial_segment() -> Chain:
        """Discard data not a whole number of 16-byte segments: IOERR."""
        return build(uapi.VIRTIO_BLK_T_DISCARD, out_data=segments([(0, 8)])[:12],
                     label="discard, partial segment")

    @staticmethod
    def discard_no_segment() -> Chain:
        """Discard without segments: IOERR."""
        return build(uapi.VIRTIO_BLK_T_DISCARD, label="discard, no segment")

    @staticmethod
    def discard_flags(flags: int = uapi.VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) -> Chain:
        """Discard with the unmap (or any) flag: UNSUPP."""
        return discard([(0, 8, flags)])

    @staticmethod
    def write_zeroes_unknown_flag() -> Chain:
        """Write zeroes with an unknown flag: UNSUPP."""
        return write_zeroes([(0, 8, 0x2)])

    @staticmethod
    def dwz_empty_segment(req_type: int = uapi.VIRTIO_BLK_T_WRITE_ZEROES) -> Chain:
        """A segment of 0 sectors: valid, nothing to do: OK."""
        return build(req_type, out_data=segments([(0, 0)]), label="dwz empty segment")

    @staticmethod
    def dwz_past_capacity(capacity: int,
                          req_type: int = uapi.VIRTIO_BLK_T_WRITE_ZEROES) -> Chain:
        """A segment running past the capacity: IOERR."""
        return build(req_type, out_data=segments([(capacity - 8, 16)]),
                     label="dwz past capacity")

    @staticmethod
    def dwz_too_many_segments(n: int = 257,
                              req_type: int = uapi.VIRTIO_BLK_T_WRITE_ZEROES) -> Chain:
        """More segments than max_*_seg (256): IOERR."""
        return build(req_type, out_data=segments([(8 * i, 8) for i in range(n)]),
                     label=f"dwz {n} segments")

    @staticmethod
    def dwz_with_writable_data(req_type: int = uapi.VIRTIO_BLK_T_WRITE_ZEROES) -> Chain:
        """Write zeroes with device-writable data besides the status: IOERR."""
        return Chain((Buf.out(uapi.outhdr(req_type)), Buf.out(segments([(0, 8)])),
                      Buf.into(16), Buf.into(1)), label="dwz, writable data")

    @staticmethod
    def get_id_no_room() -> Chain:
        """GET_ID with only the status byte writable: IOERR."""
        return build(uapi.VIRTIO_BLK_T_GET_ID, label="get_id, no room")

    @staticmethod
    def header_in_writable() -> Chain:
        """The header in a device-writable descriptor: no readable header, IOERR."""
        return Chain((Buf.into(HDR_LEN), Buf.into(512, align=4096), Buf.into(1)),
                     label="header writable")


# -- submission ---------------------------------------------------------------------


@dataclass
class Completion:
    """What the device did with one request."""

    status: int | None
    used_len: int
    data: bytes
    chain: Chain
    head: int
    seconds: float = 0.0
    # Where each buffer of the chain was placed in guest memory.
    addrs: tuple[int, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == uapi.VIRTIO_BLK_S_OK


@dataclass
class Pending:
    chain: Chain
    head: int
    addrs: list[int]
    start: float
    done: Completion | None = None


class VqError(RuntimeError):
    """The device signalled the virtqueue's error eventfd."""


@dataclass
class BlkQueue:
    """Submit requests on one virtqueue and collect their completions.

    One thread per queue; different queues may be driven from different
    threads (the memory allocator is thread-safe).
    """

    vq: Vq
    mem: GuestMemory
    always_kick: bool = False
    kicks: int = 0
    calls: int = 0
    _inflight: dict[int, Pending] = field(default_factory=dict)

    @property
    def ring_free(self) -> int:
        return self.vq.ring.num_free

    def _place(self, chain: Chain) -> tuple[list[int], list[Seg]]:
        addrs: list[int] = []
        segs: list[Seg] = []
        try:
            for b in chain.bufs:
                addr = self.mem.alloc(b.size, align=b.align, phase=b.phase)
                addrs.append(addr)
                if b.write:
                    self.mem.fill(addr, b.size, POISON)
                else:
                    self.mem.write(addr, b.data)
                segs.append(Seg(addr, b.size, b.write))
        except BaseException:
            for addr in addrs:
                self.mem.free(addr)
            raise
        status = self._status_addr(chain, addrs)
        if status is not None:
            self.mem.write(status, bytes([STATUS_POISON]))
        return addrs, segs

    @staticmethod
    def _status_addr(chain: Chain, addrs: list[int]) -> int | None:
        for b, addr in zip(reversed(chain.bufs), reversed(addrs), strict=True):
            if b.write and b.size:
                return addr + b.size - 1
        return None

    def submit(self, chain: Chain, kick: bool = True) -> Pending:
        """Place and publish one request (and kick unless ``kick`` is False)."""
        addrs, segs = self._place(chain)
        try:
            head = self.vq.ring.add_chain(segs, indirect=chain.indirect)
        except BaseException:
            for addr in addrs:
                self.mem.free(addr)
            raise
        pending = Pending(chain, head, addrs, time.monotonic())
        self._inflight[head] = pending
        self.vq.ring.publish(head)
        if kick:
            self.kick()
        return pending

    def kick(self) -> None:
        """Notify the device if it asked for it (or always, with always_kick)."""
        if self.vq.ring.kick_needed() or self.always_kick:
            self.vq.kick()
            self.kicks += 1

    def _complete(self) -> int:
        n = 0
        for used, chain_rec in self.vq.ring.get_used():
            pending = self._inflight.pop(used.id)
            del chain_rec
            chain = pending.chain
            status_addr = self._status_addr(chain, pending.addrs)
            status = self.mem.read(status_addr, 1)[0] if status_addr is not None else None
            data = b""
            for b, addr in zip(chain.bufs, pending.addrs, strict=True):
                if b.write:
                    data += self.mem.read(addr, b.size)
            if status_addr is not None:
                data = data[:-1]
            for addr in pending.addrs:
                self.mem.free(addr)
            pending.done = Completion(status, used.length, data, chain, used.id,
                                      time.monotonic() - pending.start, tuple(pending.addrs))
            n += 1
        return n

    def reap(self) -> int:
        """Collect what the device has completed, without waiting; how many."""
        return self._complete()

    def vq_error(self) -> bool:
        """Whether the error eventfd fired (consumes the event)."""
        try:
            return os.eventfd_read(self.vq.err_fd) > 0
        except BlockingIOError:
            return False

    def wait(self, pendings: Sequence[Pending], timeout: float = 10.0) -> list[Completion]:
        """Wait until every request in ``pendings`` completed; in their order."""
        deadline = time.monotonic() + timeout
        poller = select.poll()
        poller.register(self.vq.call_fd, select.POLLIN)
        poller.register(self.vq.err_fd, select.POLLIN)
        while True:
            self._complete()
            if all(p.done is not None for p in pendings):
                return [p.done for p in pendings if p.done is not None]
            if not self.vq.ring.enable_calls():
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                missing = [p.chain.label for p in pendings if p.done is None]
                ring = self.vq.ring
                raise TimeoutError(
                    f"vq {self.vq.index}: {len(missing)} requests not completed after "
                    f"{timeout}s (first: {missing[0]!r}); avail idx {ring.avail_idx}, used "
                    f"idx {ring.used_idx}, last seen {ring.last_used_idx}, vq error "
                    f"{self.vq_error()}")
            for fd, _ in poller.poll(max(1, int(left * 1000))):
                if fd == self.vq.err_fd and self.vq_error():
                    raise VqError(f"vq {self.vq.index}: the device reported a ring error")
                if fd == self.vq.call_fd:
                    try:
                        os.eventfd_read(self.vq.call_fd)
                        self.calls += 1
                    except BlockingIOError:
                        pass

    def run(self, chain: Chain, timeout: float = 10.0) -> Completion:
        """Submit one request and wait for it."""
        return self.wait([self.submit(chain)], timeout)[0]

    def run_many(self, chains: Sequence[Chain], timeout: float = 30.0) -> list[Completion]:
        """Submit as many as fit in the ring at a time; complete them all, in order."""
        results: list[Completion] = []
        batch: list[Pending] = []
        for chain in chains:
            need = 1 if chain.indirect else len(chain.bufs)
            if need > self.ring_free and batch:
                self.kick()
                results += self.wait(batch, timeout)
                batch = []
            batch.append(self.submit(chain, kick=False))
        self.kick()
        if batch:
            results += self.wait(batch, timeout)
        return results

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    def abandon(self) -> None:
        """Forget requests in flight (after the device was closed); frees their buffers."""
        for pending in self._inflight.values():
            for addr in pending.addrs:
                self.mem.free(addr)
        self._inflight.clear()


def flood(q: BlkQueue, n: int, size: int = 64 << 10) -> list[Pending]:
    """Queue up to ``n`` writes of ``size`` bytes at consecutive sectors (as
    many as the ring takes) and kick once, without waiting for them."""
    out = []
    for i in range(n):
        if q.ring_free < 3:
            break
        out.append(q.submit(write(i * (size // 512), os.urandom(size)), kick=False))
    q.kick()
    return out
