"""The VDUSE bridge's wire formats, against include/uapi/linux/vduse.h."""

from __future__ import annotations

import mmap

from vblk import vduse


def test_struct_sizes_match_the_uapi_header() -> None:
    # sizeof() of the kernel's structures (x86_64, 6.12's vduse.h).
    assert vduse.DEV_CONFIG.size == 336  # struct vduse_dev_config without config[]
    assert vduse.IOTLB_ENTRY.size == 32
    assert vduse.VQ_CONFIG.size == 32
    assert vduse.VQ_INFO.size == 48
    assert vduse.VQ_EVENTFD.size == 8
    assert vduse.REQUEST.size == vduse.RESPONSE.size == 152


def test_ioctl_numbers() -> None:
    # _IOW(0x81, 0x02, struct vduse_dev_config) and friends, as the header computes them.
    assert vduse.VDUSE_CREATE_DEV == 0x41508102
    assert vduse.VDUSE_IOTLB_GET_FD == 0xC0208110
    assert vduse.VDUSE_VQ_GET_INFO == 0xC0308115
    assert vduse.VDUSE_VQ_INJECT_IRQ == 0x40048117
    assert vduse.VDUSE_SET_API_VERSION == 0x40088101


def test_vq_info_unpacks_the_split_state() -> None:
    raw = vduse.VQ_INFO.pack(1, 256, 0x1000, 0x2000, 0x3000, 17, 1)
    index, num, desc, driver, device, avail, ready = vduse.VQ_INFO.unpack(raw)
    assert (index, num, desc, driver, device, avail, ready) == (1, 256, 0x1000, 0x2000,
                                                                0x3000, 17, 1)
    assert raw[32:34] == (17).to_bytes(2, "little") and raw[40] == 1


def test_region_translates_inside_it_only() -> None:
    m = mmap.mmap(-1, 8192)
    r = vduse.Region(0x10000, 8192, m, 0x7F0000000000)
    assert r.hva(0x10000) == 0x7F0000000000
    assert r.hva(0x11FFF) == 0x7F0000001FFF
    assert r.hva(0x12000) is None and r.hva(0xFFFF) is None
    m.close()
