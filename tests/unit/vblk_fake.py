"""A device-side reader of split rings, for host tests of the driver library.

It walks the avail ring, follows descriptor chains (direct and
indirect) the way vhost does, and lets a test write used entries, so
the library's byte layout is checked without /dev/vhost-blk.
"""

from __future__ import annotations

import struct

from vblk import uapi
from vblk.memory import GuestMemory
from vblk.vring import SplitVring

U16 = struct.Struct("<H")


class FakeDevice:
    def __init__(self, mem: GuestMemory, ring: SplitVring) -> None:
        self.mem = mem
        self.ring = ring
        self.last_avail = 0
        self.used_idx = 0

    def _u16(self, addr: int) -> int:
        return int(U16.unpack_from(self.mem.buf, self.mem.offset(addr, 2))[0])

    def pop(self) -> tuple[int, list[tuple[int, int, bool]]] | None:
        """The next available head and its (addr, len, writable) buffers."""
        avail = self.ring.addrs.avail
        if self._u16(avail + 2) == self.last_avail:
            return None
        head = self._u16(avail + 4 + 2 * (self.last_avail % self.ring.num))
        self.last_avail = (self.last_avail + 1) & 0xFFFF
        bufs: list[tuple[int, int, bool]] = []
        table, idx, limit = self.ring.addrs.desc, head, self.ring.num
        for _ in range(2 * 1024 + 2):
            addr, length, flags, nxt = self.ring.read_desc(table, idx)
            if flags & uapi.VRING_DESC_F_INDIRECT:
                assert table == self.ring.addrs.desc, "nested indirect"
                assert length % 16 == 0
                table, idx, limit = addr, 0, length // 16
                continue
            bufs.append((addr, length, bool(flags & uapi.VRING_DESC_F_WRITE)))
            if not flags & uapi.VRING_DESC_F_NEXT:
                return head, bufs
            idx = nxt
            assert idx < limit
        raise AssertionError("descriptor loop")

    def push(self, head: int, length: int) -> None:
        used = self.ring.addrs.used
        slot = self.used_idx % self.ring.num
        uapi.USED_ELEM.pack_into(self.mem.buf, self.mem.offset(used + 4 + 8 * slot, 8),
                                 head, length)
        self.used_idx = (self.used_idx + 1) & 0xFFFF
        U16.pack_into(self.mem.buf, self.mem.offset(used + 2, 2), self.used_idx)

    def set_avail_event(self, idx: int) -> None:
        addr = self.ring.addrs.used + 4 + 8 * self.ring.num
        U16.pack_into(self.mem.buf, self.mem.offset(addr, 2), idx)

    def set_used_flags(self, flags: int) -> None:
        U16.pack_into(self.mem.buf, self.mem.offset(self.ring.addrs.used, 2), flags)
