"""A split virtqueue (virtio 1.x, section 2.7) laid out in guest memory.

The driver side only: the descriptor table, the available ring (with
used_event) and the used ring (with avail_event) live in GuestMemory;
this class manages free descriptors, adds chains (direct or through an
indirect table), publishes them, decides whether the device needs a
kick and reads used entries back.  x86 stores are not reordered with
each other, so plain writes in program order give the barriers the spec
asks for (descriptors before the avail entry, the entry before avail
idx).
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass

from .memory import GuestMemory
from .uapi import (
    DESC,
    USED_ELEM,
    VRING_AVAIL_ALIGN_SIZE,
    VRING_AVAIL_F_NO_INTERRUPT,
    VRING_DESC_ALIGN_SIZE,
    VRING_DESC_F_INDIRECT,
    VRING_DESC_F_NEXT,
    VRING_DESC_F_WRITE,
    VRING_USED_ALIGN_SIZE,
    VRING_USED_F_NO_NOTIFY,
)

U16 = struct.Struct("<H")
MAX_RING_SIZE = 32768


@dataclass(frozen=True)
class Seg:
    """One buffer of a chain: guest address, length, device-writable or not."""

    addr: int
    length: int
    write: bool


@dataclass(frozen=True)
class RawDesc:
    """A descriptor written as is (for broken chains): flags and next unchecked."""

    addr: int
    length: int
    flags: int
    next: int = 0


@dataclass
class InFlight:
    """What a published head owns, so that it can be reclaimed."""

    head: int
    descs: list[int]
    indirect_table: int | None = None
    token: object = None


@dataclass(frozen=True)
class Used:
    """One used ring entry."""

    id: int
    length: int


def desc_table_size(num: int) -> int:
    return 16 * num


def avail_ring_size(num: int) -> int:
    """flags, idx, ring[num], used_event."""
    return 2 * (3 + num)


def used_ring_size(num: int) -> int:
    """flags, idx, ring[num] of 8 bytes, avail_event."""
    return 2 * 3 + 8 * num


def legacy_ring_size(num: int, align: int = 4096) -> int:
    """vring_size(): one contiguous legacy layout with the used ring aligned."""
    part = desc_table_size(num) + avail_ring_size(num)
    part = (part + align - 1) & ~(align - 1)
    return part + used_ring_size(num)


def need_event(event_idx: int, new_idx: int, old_idx: int) -> bool:
    """vring_need_event(): did the index move past ``event_idx``?"""
    return ((new_idx - event_idx - 1) & 0xFFFF) < ((new_idx - old_idx) & 0xFFFF)


@dataclass
class VringAddrs:
    desc: int
    avail: int
    used: int


class SplitVring:
    """The driver's view of one split virtqueue."""

    def __init__(self, mem: GuestMemory, num: int, event_idx: bool = False,
                 addrs: VringAddrs | None = None) -> None:
        if num <= 0 or num > MAX_RING_SIZE or num & (num - 1):
            raise ValueError(f"ring size {num} is not a power of two up to {MAX_RING_SIZE}")
        self.mem = mem
        self.num = num
        self.event_idx = event_idx
        self._owned = addrs is None
        if addrs is None:
            addrs = VringAddrs(
                desc=mem.alloc(desc_table_size(num), align=VRING_DESC_ALIGN_SIZE),
                avail=mem.alloc(avail_ring_size(num), align=VRING_AVAIL_ALIGN_SIZE),
                used=mem.alloc(used_ring_size(num), align=VRING_USED_ALIGN_SIZE))
        self.addrs = addrs
        mem.fill(addrs.desc, desc_table_size(num), 0)
        mem.fill(addrs.avail, avail_ring_size(num), 0)
        mem.fill(addrs.used, used_ring_size(num), 0)
        self.free: deque[int] = deque(range(num))
        self.avail_idx = 0
        self.last_used_idx = 0
        self.kicked_idx = 0
        self.chains: dict[int, InFlight] = {}

    def release(self) -> None:
        """Give the ring memory back (after the device stopped using it)."""
        for chain in self.chains.values():
            if chain.indirect_table is not None:
                self.mem.free(chain.indirect_table)
        self.chains.clear()
        if self._owned:
            for addr in (self.addrs.desc, self.addrs.avail, self.addrs.used):
                self.mem.free(addr)
            self._owned = False

    # -- raw accessors ------------------------------------------------------------

    def _u16(self, addr: int) -> int:
        off = self.mem.offset(addr, 2)
        return int(U16.unpack_from(self.mem.buf, off)[0])

    def _set_u16(self, addr: int, value: int) -> None:
        U16.pack_into(self.mem.buf, self.mem.offset(addr, 2), value & 0xFFFF)

    def write_desc(self, table: int, index: int, addr: int, length: int, flags: int,
                   nxt: int) -> None:
        DESC.pack_into(self.mem.buf, self.mem.offset(table + 16 * index, 16),
                       addr & (2**64 - 1), length & 0xFFFFFFFF, flags & 0xFFFF, nxt & 0xFFFF)

    def read_desc(self, table: int, index: int) -> tuple[int, int, int, int]:
        addr, length, flags, nxt = DESC.unpack_from(self.mem.buf,
                                                    self.mem.offset(table + 16 * index, 16))
        return int(addr), int(length), int(flags), int(nxt)

    @property
    def avail_flags(self) -> int:
        return self._u16(self.addrs.avail)

    @property
    def used_flags(self) -> int:
        return self._u16(self.addrs.used)

    @property
    def used_idx(self) -> int:
        return self._u16(self.addrs.used + 2)

    @property
    def avail_event(self) -> int:
        """Written by the device: kick when avail idx passes it (EVENT_IDX)."""
        return self._u16(self.addrs.used + 4 + 8 * self.num)

    @property
    def used_event(self) -> int:
        return self._u16(self.addrs.avail + 4 + 2 * self.num)

    def set_used_event(self, idx: int) -> None:
        """Ask for a call when the used idx passes ``idx`` (EVENT_IDX)."""
        self._set_u16(self.addrs.avail + 4 + 2 * self.num, idx)

    def set_no_interrupt(self, on: bool) -> None:
        self._set_u16(self.addrs.avail, VRING_AVAIL_F_NO_INTERRUPT if on else 0)

    # -- adding chains --------------------------------------------------------------

    @property
    def num_free(self) -> int:
        return len(self.free)

    def _take(self, n: int) -> list[int]:
        if n > len(self.free):
            raise BufferError(f"{n} descriptors needed, {len(self.free)} free")
        return [self.free.popleft() for _ in range(n)]

    def add_chain(self, segs: list[Seg], indirect: bool = False, token: object = None) -> int:
        """Put a chain in the descriptor table (or an indirect table); return its head.

        The chain is not visible to the device until publish().
        """
        if not segs:
            raise ValueError("a chain needs at least one buffer")
        if indirect:
            table = self.mem.alloc(16 * len(segs), align=VRING_DESC_ALIGN_SIZE)
            for i, seg in enumerate(segs):
                flags = (VRING_DESC_F_WRITE if seg.write else 0)
                if i + 1 < len(segs):
                    flags |= VRING_DESC_F_NEXT
                self.write_desc(table, i, seg.addr, seg.length, flags, i + 1)
            (head,) = self._take(1)
            self.write_desc(self.addrs.desc, head, table, 16 * len(segs),
                            VRING_DESC_F_INDIRECT, 0)
            self.chains[head] = InFlight(head, [head], table, token)
            return head
        idx = self._take(len(segs))
        for i, seg in enumerate(segs):
            flags = (VRING_DESC_F_WRITE if seg.write else 0)
            nxt = 0
            if i + 1 < len(segs):
                flags |= VRING_DESC_F_NEXT
                nxt = idx[i + 1]
            self.write_desc(self.addrs.desc, idx[i], seg.addr, seg.length, flags, nxt)
        self.chains[idx[0]] = InFlight(idx[0], idx, None, token)
        return idx[0]

    def add_raw(self, descs: list[RawDesc], token: object = None) -> int:
        """Write descriptors as given; ``next`` is relative to the chain (0 = first).

        For chains the device must refuse (loops, indices out of the
        ring, bad addresses): the flags and next fields are not checked.
        """
        idx = self._take(len(descs))
        for i, d in enumerate(descs):
            nxt = idx[d.next] if 0 <= d.next < len(idx) else d.next
            self.write_desc(self.addrs.desc, idx[i], d.addr, d.length, d.flags, nxt)
        self.chains[idx[0]] = InFlight(idx[0], idx, None, token)
        return idx[0]

    def publish(self, head: int) -> None:
        """Make a chain available: ring entry first, then the index."""
        self._set_u16(self.addrs.avail + 4 + 2 * (self.avail_idx % self.num), head)
        self.avail_idx = (self.avail_idx + 1) & 0xFFFF
        self._set_u16(self.addrs.avail + 2, self.avail_idx)

    def kick_needed(self) -> bool:
        """Whether the device asked to be notified of what was published since the
        last call (avail_event with EVENT_IDX, otherwise VRING_USED_F_NO_NOTIFY)."""
        old, new = self.kicked_idx, self.avail_idx
        self.kicked_idx = new
        if old == new:
            return False
        if self.event_idx:
            return need_event(self.avail_event, new, old)
        return not self.used_flags & VRING_USED_F_NO_NOTIFY

    # -- used entries ---------------------------------------------------------------

    def has_used(self) -> bool:
        return self.used_idx != self.last_used_idx

    def get_used(self) -> list[tuple[Used, InFlight]]:
        """Collect the new used entries and reclaim their descriptors."""
        out: list[tuple[Used, InFlight]] = []
        end = self.used_idx
        while self.last_used_idx != end:
            slot = self.last_used_idx % self.num
            uid, ulen = USED_ELEM.unpack_from(
                self.mem.buf, self.mem.offset(self.addrs.used + 4 + 8 * slot, 8))
            self.last_used_idx = (self.last_used_idx + 1) & 0xFFFF
            chain = self.chains.pop(int(uid), None)
            if chain is None:
                raise RuntimeError(f"device returned head {uid}, which is not in flight")
            self.free.extend(chain.descs)
            if chain.indirect_table is not None:
                self.mem.free(chain.indirect_table)
            out.append((Used(int(uid), int(ulen)), chain))
        return out

    def enable_calls(self) -> bool:
        """Ask for a call on the next used entry; False if one is already there
        (the caller must then process it instead of sleeping)."""
        if self.event_idx:
            self.set_used_event(self.last_used_idx)
        else:
            self.set_no_interrupt(False)
        return not self.has_used()

    def in_flight(self) -> int:
        return len(self.chains)


def chain_descs(segs: list[Seg]) -> list[tuple[int, int, int]]:
    """(addr, len, flags) of the descriptors a direct chain would use (for tests)."""
    out = []
    for i, seg in enumerate(segs):
        flags = (VRING_DESC_F_WRITE if seg.write else 0)
        if i + 1 < len(segs):
            flags |= VRING_DESC_F_NEXT
        out.append((seg.addr, seg.length, flags))
    return out

