"""vblk.memory: the guest memory region and its allocator."""

from __future__ import annotations

import ctypes
import random
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vblk.memory import PAGE_SIZE, GuestMemory, OutOfGuestMemory


@pytest.fixture
def mem() -> Iterator[GuestMemory]:
    with GuestMemory(1 << 20) as m:
        yield m


def test_region_is_page_aligned_identity_map(mem: GuestMemory) -> None:
    gpa, size, uaddr = mem.region
    assert gpa == uaddr == mem.base
    assert mem.base % PAGE_SIZE == 0
    assert size == 1 << 20


def test_address_is_the_userspace_address(mem: GuestMemory) -> None:
    addr = mem.alloc(64)
    mem.write(addr, b"hello")
    assert ctypes.string_at(addr, 5) == b"hello"
    ctypes.memmove(addr + 8, b"world", 5)
    assert mem.read(addr + 8, 5) == b"world"


def test_alignment_and_phase(mem: GuestMemory) -> None:
    for align, phase in [(512, 0), (4096, 4095), (4096, 1), (16, 3), (1, 0)]:
        addr = mem.alloc(100, align=align, phase=phase)
        assert addr % align == phase


def test_crossing_a_page(mem: GuestMemory) -> None:
    addr = mem.alloc(1024, align=PAGE_SIZE, phase=PAGE_SIZE - 512)
    assert addr // PAGE_SIZE != (addr + 1023) // PAGE_SIZE


def test_out_of_memory_and_free_merges(mem: GuestMemory) -> None:
    a = mem.alloc(512 << 10, align=1)
    b = mem.alloc(512 << 10, align=1)
    with pytest.raises(OutOfGuestMemory):
        mem.alloc(1)
    mem.free(a)
    mem.free(b)
    assert mem.free_extents == [(0, 1 << 20)]
    assert mem.allocated_bytes == 0


def test_bad_requests(mem: GuestMemory) -> None:
    with pytest.raises(ValueError):
        mem.alloc(1, align=16, phase=16)
    with pytest.raises(ValueError):
        mem.free(mem.base + 12345)
    with pytest.raises(ValueError):
        mem.read(mem.base + mem.size, 1)
    with pytest.raises(ValueError):
        GuestMemory(1000)


def test_zero_size_allocations_are_distinct(mem: GuestMemory) -> None:
    assert mem.alloc(0) != mem.alloc(0)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20000), st.sampled_from([1, 16, 512, 4096]),
                          st.integers(0, 4095)), min_size=1, max_size=60),
       st.randoms())
def test_allocations_never_overlap(reqs: list[tuple[int, int, int]],
                                   rnd: random.Random) -> None:
    with GuestMemory(1 << 20) as mem:
        live: dict[int, int] = {}
        for size, align, phase in reqs:
            phase %= align
            try:
                addr = mem.alloc(size, align=align, phase=phase)
            except OutOfGuestMemory:
                continue
            assert addr % align == phase
            assert mem.contains(addr, max(size, 1))
            for other, osize in live.items():
                assert addr + max(size, 1) <= other or other + max(osize, 1) <= addr
            live[addr] = size
            if rnd.random() < 0.4:
                victim = rnd.choice(list(live))
                mem.free(victim)
                del live[victim]
        for addr in list(live):
            mem.free(addr)
        assert mem.free_extents == [(0, 1 << 20)]
