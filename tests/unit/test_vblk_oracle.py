"""The fuzzer's reference model: expected statuses and the disk shadow."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from vblk import oracle, uapi
from vblk import request as rq
from vblk.memory import GuestMemory
from vblk.oracle import IOERR, OK, UNSUPP

CAP = 1 << 17  # 64 MiB in sectors
LIM = oracle.Limits(capacity=CAP, max_discard_sectors=1 << 20, max_discard_seg=256,
                    max_write_zeroes_sectors=1 << 20, max_write_zeroes_seg=256)
M = rq.malformed


@pytest.fixture
def mem() -> Iterator[GuestMemory]:
    with GuestMemory(16 << 20) as m:
        yield m


def place(mem: GuestMemory, chain: rq.Chain) -> tuple[int, ...]:
    return tuple(mem.alloc(b.size, align=b.align, phase=b.phase) for b in chain.bufs)


def answer(mem: GuestMemory, chain: rq.Chain, lim: oracle.Limits = LIM) -> oracle.Expect:
    addrs = place(mem, chain)
    return oracle.expect(lim, b"", ((b.data, b.length, b.write, a)
                                    for b, a in zip(chain.bufs, addrs, strict=True)))


# The statuses tests/guest/test_requests.py expects from the real device,
# written down independently of the model.  The used length is every
# device-writable byte whatever the status (the status byte ends them; QEMU
# pushes its whole in length), so a rejected read of 512 bytes says 513.
CASES: dict[str, tuple[rq.Chain, int | None, int]] = {
    "read": (rq.read(8, 4096), OK, 4097),
    "write": (rq.write(8, b"x" * 4096), OK, 1),
    "flush": (rq.flush(), OK, 1),
    "get-id": (rq.get_id(), OK, 21),
    "get-id-8": (rq.get_id(8), OK, 9),
    "get-id-32": (rq.get_id(32), OK, 33),
    "split-header-status-merged": (rq.read(0, 8192, rq.DescLayout(
        header_cuts=(1, 9), data_segs=(4096, 4096), status_merged=True, indirect=True)),
        OK, 8193),
    "header-merged-aligned": (rq.write(0, b"y" * 512, rq.DescLayout(
        header_merged=True, align=512, phase=512 - 16)), OK, 1),
    "short-header-8": (M.short_header(8), IOERR, 513),
    "header-writable": (M.header_in_writable(), IOERR, 16 + 512 + 1),
    "no-status": (M.no_status(), None, 0),
    "status-read-only": (M.status_readonly(), None, 0),
    "read-readable-data": (M.read_with_readable_data(), IOERR, 1),
    "write-writable-data": (M.write_with_writable_data(), IOERR, 513),
    "flush-with-data": (M.flush_with_data(), OK, 1),
    "past-capacity": (M.past_capacity(CAP), IOERR, 513),
    "at-capacity": (rq.read(CAP, 512), IOERR, 513),
    "huge-sector": (M.huge_sector(), IOERR, 513),
    "odd-length": (M.odd_length(513), IOERR, 514),
    "zero-length-read": (M.zero_length_read(), IOERR, 1),
    "zero-length-descs": (M.zero_length_descs(), OK, 513),
    "1022-segments": (M.too_many_segments(1022), OK, 1022 * 512 + 1),
    # Any layout, any alignment (virtio 1.2, 2.6.4): served, bounced if need be.
    "1023-segments": (M.too_many_segments(1023), OK, 1023 * 512 + 1),
    "misaligned-data": (M.misaligned_data(8), OK, 513),
    "header-merged-misaligned": (rq.write(0, b"y" * 512, rq.DescLayout(header_merged=True)),
                                 OK, 1),
    "4k-block-split-3584-512": (rq.read(8, 4096, rq.DescLayout(data_segs=(3584, 512))), OK, 4097),
    "get-id-no-room": (M.get_id_no_room(), IOERR, 1),
    "discard-partial-segment": (M.discard_partial_segment(), IOERR, 1),
    "discard-unmap-flag": (M.discard_flags(), UNSUPP, 1),
    "wz-unknown-flag": (M.write_zeroes_unknown_flag(), UNSUPP, 1),
    "wz-empty-segment": (M.dwz_empty_segment(), OK, 1),
    "discard-empty-segment": (M.dwz_empty_segment(uapi.VIRTIO_BLK_T_DISCARD), OK, 1),
    "wz-past-capacity": (M.dwz_past_capacity(CAP), IOERR, 1),
    "wz-257-segments": (M.dwz_too_many_segments(257), IOERR, 1),
    "wz-writable-data": (M.dwz_with_writable_data(), IOERR, 17),
    "unknown-type": (rq.unknown(10), UNSUPP, 1),
    "unknown-type-short": (rq.build(10, header=uapi.outhdr(10)[:15]), IOERR, 1),
}


@pytest.mark.parametrize("name", list(CASES))
def test_expected_status(mem: GuestMemory, name: str) -> None:
    chain, status, used_len = CASES[name]
    e = answer(mem, chain)
    assert (e.status, e.used_len) == (status, used_len), e.why


def test_discard_not_offered_is_unsupp(mem: GuestMemory) -> None:
    lim = oracle.Limits(capacity=CAP)
    assert answer(mem, rq.discard([(0, 8)]), lim).status == UNSUPP
    assert answer(mem, rq.write_zeroes([(0, 8)]), lim).status == UNSUPP


def test_read_only_backend_rejects_writes(mem: GuestMemory) -> None:
    lim = oracle.Limits(capacity=CAP, read_only=True, max_write_zeroes_sectors=8,
                        max_write_zeroes_seg=1)
    assert answer(mem, rq.write(0, b"z" * 512), lim).status == IOERR
    assert answer(mem, rq.write_zeroes([(0, 8)]), lim).status == IOERR
    assert answer(mem, rq.read(0, 512), lim).status == OK


def test_flags_are_unsupp_before_read_only_is_ioerr(mem: GuestMemory) -> None:
    """5.2.6.2: UNSUPP for the unmap flag on a discard, on any device."""
    lim = oracle.Limits(capacity=CAP, read_only=True, max_discard_sectors=8,
                        max_discard_seg=1, max_write_zeroes_sectors=8, max_write_zeroes_seg=1)
    assert answer(mem, M.discard_flags(), lim).status == UNSUPP
    assert answer(mem, M.write_zeroes_unknown_flag(), lim).status == UNSUPP
    assert answer(mem, rq.discard([(0, 8)]), lim).status == IOERR
    assert answer(mem, M.dwz_empty_segment(), lim).status == IOERR


def _done(chain: rq.Chain, mem: GuestMemory, status: int | None, used_len: int,
          data: bytes = b"") -> rq.Completion:
    return rq.Completion(status, used_len, data, chain, 0, 0.0, place(mem, chain))


def test_shadow_follows_writes_and_catches_a_bad_read(mem: GuestMemory) -> None:
    shadow = oracle.Shadow(bytes(64 * 512))
    data = bytes(range(256)) * 8
    w = rq.write(4, data)
    assert oracle.check_batch(LIM, b"", shadow, [_done(w, mem, OK, 1)]) == []
    r = rq.read(4, 2048)
    assert oracle.check_batch(LIM, b"", shadow, [_done(r, mem, OK, 2049, data)]) == []
    bad = data[:512] + b"\0" * 512 + data[1024:]
    problems = oracle.check_batch(LIM, b"", shadow, [_done(r, mem, OK, 2049, bad)])
    assert len(problems) == 1 and "sectors [5]" in problems[0]


def test_wrong_status_and_side_effects_are_reported(mem: GuestMemory) -> None:
    shadow = oracle.Shadow(bytes(16 * 512))
    problems = oracle.check_batch(LIM, b"", shadow,
                                  [_done(M.odd_length(513), mem, OK, 514, bytes(513))])
    assert len(problems) == 1 and "expected 1 used 514" in problems[0]
    problems = oracle.check_batch(LIM, b"", shadow,
                                  [_done(M.odd_length(513), mem, IOERR, 1, bytes(513))])
    assert len(problems) == 1 and "used 1, expected 1 used 514" in problems[0]
    wrote = bytes([rq.POISON]) * 100 + b"\0" + bytes([rq.POISON]) * 412
    problems = oracle.check_batch(LIM, b"", shadow,
                                  [_done(M.odd_length(513), mem, IOERR, 514, wrote)])
    assert len(problems) == 1 and "wrote into its buffers" in problems[0]


def test_a_batch_with_two_writers_makes_the_sector_unknown(mem: GuestMemory) -> None:
    shadow = oracle.Shadow(bytes(16 * 512))
    batch = [_done(rq.write(0, b"a" * 1024), mem, OK, 1),
             _done(rq.write(1, b"b" * 512), mem, OK, 1),
             _done(rq.read(0, 1024), mem, OK, 1025, b"\x99" * 1024)]
    assert oracle.check_batch(LIM, b"", shadow, batch) == [], "read raced the writes"
    assert list(shadow.known[:3]) == [1, 0, 1]
    assert shadow.data[:512] == b"a" * 512


def test_discard_makes_data_undefined_and_write_zeroes_zeroes(mem: GuestMemory) -> None:
    shadow = oracle.Shadow(b"\xff" * 32 * 512)
    batch = [_done(rq.discard([(0, 8)]), mem, OK, 1),
             _done(rq.write_zeroes([(16, 8)]), mem, OK, 1)]
    assert oracle.check_batch(LIM, b"", shadow, batch) == []
    assert list(shadow.known[:8]) == [0] * 8 and all(shadow.known[8:])
    assert shadow.data[16 * 512:24 * 512] == bytes(8 * 512)


def test_get_id_must_return_the_serial(mem: GuestMemory) -> None:
    shadow = oracle.Shadow(b"")
    c = rq.get_id()
    good = b"sn-1".ljust(20, b"\0")
    assert oracle.check_batch(LIM, b"sn-1", shadow, [_done(c, mem, OK, 21, good)]) == []
    problems = oracle.check_batch(LIM, b"sn-2", shadow, [_done(c, mem, OK, 21, good)])
    assert len(problems) == 1 and "serial" in problems[0]
