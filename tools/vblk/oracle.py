"""What the device must answer to any chain, and what the disk must hold after it.

The fuzzer (tests/guest/test_fuzz.py) sends chains of any shape.  This
module is its reference model: from a chain and the guest addresses of
its buffers alone it says which status the device must return and which
used length, following the virtio specification (section 5.2.6) and the
limits the device documents in Documentation/userspace-api/vhost-blk.rst
(at most 256 discard or write zeroes segments).  The layout of the
buffers never decides the status: a device offering VIRTIO_F_VERSION_1
serves any descriptor layout and alignment (2.6.4), bouncing what the
backend cannot take in place.  ``Shadow`` keeps a copy of a region of the
disk and checks what reads return against it.

Requests of one batch may run in any order on the device, so a sector
written by two requests of a batch becomes unknown, and a read does not
compare the sectors a write of its own batch touches.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from . import uapi
from .request import HDR_LEN, POISON, Completion

OK = uapi.VIRTIO_BLK_S_OK
IOERR = uapi.VIRTIO_BLK_S_IOERR
UNSUPP = uapi.VIRTIO_BLK_S_UNSUPP
SECTOR = 512
DWZ_SEG_MAX = 256
ID_BYTES = uapi.VIRTIO_BLK_ID_BYTES


@dataclass(frozen=True)
class Limits:
    """What the backend allows, as the device advertises it (and its DMA alignment)."""

    capacity: int
    lbs: int = SECTOR
    dma_align: int = 511
    max_discard_sectors: int = 0
    max_discard_seg: int = 0
    max_write_zeroes_sectors: int = 0
    max_write_zeroes_seg: int = 0
    read_only: bool = False

    @classmethod
    def from_config(cls, cfg: uapi.VirtioBlkConfig, discard: bool, write_zeroes: bool,
                    read_only: bool = False, dma_align: int = 511) -> Limits:
        return cls(capacity=int(cfg.capacity), lbs=int(cfg.blk_size) or SECTOR,
                   dma_align=dma_align,
                   max_discard_sectors=int(cfg.max_discard_sectors) if discard else 0,
                   max_discard_seg=int(cfg.max_discard_seg) if discard else 0,
                   max_write_zeroes_sectors=(int(cfg.max_write_zeroes_sectors)
                                             if write_zeroes else 0),
                   max_write_zeroes_seg=int(cfg.max_write_zeroes_seg) if write_zeroes else 0,
                   read_only=read_only)


@dataclass(frozen=True)
class Expect:
    """The answer the device owes one chain.

    ``status`` None: the chain has no device-writable byte, so the device
    can only return it with used length 0.  ``writes``: (sector, bytes,
    data) ranges a successful request stores (data None: the content
    becomes undefined, as after a discard); ``read_sector``: where a
    successful read starts.
    """

    status: int | None
    used_len: int
    why: str
    writes: tuple[tuple[int, int, bytes | None], ...] = ()
    read_sector: int | None = None


def _check_range(lim: Limits, sector: int, length: int) -> bool:
    lbs_sectors = lim.lbs // SECTOR
    if not length or length % lim.lbs or sector % lbs_sectors:
        return False
    return sector + length // SECTOR <= lim.capacity


def _dwz(lim: Limits, req_type: int, payload: bytes, in_len: int, used: int) -> Expect:
    discard = req_type == uapi.VIRTIO_BLK_T_DISCARD
    name = "discard" if discard else "write zeroes"
    max_sectors = lim.max_discard_sectors if discard else lim.max_write_zeroes_sectors
    max_seg = lim.max_discard_seg if discard else lim.max_write_zeroes_seg
    if not max_sectors:
        return Expect(UNSUPP, used, f"{name} not offered")
    size = uapi.DWZ_SEG.size
    if in_len or not payload or len(payload) % size:
        return Expect(IOERR, used, f"{name}: writable data or not whole segments")
    if len(payload) // size > min(max_seg, DWZ_SEG_MAX):
        return Expect(IOERR, used, f"{name}: too many segments")
    writes: list[tuple[int, int, bytes | None]] = []
    lbs_sectors = lim.lbs // SECTOR
    for off in range(0, len(payload), size):
        sector, num, flags = uapi.DWZ_SEG.unpack_from(payload, off)
        known = 0 if discard else uapi.VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP
        # The spec's UNSUPP for flags comes first, even on a read-only device.
        if flags & ~known:
            return Expect(UNSUPP, used, f"{name}: flags {flags:#x}")
        if lim.read_only:
            return Expect(IOERR, used, f"{name} on a read-only backend")
        # An empty segment is valid (no minimum in 5.2.6.2) and does nothing.
        if num > max_sectors or (sector | num) % lbs_sectors:
            return Expect(IOERR, used, f"{name}: segment {sector}+{num} too big or misaligned")
        if sector + num > lim.capacity:
            return Expect(IOERR, used, f"{name}: segment {sector}+{num} past the capacity")
        if num:
            writes.append((sector, num * SECTOR, None if discard else bytes(num * SECTOR)))
    return Expect(OK, used, name, writes=tuple(writes))


def expect(lim: Limits, serial: bytes, chain_bufs: Iterable[tuple[bytes, int, bool, int]]
           ) -> Expect:
    """The answer to a chain of (readable data, writable length, writable, addr) buffers."""
    bufs = list(chain_bufs)
    readable = b"".join(data for data, _, write, _ in bufs if not write)
    in_bytes = sum(length for _, length, write, _ in bufs if write)
    if not in_bytes:
        return Expect(None, 0, "no writable byte for the status")
    # The used length counts every writable byte, whatever the status: the
    # status byte ends the writable part (QEMU pushes the whole in length).
    used = min(in_bytes, 2**32 - 1)
    if len(readable) < HDR_LEN:
        return Expect(IOERR, used, f"{len(readable)}-byte header")
    req_type, _, sector = uapi.OUTHDR.unpack_from(readable)
    payload, in_len = readable[HDR_LEN:], in_bytes - 1
    if req_type == uapi.VIRTIO_BLK_T_IN:
        if payload or not _check_range(lim, sector, in_len):
            return Expect(IOERR, used, f"read {in_len}@{sector}: readable data or bad range")
        return Expect(OK, used, f"read {in_len}@{sector}", read_sector=sector)
    if req_type == uapi.VIRTIO_BLK_T_OUT:
        if in_len or lim.read_only or not _check_range(lim, sector, len(payload)):
            return Expect(IOERR, used, f"write {len(payload)}@{sector}: writable data, "
                          "read-only or bad range")
        return Expect(OK, used, f"write {len(payload)}@{sector}",
                      writes=((sector, len(payload), payload),))
    if req_type == uapi.VIRTIO_BLK_T_FLUSH:
        # Data with a flush: the driver SHOULD NOT send it; not an error.
        return Expect(OK, used, "flush")
    if req_type == uapi.VIRTIO_BLK_T_GET_ID:
        if payload or not in_len:
            return Expect(IOERR, used, "get_id: readable data or no room")
        return Expect(OK, used, "get_id")
    if req_type in (uapi.VIRTIO_BLK_T_DISCARD, uapi.VIRTIO_BLK_T_WRITE_ZEROES):
        return _dwz(lim, req_type, payload, in_len, used)
    return Expect(UNSUPP, used, f"type {req_type:#x}")


def expect_completion(lim: Limits, serial: bytes, c: Completion) -> Expect:
    """expect() for a completed request (its buffers and where they were placed)."""
    return expect(lim, serial, ((b.data, b.length, b.write, addr)
                                for b, addr in zip(c.chain.bufs, c.addrs, strict=True)))


class Shadow:
    """What ``sectors`` sectors from sector 0 must hold; None where undefined."""

    def __init__(self, initial: bytes) -> None:
        if len(initial) % SECTOR:
            raise ValueError("the shadow holds whole sectors")
        self.data = bytearray(initial)
        self.known = bytearray(b"\1" * (len(initial) // SECTOR))

    @property
    def sectors(self) -> int:
        return len(self.known)

    def _clip(self, sector: int, nbytes: int) -> range:
        return range(min(sector, self.sectors), min(sector + nbytes // SECTOR, self.sectors))

    def mismatches(self, sector: int, got: bytes, skip: set[int]) -> list[int]:
        """Sectors of a read at ``sector`` whose data differs from the shadow."""
        bad = []
        for s in self._clip(sector, len(got)):
            if s in skip or not self.known[s]:
                continue
            off = (s - sector) * SECTOR
            if got[off:off + SECTOR] != self.data[s * SECTOR:(s + 1) * SECTOR]:
                bad.append(s)
        return bad

    def store(self, sector: int, data: bytes | None, nbytes: int, unknown: set[int]) -> None:
        for s in self._clip(sector, nbytes):
            if data is None or s in unknown:
                self.known[s] = 0
                continue
            off = (s - sector) * SECTOR
            self.data[s * SECTOR:(s + 1) * SECTOR] = data[off:off + SECTOR]
            self.known[s] = 1


def check_batch(lim: Limits, serial: bytes, shadow: Shadow,
                done: Sequence[Completion]) -> list[str]:
    """Check a batch of completions against the model and update the shadow.

    Returns one line per problem: a wrong status or used length, a
    rejected request that wrote into the guest's buffers, data that
    differs from the shadow, an ID that is not the serial.
    """
    problems: list[str] = []
    expects = [expect_completion(lim, serial, c) for c in done]
    written: dict[int, int] = {}
    for e in expects:
        if e.status == OK:
            for sector, nbytes, _ in e.writes:
                for s in range(sector, min(sector + nbytes // SECTOR, shadow.sectors)):
                    written[s] = written.get(s, 0) + 1
    for c, e in zip(done, expects, strict=True):
        where = f"{c.chain.label or 'chain'} ({e.why})"
        if (c.status, c.used_len) != (e.status, e.used_len):
            problems.append(f"{where}: status {c.status} used {c.used_len}, expected "
                            f"{e.status} used {e.used_len}")
            continue
        if e.status != OK:
            if c.data.strip(bytes([POISON])):
                problems.append(f"{where}: rejected, but the device wrote into its buffers")
            continue
        if e.read_sector is not None:
            bad = shadow.mismatches(e.read_sector, c.data, set(written))
            if bad:
                problems.append(f"{where}: sectors {bad[:8]} differ from what was written")
        elif e.why == "get_id":
            # The ID, then zeroes in the rest of the writable data.
            n = e.used_len - 1
            want = serial.ljust(ID_BYTES, b"\0")[:n].ljust(n, b"\0")
            if c.data[:n] != want:
                problems.append(f"{where}: ID {c.data[:n]!r}, serial {serial!r} and zeroes")
    unknown = {s for s, n in written.items() if n > 1}
    for e in expects:
        if e.status == OK:
            for sector, nbytes, data in e.writes:
                shadow.store(sector, data, nbytes, unknown)
    return problems
