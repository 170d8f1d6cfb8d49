"""Guest memory: one anonymous, page-aligned mmap with an identity map.

The "guest physical" address of a byte is its userspace address, as in
tools/virtio/virtio_test.c, so descriptors carry plain pointers and the
memory table has a single region.  A first-fit allocator hands out
buffers inside the region with any alignment and phase (``addr % align
== phase``), so tests can place buffers at unaligned addresses and
across page boundaries.
"""

from __future__ import annotations

import bisect
import ctypes
import mmap
import threading

PAGE_SIZE = mmap.PAGESIZE


class OutOfGuestMemory(MemoryError):
    """The region has no free extent large enough."""


class GuestMemory:
    """An mmap'd region used as guest memory, with a buffer allocator."""

    def __init__(self, size: int = 64 << 20) -> None:
        if size <= 0 or size % PAGE_SIZE:
            raise ValueError(f"guest memory size {size} is not a positive multiple of "
                             f"the page size {PAGE_SIZE}")
        self.size = size
        self._map: mmap.mmap | None = mmap.mmap(-1, size,
                                                flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        # The temporary ctypes view is dropped at once, so the mmap can be closed.
        self.base = ctypes.addressof(ctypes.c_char.from_buffer(self._map))
        self._lock = threading.Lock()
        # Free extents as sorted, non-overlapping [start, end) offsets.
        self._free_starts: list[int] = [0]
        self._free_ends: list[int] = [size]
        self._allocated: dict[int, tuple[int, int]] = {}

    # -- the mapping --------------------------------------------------------------

    @property
    def buf(self) -> mmap.mmap:
        if self._map is None:
            raise ValueError("guest memory is closed")
        return self._map

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None

    def __enter__(self) -> GuestMemory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def region(self) -> tuple[int, int, int]:
        """(guest_phys_addr, size, userspace_addr) of the identity map."""
        return (self.base, self.size, self.base)

    def offset(self, addr: int, length: int = 0) -> int:
        """The offset of ``addr`` in the region; the range must lie inside."""
        off = addr - self.base
        if off < 0 or off + length > self.size or length < 0:
            raise ValueError(f"address range {addr:#x}+{length} is outside guest memory")
        return off

    def contains(self, addr: int, length: int = 1) -> bool:
        return self.base <= addr and addr + length <= self.base + self.size

    def read(self, addr: int, length: int) -> bytes:
        off = self.offset(addr, length)
        return bytes(self.buf[off:off + length])

    def write(self, addr: int, data: bytes) -> None:
        off = self.offset(addr, len(data))
        self.buf[off:off + len(data)] = data

    def fill(self, addr: int, length: int, byte: int) -> None:
        self.write(addr, bytes([byte]) * length)

    # -- the allocator ------------------------------------------------------------

    def alloc(self, size: int, align: int = 16, phase: int = 0) -> int:
        """Allocate ``size`` bytes at an address with ``addr % align == phase``.

        ``size`` 0 is allowed and still returns a distinct address.  Use
        align=PAGE_SIZE, phase=PAGE_SIZE - n to make a buffer cross a page
        boundary n bytes after its start.
        """
        if size < 0 or align <= 0 or not 0 <= phase < align:
            raise ValueError(f"bad allocation: size {size}, align {align}, phase {phase}")
        need = max(size, 1)
        with self._lock:
            for i, (start, end) in enumerate(zip(self._free_starts, self._free_ends,
                                                 strict=True)):
                addr = self.base + start
                addr += (phase - addr) % align
                off = addr - self.base
                if off + need <= end:
                    self._take(i, off, off + need)
                    self._allocated[addr] = (off, off + need)
                    return addr
        raise OutOfGuestMemory(f"no room for {size} bytes (align {align}, phase {phase}) "
                               f"in {self.size} bytes of guest memory")

    def _take(self, i: int, lo: int, hi: int) -> None:
        start, end = self._free_starts[i], self._free_ends[i]
        del self._free_starts[i], self._free_ends[i]
        if hi < end:
            self._free_starts.insert(i, hi)
            self._free_ends.insert(i, end)
        if start < lo:
            self._free_starts.insert(i, start)
            self._free_ends.insert(i, lo)

    def free(self, addr: int) -> None:
        """Return a buffer from alloc() to the free extents."""
        with self._lock:
            try:
                lo, hi = self._allocated.pop(addr)
            except KeyError:
                raise ValueError(f"{addr:#x} was not allocated") from None
            i = bisect.bisect_left(self._free_starts, lo)
            # Merge with the neighbours when they touch.
            if i < len(self._free_starts) and self._free_starts[i] == hi:
                hi = self._free_ends[i]
                del self._free_starts[i], self._free_ends[i]
            if i > 0 and self._free_ends[i - 1] == lo:
                lo = self._free_starts[i - 1]
                del self._free_starts[i - 1], self._free_ends[i - 1]
                i -= 1
            self._free_starts.insert(i, lo)
            self._free_ends.insert(i, hi)

    @property
    def allocated_bytes(self) -> int:
        with self._lock:
            return sum(hi - lo for lo, hi in self._allocated.values())

    @property
    def free_extents(self) -> list[tuple[int, int]]:
        with self._lock:
            return list(zip(self._free_starts, self._free_ends, strict=True))
