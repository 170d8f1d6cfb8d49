"""vblk.vring: split ring layout, chains, EVENT_IDX, used entries."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vblk_fake import FakeDevice

from vblk import uapi
from vblk.memory import GuestMemory
from vblk.vring import (
    RawDesc,
    Seg,
    SplitVring,
    avail_ring_size,
    chain_descs,
    legacy_ring_size,
    need_event,
    used_ring_size,
)


@pytest.fixture
def mem() -> Iterator[GuestMemory]:
    with GuestMemory(1 << 20) as m:
        yield m


def test_sizes_follow_the_spec() -> None:
    # virtio 1.x 2.7: 16*Q, 6+2*Q, 6+8*Q; vring_size(256, 4096) == 10246 in C.
    assert avail_ring_size(256) == 6 + 2 * 256
    assert used_ring_size(256) == 6 + 8 * 256
    assert legacy_ring_size(256) == 8192 + 6 + 8 * 256
    assert legacy_ring_size(128) == 4096 + 6 + 8 * 128


def test_ring_alignment(mem: GuestMemory) -> None:
    ring = SplitVring(mem, 64)
    assert ring.addrs.desc % uapi.VRING_DESC_ALIGN_SIZE == 0
    assert ring.addrs.avail % uapi.VRING_AVAIL_ALIGN_SIZE == 0
    assert ring.addrs.used % uapi.VRING_USED_ALIGN_SIZE == 0


@pytest.mark.parametrize("num", [0, 3, 65536])
def test_bad_ring_sizes(mem: GuestMemory, num: int) -> None:
    with pytest.raises(ValueError):
        SplitVring(mem, num)


def test_need_event_matches_c() -> None:
    # vring_need_event(event, new, old) = (u16)(new - event - 1) < (u16)(new - old)
    assert need_event(0, 1, 0)
    assert not need_event(5, 3, 0)
    assert need_event(2, 3, 0)
    assert need_event(0xFFFF, 1, 0xFFFE)
    assert not need_event(10, 10, 10)


def test_direct_chain_layout(mem: GuestMemory) -> None:
    ring = SplitVring(mem, 8)
    segs = [Seg(mem.base + 0x100, 16, False), Seg(mem.base + 0x1000, 512, True),
            Seg(mem.base + 0x2000, 1, True)]
    head = ring.add_chain(segs)
    ring.publish(head)
    dev = FakeDevice(mem, ring)
    got = dev.pop()
    assert got == (head, [(s.addr, s.length, s.write) for s in segs])
    assert ring.num_free == 5
    flags = [f for _, _, f in chain_descs(segs)]
    assert flags == [uapi.VRING_DESC_F_NEXT, uapi.VRING_DESC_F_NEXT | uapi.VRING_DESC_F_WRITE,
                     uapi.VRING_DESC_F_WRITE]


def test_indirect_chain_uses_one_slot(mem: GuestMemory) -> None:
    ring = SplitVring(mem, 4)
    segs = [Seg(mem.base + 16 * i, 16, i % 2 == 1) for i in range(100)]
    head = ring.add_chain(segs, indirect=True)
    ring.publish(head)
    assert ring.num_free == 3
    addr, length, flags, _ = ring.read_desc(ring.addrs.desc, head)
    assert flags == uapi.VRING_DESC_F_INDIRECT and length == 1600 and addr % 16 == 0
    dev = FakeDevice(mem, ring)
    got = dev.pop()
    assert got is not None and [b[2] for b in got[1]] == [s.write for s in segs]
    before = mem.allocated_bytes
    dev.push(head, 7)
    (used, chain), = ring.get_used()
    assert (used.id, used.length) == (head, 7)
    assert chain.indirect_table is not None
    assert mem.allocated_bytes == before - 1600
    assert ring.num_free == 4


def test_ring_full(mem: GuestMemory) -> None:
    ring = SplitVring(mem, 2)
    ring.add_chain([Seg(mem.base, 1, True)] * 2)
    with pytest.raises(BufferError):
        ring.add_chain([Seg(mem.base, 1, True)])


def test_used_entries_out_of_order_and_wrap(mem: GuestMemory) -> None:
    ring = SplitVring(mem, 4)
    dev = FakeDevice(mem, ring)
    for rnd in range(40000):  # wraps the 16-bit indices
        heads = [ring.add_chain([Seg(mem.base, 1, True)]) for _ in range(2)]
        for h in heads:
            ring.publish(h)
        popped = [dev.pop(), dev.pop()]
        assert [p[0] for p in popped if p] == heads
        for h in reversed(heads):
            dev.push(h, 1)
        got = [u.id for u, _ in ring.get_used()]
        assert got == list(reversed(heads))
        if rnd > 3:
            break
    assert ring.num_free == 4


def test_index_wraparound(mem: GuestMemory) -> None:
    ring = SplitVring(mem, 2)
    dev = FakeDevice(mem, ring)
    ring.avail_idx = ring.kicked_idx = dev.last_avail = 0xFFFF
    ring.last_used_idx = dev.used_idx = 0xFFFF
    for _ in range(3):
        head = ring.add_chain([Seg(mem.base, 1, True)])
        ring.publish(head)
        popped = dev.pop()
        assert popped is not None and popped[0] == head
        dev.push(head, 1)
        assert [u.id for u, _ in ring.get_used()] == [head]
    assert ring.avail_idx == 2


def test_kick_suppression_without_event_idx(mem: GuestMemory) -> None:
    ring = SplitVring(mem, 8)
    dev = FakeDevice(mem, ring)
    assert not ring.kick_needed()
    ring.publish(ring.add_chain([Seg(mem.base, 1, True)]))
    assert ring.kick_needed()
    dev.set_used_flags(uapi.VRING_USED_F_NO_NOTIFY)
    ring.publish(ring.add_chain([Seg(mem.base, 1, True)]))
    assert not ring.kick_needed()


def test_event_idx(mem: GuestMemory) -> None:
    ring = SplitVring(mem, 8, event_idx=True)
    dev = FakeDevice(mem, ring)
    dev.set_avail_event(0)
    ring.publish(ring.add_chain([Seg(mem.base, 1, True)]))
    assert ring.kick_needed()          # idx moved 0 -> 1 past event 0
    ring.publish(ring.add_chain([Seg(mem.base, 1, True)]))
    assert not ring.kick_needed()      # device still wants only idx 0
    dev.set_avail_event(2)
    ring.publish(ring.add_chain([Seg(mem.base, 1, True)]))
    assert ring.kick_needed()
    assert ring.enable_calls()
    assert ring.used_event == 0
    dev.pop()
    dev.push(0, 1)
    assert not ring.enable_calls()     # an entry is waiting already
    ring.get_used()
    assert ring.enable_calls() and ring.used_event == 1


def test_raw_chain_with_loop(mem: GuestMemory) -> None:
    ring = SplitVring(mem, 4)
    head = ring.add_raw([RawDesc(mem.base, 16, uapi.VRING_DESC_F_NEXT, 1),
                         RawDesc(mem.base, 1, uapi.VRING_DESC_F_NEXT, 0)])
    ring.publish(head)
    with pytest.raises(AssertionError, match="loop"):
        FakeDevice(mem, ring).pop()


def test_unknown_used_id_is_reported(mem: GuestMemory) -> None:
    ring = SplitVring(mem, 4)
    FakeDevice(mem, ring).push(3, 0)
    with pytest.raises(RuntimeError, match="not in flight"):
        ring.get_used()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(0, 4096), st.booleans()), min_size=1,
                         max_size=12), min_size=1, max_size=30),
       st.booleans())
def test_any_chains_round_trip(chains: list[list[tuple[int, bool]]], indirect: bool) -> None:
    with GuestMemory(1 << 20) as mem:
        ring = SplitVring(mem, 16)
        dev = FakeDevice(mem, ring)
        for spec in chains:
            segs = [Seg(mem.base + 64 * i, length, w) for i, (length, w) in enumerate(spec)]
            need = 1 if indirect else len(segs)
            if need > ring.num_free:
                continue
            head = ring.add_chain(segs, indirect=indirect)
            ring.publish(head)
            got = dev.pop()
            assert got == (head, [(s.addr, s.length, s.write) for s in segs])
            dev.push(head, 0)
            assert [u.id for u, _ in ring.get_used()] == [head]
        assert ring.num_free == 16
