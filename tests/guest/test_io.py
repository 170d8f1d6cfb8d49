"""Data integrity: writes then reads back through /dev/vhost-blk, on every backend."""

from __future__ import annotations

import dataclasses
import os
import random

import pytest
from vblk_env import Blk

from vblk import request as rq
from vblk import uapi

SIZES = [512, 1024, 4096, 8192, 65536, 128 << 10, 1 << 20]


@pytest.mark.parametrize("size", SIZES, ids=[f"{s}B" for s in SIZES])
def test_write_read_round_trip(blk: Blk, size: int) -> None:
    data = os.urandom(size)
    sector = 2048 + (size // 512) % 7 * 8
    blk.write(sector, data)
    assert blk.read(sector, size) == data
    # The data really is on the block device, at the right place.
    assert blk.backend.direct_read(sector * 512, size) == data


def test_reads_what_the_device_holds(blk: Blk) -> None:
    data = os.urandom(64 << 10)
    blk.backend.direct_write(1 << 20, data)
    assert blk.read((1 << 20) // 512, len(data)) == data


LAYOUTS = {
    "one-buffer": rq.DescLayout(),
    "page-crossing": rq.DescLayout(align=4096, phase=4096 - 512),
    "512-aligned": rq.DescLayout(align=4096, phase=1536),
    "split-header": rq.DescLayout(header_cuts=(4, 8, 12)),
    "byte-header": rq.DescLayout(header_cuts=tuple(range(1, 16))),
    "status-merged": rq.DescLayout(status_merged=True),
    "indirect": rq.DescLayout(indirect=True),
    "sg-512": rq.DescLayout(data_segs=(512,) * 32, align=512, phase=0),
    "sg-mixed": rq.DescLayout(data_segs=(512, 1024, 4096, 1536, 7680, 1536), align=4096,
                              phase=3584),
    "sg-indirect-merged": rq.DescLayout(data_segs=(4096, 512, 11776), status_merged=True,
                                        indirect=True, header_cuts=(8,), align=4096, phase=512),
}


def _segs_for(layout: rq.DescLayout, size: int, max_segs: int = 64) -> rq.DescLayout:
    """Repeat the layout's segment pattern over ``size`` bytes, at most ``max_segs``
    segments (the last one takes the rest)."""
    if layout.data_segs is None:
        return layout
    out: list[int] = []
    left = size
    while left:
        seg = left if len(out) == max_segs - 1 else min(
            layout.data_segs[len(out) % len(layout.data_segs)], left)
        out.append(seg)
        left -= seg
    return dataclasses.replace(layout, data_segs=tuple(out))


@pytest.mark.parametrize("name", list(LAYOUTS))
@pytest.mark.parametrize("size", [512, 16384, 1 << 20], ids=["512B", "16K", "1M"])
def test_layouts(blk: Blk, name: str, size: int) -> None:
    layout = _segs_for(LAYOUTS[name], size)
    data = os.urandom(size)
    blk.write(4096, data, layout)
    assert blk.read(4096, size, layout) == data
    assert blk.read(4096, size) == data


@pytest.mark.parametrize("phase", [1, 8, 256, 4095])
def test_buffers_below_dma_alignment_are_bounced(blk: Blk, phase: int) -> None:
    """Any alignment (virtio 1.2, 2.6.4): data the backend cannot DMA to in
    place goes through a bounce buffer, on every backend."""
    data = os.urandom(8192)
    c = blk.run(rq.write(0, data, rq.DescLayout(align=4096, phase=phase)))
    assert (c.status, c.used_len) == (uapi.VIRTIO_BLK_S_OK, 1)
    assert blk.backend.direct_read(0, 8192) == data
    c = blk.run(rq.read(0, 8192, rq.DescLayout(align=4096, phase=phase)))
    # The used length counts the whole writable part, status included.
    assert (c.status, c.used_len, c.data) == (uapi.VIRTIO_BLK_S_OK, 8193, data)


def test_many_requests_in_flight(blk: Blk) -> None:
    rnd = random.Random(1)
    blocks = {i: rnd.randbytes(4096) for i in range(200)}
    done = blk.q.run_many([rq.write(i * 8, d) for i, d in blocks.items()])
    assert all(c.ok for c in done)
    order = list(blocks)
    rnd.shuffle(order)
    done = blk.q.run_many([rq.read(i * 8, 4096, rq.DescLayout(indirect=bool(i % 2)))
                           for i in order])
    assert [c.data for c in done] == [blocks[i] for i in order]


def test_last_sectors_of_the_device(blk: Blk) -> None:
    cap = blk.capacity
    assert cap == blk.backend.sectors
    data = os.urandom(8192)
    blk.write(cap - 16, data)
    assert blk.read(cap - 16, 8192) == data


def test_random_io_with_reference_model(blk: Blk) -> None:
    """Random sizes, offsets and layouts against a model of the first 4 MiB."""
    rnd = random.Random(42)
    span = 4 << 20
    model = bytearray(span)
    for mib in range(span >> 20):
        blk.write(mib * 2048, bytes(1 << 20))
    mismatches = 0
    for _ in range(150):
        nsec = rnd.choice([1, 2, 3, 8, 15, 64, 255, 2048])
        sector = rnd.randrange(0, span // 512 - nsec + 1)
        cuts = sorted(rnd.sample(range(1, nsec), min(nsec - 1, rnd.randrange(0, 6))))
        segs = tuple(b - a for a, b in zip([0, *cuts], [*cuts, nsec], strict=True))
        layout = rq.DescLayout(data_segs=tuple(512 * s for s in segs),
                               header_cuts=tuple(rnd.sample(range(1, 16), rnd.randrange(0, 3))),
                               status_merged=rnd.random() < 0.5, indirect=rnd.random() < 0.5,
                               align=4096, phase=512 * rnd.randrange(8))
        if rnd.random() < 0.5:
            data = rnd.randbytes(nsec * 512)
            blk.write(sector, data, layout)
            model[sector * 512:sector * 512 + len(data)] = data
        else:
            got = blk.read(sector, nsec * 512, layout)
            mismatches += got != model[sector * 512:(sector + nsec) * 512]
    assert mismatches == 0
    assert blk.read(0, 1 << 20) == model[:1 << 20]
