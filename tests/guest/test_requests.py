"""Request types other than plain I/O, hostile requests, config and features."""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Callable

import pytest
from vblk_env import Backend, Blk, brd, null_blk, start

from vblk import request as rq
from vblk import uapi
from vblk.device import DEFAULT_FEATURES, VhostBlk, VhostError

OK, IOERR, UNSUPP = uapi.VIRTIO_BLK_S_OK, uapi.VIRTIO_BLK_S_IOERR, uapi.VIRTIO_BLK_S_UNSUPP


def test_flush(blk: Blk) -> None:
    blk.write(0, os.urandom(4096))
    c = blk.run(rq.flush())
    assert (c.status, c.used_len) == (OK, 1)
    c = blk.run(rq.flush(rq.DescLayout(header_cuts=(3, 9), indirect=True)))
    assert (c.status, c.used_len) == (OK, 1)


def test_get_id_default_is_empty(ramblk: Blk) -> None:
    c = ramblk.run(rq.get_id())
    assert (c.status, c.used_len, c.data) == (OK, 21, bytes(20))


@pytest.mark.parametrize("serial", [b"vblk-serial-0001", b"x" * 20, b"a"])
def test_get_id_with_serial(ram: Backend, serial: bytes) -> None:
    with start(ram, serial=serial) as b:
        c = b.run(rq.get_id())
        assert (c.status, c.used_len) == (OK, 21)
        assert c.data == serial.ljust(20, b"\0")


def test_get_id_short_and_long_buffers(ram: Backend) -> None:
    with start(ram, serial=b"0123456789abcdefghij") as b:
        c = b.run(rq.get_id(8))
        assert (c.status, c.used_len, c.data) == (OK, 9, b"01234567")
        # A larger buffer: the ID, then zeroes up to the status byte, all
        # of them in the used length (QEMU counts the whole buffer too).
        c = b.run(rq.get_id(32, rq.DescLayout(data_segs=(5, 27))))
        assert (c.status, c.used_len) == (OK, 33)
        assert c.data == b"0123456789abcdefghij" + bytes(12)


def test_serial_is_cut_at_nul_and_survives_backend_change(ram: Backend) -> None:
    with start(ram, serial=b"abc\0def") as b:
        b.dev.set_backend(-1)
        b.dev.set_backend(ram.fd)
        c = b.run(rq.get_id())
        assert c.data == b"abc".ljust(20, b"\0")


@pytest.mark.parametrize("req_type", [2, 3, 5, 10, 12, 14, 15, 16, 24, 0x80000000,
                                      0x80000001, 0xFFFFFFFF])
def test_unknown_type_is_unsupp(ramblk: Blk, req_type: int) -> None:
    c = ramblk.run(rq.unknown(req_type))
    assert (c.status, c.used_len) == (UNSUPP, 1)
    c = ramblk.run(rq.unknown(req_type, in_len=512, out_data=b"\0" * 512))
    assert (c.status, c.used_len) == (UNSUPP, 513)
    ramblk.still_serves()


M = rq.malformed
# (builder, expected status); the builder gets the capacity.  The used
# length is every device-writable byte, whatever the status: the status
# byte ends them (virtio 1.2, 5.2.6), and QEMU pushes the whole in length.
MALFORMED: dict[str, tuple[Callable[[int], rq.Chain], int | None]] = {
    "short-header-0": (lambda cap: M.short_header(0), IOERR),
    "short-header-8": (lambda cap: M.short_header(8), IOERR),
    "short-header-15": (lambda cap: M.short_header(15), IOERR),
    "header-writable": (lambda cap: M.header_in_writable(), IOERR),
    "no-status": (lambda cap: M.no_status(), None),
    "status-read-only": (lambda cap: M.status_readonly(), None),
    "read-readable-data": (lambda cap: M.read_with_readable_data(), IOERR),
    "write-writable-data": (lambda cap: M.write_with_writable_data(), IOERR),
    "flush-with-data": (lambda cap: M.flush_with_data(), OK),
    "past-capacity": (lambda cap: M.past_capacity(cap), IOERR),
    "past-capacity-big": (lambda cap: M.past_capacity(cap, 1 << 20), IOERR),
    "at-capacity": (lambda cap: rq.read(cap, 512), IOERR),
    "huge-sector": (lambda cap: M.huge_sector(), IOERR),
    "odd-length-513": (lambda cap: M.odd_length(513), IOERR),
    "odd-length-1000": (lambda cap: M.odd_length(1000), IOERR),
    "zero-length-read": (lambda cap: M.zero_length_read(), IOERR),
    "zero-length-write": (lambda cap: M.zero_length_write(), IOERR),
    "zero-length-descs": (lambda cap: M.zero_length_descs(), OK),
    # More than seg_max (958): served while the chain fits in 1024 iovecs.
    "1022-segments": (lambda cap: M.too_many_segments(1022), OK),
    "1023-segments": (lambda cap: M.too_many_segments(1023), OK),
    # Not malformed for the spec (2.6.4): bounced.
    "misaligned-data": (lambda cap: M.misaligned_data(8), OK),
    "get-id-no-room": (lambda cap: M.get_id_no_room(), IOERR),
    "discard-partial-segment": (lambda cap: M.discard_partial_segment(), IOERR),
    "discard-no-segment": (lambda cap: M.discard_no_segment(), IOERR),
    "discard-unmap-flag": (lambda cap: M.discard_flags(), UNSUPP),
    "discard-unknown-flag": (lambda cap: M.discard_flags(0x80), UNSUPP),
    "wz-unknown-flag": (lambda cap: M.write_zeroes_unknown_flag(), UNSUPP),
    "wz-empty-segment": (lambda cap: M.dwz_empty_segment(), OK),
    "discard-empty-segment": (lambda cap: M.dwz_empty_segment(uapi.VIRTIO_BLK_T_DISCARD),
                              OK),
    "wz-past-capacity": (lambda cap: M.dwz_past_capacity(cap), IOERR),
    "discard-past-capacity": (lambda cap: M.dwz_past_capacity(
        cap, uapi.VIRTIO_BLK_T_DISCARD), IOERR),
    "wz-257-segments": (lambda cap: M.dwz_too_many_segments(257), IOERR),
    "wz-writable-data": (lambda cap: M.dwz_with_writable_data(), IOERR),
    "wz-huge-sector": (lambda cap: rq.write_zeroes([(2**64 - 8, 8)]), IOERR),
}


def _used(chain: rq.Chain) -> int:
    """The used length the device owes: 0 without a status byte, else every writable byte."""
    return chain.in_bytes


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_request(ramblk: Blk, name: str) -> None:
    build, status = MALFORMED[name]
    ramblk.write(0, b"\x5a" * 4096)
    c = ramblk.run(build(ramblk.capacity))
    assert (c.status, c.used_len) == (status, _used(c.chain)), name
    assert not ramblk.q.vq_error()
    ramblk.still_serves(64)
    # A rejected request has no side effect on the data.
    assert ramblk.read(0, 4096) == b"\x5a" * 4096


def test_malformed_then_good_in_one_batch(ramblk: Blk) -> None:
    """Bad requests queued between good ones do not stall the ring."""
    cap = ramblk.capacity
    chains: list[rq.Chain] = []
    for i, (build, _) in enumerate(MALFORMED.values()):
        chains.append(build(cap))
        chains.append(rq.write(1024 + 8 * i, bytes([i]) * 4096))
    done = ramblk.q.run_many(chains)
    for i, (name, (_, status)) in enumerate(MALFORMED.items()):
        c = done[2 * i]
        assert (c.status, c.used_len) == (status, _used(c.chain)), name
        assert done[2 * i + 1].ok
    for i in range(len(MALFORMED)):
        assert ramblk.read(1024 + 8 * i, 4096) == bytes([i]) * 4096


# -- discard and write zeroes -------------------------------------------------------


@pytest.mark.parametrize("unmap", [False, True])
def test_write_zeroes_reads_back_zeroes(blk: Blk, unmap: bool) -> None:
    flags = uapi.VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP if unmap else 0
    blk.write(0, b"\xff" * (64 << 10))
    c = blk.run(rq.write_zeroes([(8, 8, flags), (40, 24, flags)]))
    assert (c.status, c.used_len) == (OK, 1)
    got = blk.read(0, 64 << 10)
    expect = bytearray(b"\xff" * (64 << 10))
    expect[8 * 512:16 * 512] = bytes(8 * 512)
    expect[40 * 512:64 * 512] = bytes(24 * 512)
    assert got == expect


def test_write_zeroes_large(blk: Blk) -> None:
    cfg = blk.dev.get_config()
    n = min(int(cfg.max_write_zeroes_sectors), 8192)
    blk.write(0, b"\x77" * (1 << 20))
    c = blk.run(rq.write_zeroes([(0, n)]))
    assert c.ok
    assert blk.read(0, 1 << 20)[: min(n * 512, 1 << 20)] == bytes(min(n * 512, 1 << 20))


def test_discard(blk: Blk) -> None:
    cfg = blk.dev.get_config()
    if not cfg.max_discard_sectors:
        # The backend cannot discard: a VMM would not expose the feature,
        # and the device refuses the request as unsupported.
        assert cfg.max_discard_seg == 0
        c = blk.run(rq.discard([(0, 8)]))
        assert c.status == UNSUPP
        return
    assert cfg.max_discard_seg == 256
    gran = max(int(cfg.discard_sector_alignment), 8)
    blk.write(0, b"\x33" * (128 << 10))
    c = blk.run(rq.discard([(gran, gran), (4 * gran, 2 * gran)]))
    assert (c.status, c.used_len) == (OK, 1)
    # Discarded data is undefined, the rest is untouched.
    data = blk.read(0, 128 << 10)
    assert data[: gran * 512] == b"\x33" * gran * 512
    assert data[2 * gran * 512: 4 * gran * 512] == b"\x33" * 2 * gran * 512
    blk.still_serves()


# -- read-only backend --------------------------------------------------------------------


def test_read_only_backend() -> None:
    with brd(1) as rw:
        data = os.urandom(8192)
        rw.direct_write(0, data)
    with brd(1, os.O_RDONLY) as ro, start(ro) as b:
        # The guest was not told (RO not acked): the device refuses anyway.
        assert not b.dev.features & uapi.bit(uapi.VIRTIO_BLK_F_RO)
        assert b.read(0, 8192) == data
        for chain in (rq.write(0, b"\0" * 512), rq.write_zeroes([(0, 8)]),
                      rq.discard([(0, 8)])):
            c = b.run(chain)
            assert (c.status, c.used_len) == (IOERR, _used(chain)), chain.label
        # The unmap flag on a discard is UNSUPP on any device (5.2.6.2).
        assert b.run(M.discard_flags()).status == UNSUPP
        assert b.run(rq.flush()).status in (OK, IOERR)
        assert b.read(0, 8192) == data
        assert b.run(rq.get_id()).ok


def test_features_do_not_depend_on_the_backend(ram: Backend) -> None:
    # QEMU's vhost core reads the features once, before any backend.
    with start(None) as b:
        before = b.dev.get_features()
        assert before & uapi.bit(uapi.VIRTIO_BLK_F_RO)
        assert before & uapi.bit(uapi.VIRTIO_BLK_F_DISCARD)
        b.dev.set_backend(ram.fd)
        assert b.dev.get_features() == before
        with brd(2, os.O_RDONLY) as ro:
            b.dev.set_backend(ro.fd)
            assert b.dev.get_features() == before
        with null_blk(discard=False) as nd:
            b.dev.set_backend(nd.fd)
            assert b.dev.get_features() == before
        b.dev.set_backend(-1)
        assert b.dev.get_features() == before


def test_acked_ro_makes_a_writable_backend_read_only(ram: Backend) -> None:
    data = os.urandom(4096)
    ram.direct_write(0, data)
    features = DEFAULT_FEATURES | uapi.bit(uapi.VIRTIO_BLK_F_RO)
    with start(ram, features=features) as b:
        for chain in (rq.write(0, b"\0" * 4096), rq.write_zeroes([(0, 8)]),
                      rq.discard([(0, 8)])):
            c = b.run(chain)
            assert (c.status, c.used_len) == (IOERR, _used(chain)), chain.label
        assert b.run(M.discard_flags()).status == UNSUPP
        assert b.read(0, 4096) == data
    assert ram.direct_read(0, 4096) == data


@pytest.mark.parametrize("feature", ["discard", "write_zeroes"])
def test_request_of_a_feature_not_acked_is_unsupported(ram: Backend, feature: str) -> None:
    bit = (uapi.VIRTIO_BLK_F_DISCARD if feature == "discard"
           else uapi.VIRTIO_BLK_F_WRITE_ZEROES)
    data = os.urandom(4096)
    ram.direct_write(0, data)
    with start(ram, features=DEFAULT_FEATURES & ~uapi.bit(bit)) as b:
        chain = rq.discard([(0, 8)]) if feature == "discard" else rq.write_zeroes([(0, 8)])
        c = b.run(chain)
        assert (c.status, c.used_len) == (UNSUPP, 1)
        assert b.read(0, 4096) == data


def test_set_backend_index_must_be_zero(ram: Backend) -> None:
    with start(None) as b:
        with pytest.raises(VhostError) as exc:
            b.dev.set_backend(ram.fd, index=1)
        assert exc.value.errno == errno.EINVAL
        with pytest.raises(VhostError):
            b.dev.get_config()  # nothing was attached


def test_vmm_order_backend_before_vrings(ram: Backend) -> None:
    """What a VMM does: backend and config at creation, vrings at start."""
    with VhostBlk(mem_size=32 << 20) as dev:
        dev.set_owner()
        offered = dev.get_features()
        dev.set_backend(ram.fd)
        cfg = dev.get_config()
        assert cfg.capacity == ram.sectors and cfg.num_queues == 16
        dev.set_features(offered & DEFAULT_FEATURES)
        dev.set_mem_table()
        vqs = [dev.setup_vq(i, 64) for i in range(2)]
        dev.set_backend(ram.fd)
        for vq in vqs:
            q = rq.BlkQueue(vq, dev.mem)
            data = os.urandom(4096)
            assert q.run(rq.write(8 * vq.index, data)).ok
            c = q.run(rq.read(8 * vq.index, 4096))
            assert c.ok and c.data == data
        dev.set_backend(-1)
        for vq in vqs:
            dev.get_vring_base(vq.index)


# -- configuration and features --------------------------------------------------------


def test_config(blk: Blk) -> None:
    cfg = blk.dev.get_config()
    assert cfg.capacity == blk.backend.sectors
    assert cfg.blk_size == 512
    # 1024 iovecs, less the header, the status and one per region of the
    # memory table a buffer may straddle (64, vhost's max_mem_regions).
    assert cfg.seg_max == 958 and cfg.size_max == 1 << 20
    assert cfg.num_queues == 16  # the maximum; the VMM chooses
    # write_zeroes_may_unmap follows the backend: test_conformance.py.
    assert cfg.max_write_zeroes_seg == 256


def test_config_ranges(blk: Blk) -> None:
    full = blk.dev.get_config_range(0, 96)
    # A VMM built against Debian 12's 72-byte struct reads its prefix.
    assert blk.dev.get_config_range(0, 72) == full[:72]
    assert blk.dev.get_config_range(20, 4) == full[20:24]  # blk_size
    assert int.from_bytes(blk.dev.get_config_range(0, 8), "little") == blk.backend.sectors
    assert blk.dev.get_config_range(96, 0) == b""
    for off, length in ((0, 97), (96, 1), (95, 2), (1 << 31, 4)):
        with pytest.raises(VhostError) as exc:
            blk.dev.get_config_range(off, length)
        assert exc.value.errno == errno.EINVAL, (off, length)
    # off + len overflowing 32 bits: refused before any byte is copied.
    head = bytearray(uapi.VHOST_VDPA_CONFIG.pack(4, 0xFFFFFFFF))
    with pytest.raises(OSError) as oexc:
        fcntl.ioctl(blk.dev.fd, uapi.VHOST_BLK_GET_CONFIG, head, True)
    assert oexc.value.errno == errno.EINVAL


def test_config_without_backend() -> None:
    with start(None) as b:
        with pytest.raises(VhostError) as exc:
            b.dev.get_config()
        assert exc.value.errno == 19  # ENODEV


def test_features_offered() -> None:
    with start(None) as b:
        f = b.dev.get_features()
        # Exactly the set of Documentation/userspace-api/vhost-blk.rst.
        expected = 0
        for bit in (uapi.VIRTIO_F_VERSION_1, uapi.VIRTIO_RING_F_INDIRECT_DESC,
                    uapi.VIRTIO_RING_F_EVENT_IDX, uapi.VIRTIO_BLK_F_FLUSH,
                    uapi.VIRTIO_BLK_F_MQ, uapi.VIRTIO_BLK_F_WRITE_ZEROES,
                    uapi.VIRTIO_BLK_F_DISCARD, uapi.VIRTIO_BLK_F_RO,
                    uapi.VIRTIO_BLK_F_SEG_MAX, uapi.VIRTIO_BLK_F_SIZE_MAX,
                    uapi.VIRTIO_BLK_F_BLK_SIZE):
            expected |= uapi.bit(bit)
        assert f == expected, hex(f ^ expected)
        assert not f & uapi.bit(uapi.VHOST_F_LOG_ALL)
        assert not f & uapi.bit(uapi.VIRTIO_F_ACCESS_PLATFORM)
        with pytest.raises(VhostError):
            b.dev.set_features(uapi.bit(uapi.VIRTIO_F_RING_PACKED))


@pytest.mark.parametrize("event_idx", [False, True])
def test_without_event_idx_or_indirect(ram: Backend, event_idx: bool) -> None:
    features = uapi.bit(uapi.VIRTIO_F_VERSION_1)
    if event_idx:
        features |= uapi.bit(uapi.VIRTIO_RING_F_EVENT_IDX)
    with start(ram, features=features) as b:
        assert b.q.vq.ring.event_idx == event_idx
        rnd = os.urandom(65536)
        done = b.q.run_many([rq.write(8 * i, rnd[4096 * (i % 16):][:4096]) for i in range(300)])
        assert all(c.ok for c in done)
        assert b.read(0, 4096) == rnd[:4096]


def test_4k_logical_blocks() -> None:
    with null_blk(blocksize=4096) as be, start(be) as b:
        cfg = b.dev.get_config()
        assert cfg.blk_size == 4096
        data = os.urandom(16384)
        b.write(8, data)
        assert b.read(8, 16384) == data
        for chain in (rq.read(1, 4096), rq.read(8, 512), rq.write(8, b"\0" * 2048)):
            c = b.run(chain)
            assert (c.status, c.used_len) == (IOERR, _used(chain)), chain.label
        # A 4096-byte read into a page-aligned buffer.  (A buffer only
        # 512-byte aligned is valid too, but memory-backed null_blk with
        # 4 KiB blocks marks data present per block and returns zeroes for
        # a segment that starts inside a block, with or without vhost-blk:
        # the same bio from an O_DIRECT read misreads the same way.)
        c = b.run(rq.read(8, 4096, rq.DescLayout(align=4096, phase=0)))
        assert c.ok and c.data == data[:4096]
        b.still_serves()


def test_null_blk_badblocks_fail_exactly_those_requests() -> None:
    with null_blk(badblocks=["+2048-2055"]) as be, start(be) as b:
        assert b.run(rq.write(0, b"\1" * 4096)).ok
        c = b.run(rq.write(2048, b"\1" * 4096))
        assert (c.status, c.used_len) == (IOERR, 1)
        c = b.run(rq.read(2040, 8192))
        assert c.status == IOERR
        assert b.run(rq.read(2056, 4096)).ok
        assert b.read(0, 4096) == b"\1" * 4096
