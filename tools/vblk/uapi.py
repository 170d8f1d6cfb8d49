"""The vhost and virtio-blk userspace API: ioctl numbers, structures, constants.

Mirrors include/uapi/linux/vhost.h, vhost_types.h, virtio_blk.h,
virtio_ring.h and virtio_config.h of the vhost-blk series (x86_64,
little endian).  tests/unit/test_vblk_uapi.py checks every number and
layout here against the C headers when gcc and the headers are present.
"""

from __future__ import annotations

import ctypes
import struct

# --- ioctl number encoding (include/uapi/asm-generic/ioctl.h) -----------------

IOC_NRBITS = 8
IOC_TYPEBITS = 8
IOC_SIZEBITS = 14
IOC_DIRBITS = 2
IOC_NRSHIFT = 0
IOC_TYPESHIFT = IOC_NRSHIFT + IOC_NRBITS
IOC_SIZESHIFT = IOC_TYPESHIFT + IOC_TYPEBITS
IOC_DIRSHIFT = IOC_SIZESHIFT + IOC_SIZEBITS
IOC_NONE = 0
IOC_WRITE = 1
IOC_READ = 2


def ioc(direction: int, typ: int, nr: int, size: int) -> int:
    """_IOC(dir, type, nr, size)."""
    if not 0 <= size < (1 << IOC_SIZEBITS):
        raise ValueError(f"ioctl argument size {size} does not fit in {IOC_SIZEBITS} bits")
    if not 0 <= nr < (1 << IOC_NRBITS) or not 0 <= typ < (1 << IOC_TYPEBITS):
        raise ValueError(f"ioctl type {typ:#x} or number {nr:#x} out of range")
    return ((direction << IOC_DIRSHIFT) | (typ << IOC_TYPESHIFT) | (nr << IOC_NRSHIFT)
            | (size << IOC_SIZESHIFT))


def io(typ: int, nr: int) -> int:
    """_IO(type, nr)."""
    return ioc(IOC_NONE, typ, nr, 0)


def ior(typ: int, nr: int, size: int) -> int:
    """_IOR(type, nr, size): the kernel writes ``size`` bytes."""
    return ioc(IOC_READ, typ, nr, size)


def iow(typ: int, nr: int, size: int) -> int:
    """_IOW(type, nr, size): the kernel reads ``size`` bytes."""
    return ioc(IOC_WRITE, typ, nr, size)


def iowr(typ: int, nr: int, size: int) -> int:
    """_IOWR(type, nr, size)."""
    return ioc(IOC_READ | IOC_WRITE, typ, nr, size)


# --- structures (vhost_types.h, virtio_blk.h, virtio_ring.h) -------------------

class VhostVringState(ctypes.Structure):
    _fields_ = [("index", ctypes.c_uint), ("num", ctypes.c_uint)]


class VhostVringFile(ctypes.Structure):
    _fields_ = [("index", ctypes.c_uint), ("fd", ctypes.c_int)]


class VhostVringAddr(ctypes.Structure):
    _fields_ = [("index", ctypes.c_uint), ("flags", ctypes.c_uint),
                ("desc_user_addr", ctypes.c_uint64), ("used_user_addr", ctypes.c_uint64),
                ("avail_user_addr", ctypes.c_uint64), ("log_guest_addr", ctypes.c_uint64)]


class VhostWorkerState(ctypes.Structure):
    _fields_ = [("worker_id", ctypes.c_uint)]


class VhostVringWorker(ctypes.Structure):
    _fields_ = [("index", ctypes.c_uint), ("worker_id", ctypes.c_uint)]


class VhostMemoryRegion(ctypes.Structure):
    _fields_ = [("guest_phys_addr", ctypes.c_uint64), ("memory_size", ctypes.c_uint64),
                ("userspace_addr", ctypes.c_uint64), ("flags_padding", ctypes.c_uint64)]


class VhostMemory(ctypes.Structure):
    """The fixed head of struct vhost_memory; the regions follow it."""

    _fields_ = [("nregions", ctypes.c_uint32), ("padding", ctypes.c_uint32)]


def vhost_memory(regions: list[tuple[int, int, int]]) -> bytearray:
    """A struct vhost_memory with (guest_phys_addr, size, userspace_addr) regions."""
    head = VhostMemory(nregions=len(regions), padding=0)
    buf = bytearray(bytes(head))
    for gpa, size, uaddr in regions:
        buf += bytes(VhostMemoryRegion(guest_phys_addr=gpa, memory_size=size,
                                       userspace_addr=uaddr, flags_padding=0))
    return buf


class VirtioBlkGeometry(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("cylinders", ctypes.c_uint16), ("heads", ctypes.c_uint8),
                ("sectors", ctypes.c_uint8)]


class VirtioBlkZoned(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("zone_sectors", ctypes.c_uint32), ("max_open_zones", ctypes.c_uint32),
                ("max_active_zones", ctypes.c_uint32), ("max_append_sectors", ctypes.c_uint32),
                ("write_granularity", ctypes.c_uint32), ("model", ctypes.c_uint8),
                ("unused2", ctypes.c_uint8 * 3)]


class VirtioBlkConfig(ctypes.Structure):
    """struct virtio_blk_config (packed, little endian on x86_64)."""

    _pack_ = 1
    _fields_ = [
        ("capacity", ctypes.c_uint64),
        ("size_max", ctypes.c_uint32),
        ("seg_max", ctypes.c_uint32),
        ("geometry", VirtioBlkGeometry),
        ("blk_size", ctypes.c_uint32),
        ("physical_block_exp", ctypes.c_uint8),
        ("alignment_offset", ctypes.c_uint8),
        ("min_io_size", ctypes.c_uint16),
        ("opt_io_size", ctypes.c_uint32),
        ("wce", ctypes.c_uint8),
        ("unused", ctypes.c_uint8),
        ("num_queues", ctypes.c_uint16),
        ("max_discard_sectors", ctypes.c_uint32),
        ("max_discard_seg", ctypes.c_uint32),
        ("discard_sector_alignment", ctypes.c_uint32),
        ("max_write_zeroes_sectors", ctypes.c_uint32),
        ("max_write_zeroes_seg", ctypes.c_uint32),
        ("write_zeroes_may_unmap", ctypes.c_uint8),
        ("unused1", ctypes.c_uint8 * 3),
        ("max_secure_erase_sectors", ctypes.c_uint32),
        ("max_secure_erase_seg", ctypes.c_uint32),
        ("secure_erase_sector_alignment", ctypes.c_uint32),
        ("zoned", VirtioBlkZoned),
    ]


class VirtioBlkOuthdr(ctypes.Structure):
    _fields_ = [("type", ctypes.c_uint32), ("ioprio", ctypes.c_uint32),
                ("sector", ctypes.c_uint64)]


class VirtioBlkDiscardWriteZeroes(ctypes.Structure):
    _fields_ = [("sector", ctypes.c_uint64), ("num_sectors", ctypes.c_uint32),
                ("flags", ctypes.c_uint32)]


class VringDesc(ctypes.Structure):
    _fields_ = [("addr", ctypes.c_uint64), ("len", ctypes.c_uint32),
                ("flags", ctypes.c_uint16), ("next", ctypes.c_uint16)]


class VringUsedElem(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint32), ("len", ctypes.c_uint32)]


# Little-endian wire formats of the structures the ring carries.
OUTHDR = struct.Struct("<IIQ")
DWZ_SEG = struct.Struct("<QII")
DESC = struct.Struct("<QIHH")
USED_ELEM = struct.Struct("<II")


def outhdr(req_type: int, sector: int = 0, ioprio: int = 0) -> bytes:
    """A struct virtio_blk_outhdr in virtio 1.x (little-endian) byte order."""
    return OUTHDR.pack(req_type & 0xFFFFFFFF, ioprio & 0xFFFFFFFF, sector & (2**64 - 1))


def dwz_seg(sector: int, num_sectors: int, flags: int = 0) -> bytes:
    """A struct virtio_blk_discard_write_zeroes segment."""
    return DWZ_SEG.pack(sector & (2**64 - 1), num_sectors & 0xFFFFFFFF, flags & 0xFFFFFFFF)


# --- ioctl numbers (vhost.h) ---------------------------------------------------

VHOST_VIRTIO = 0xAF
_U64 = 8
_U8 = 1

VHOST_GET_FEATURES = ior(VHOST_VIRTIO, 0x00, _U64)
VHOST_SET_FEATURES = iow(VHOST_VIRTIO, 0x00, _U64)
VHOST_SET_OWNER = io(VHOST_VIRTIO, 0x01)
VHOST_RESET_OWNER = io(VHOST_VIRTIO, 0x02)
VHOST_SET_MEM_TABLE = iow(VHOST_VIRTIO, 0x03, ctypes.sizeof(VhostMemory))
VHOST_SET_LOG_BASE = iow(VHOST_VIRTIO, 0x04, _U64)
VHOST_SET_LOG_FD = iow(VHOST_VIRTIO, 0x07, ctypes.sizeof(ctypes.c_int))
VHOST_NEW_WORKER = ior(VHOST_VIRTIO, 0x08, ctypes.sizeof(VhostWorkerState))
VHOST_FREE_WORKER = iow(VHOST_VIRTIO, 0x09, ctypes.sizeof(VhostWorkerState))
VHOST_SET_VRING_NUM = iow(VHOST_VIRTIO, 0x10, ctypes.sizeof(VhostVringState))
VHOST_SET_VRING_ADDR = iow(VHOST_VIRTIO, 0x11, ctypes.sizeof(VhostVringAddr))
VHOST_SET_VRING_BASE = iow(VHOST_VIRTIO, 0x12, ctypes.sizeof(VhostVringState))
VHOST_GET_VRING_BASE = iowr(VHOST_VIRTIO, 0x12, ctypes.sizeof(VhostVringState))
VHOST_SET_VRING_ENDIAN = iow(VHOST_VIRTIO, 0x13, ctypes.sizeof(VhostVringState))
VHOST_GET_VRING_ENDIAN = iow(VHOST_VIRTIO, 0x14, ctypes.sizeof(VhostVringState))
VHOST_ATTACH_VRING_WORKER = iow(VHOST_VIRTIO, 0x15, ctypes.sizeof(VhostVringWorker))
VHOST_GET_VRING_WORKER = iowr(VHOST_VIRTIO, 0x16, ctypes.sizeof(VhostVringWorker))
VHOST_SET_VRING_KICK = iow(VHOST_VIRTIO, 0x20, ctypes.sizeof(VhostVringFile))
VHOST_SET_VRING_CALL = iow(VHOST_VIRTIO, 0x21, ctypes.sizeof(VhostVringFile))
VHOST_SET_VRING_ERR = iow(VHOST_VIRTIO, 0x22, ctypes.sizeof(VhostVringFile))
VHOST_SET_VRING_BUSYLOOP_TIMEOUT = iow(VHOST_VIRTIO, 0x23, ctypes.sizeof(VhostVringState))
VHOST_GET_VRING_BUSYLOOP_TIMEOUT = iow(VHOST_VIRTIO, 0x24, ctypes.sizeof(VhostVringState))
VHOST_SET_BACKEND_FEATURES = iow(VHOST_VIRTIO, 0x25, _U64)
VHOST_GET_BACKEND_FEATURES = ior(VHOST_VIRTIO, 0x26, _U64)

VIRTIO_BLK_ID_BYTES = 20
VHOST_BLK_SET_BACKEND = iow(VHOST_VIRTIO, 0xFF, ctypes.sizeof(VhostVringFile))
VHOST_BLK_SET_SERIAL = iow(VHOST_VIRTIO, 0xFE, _U8 * VIRTIO_BLK_ID_BYTES)
# struct vhost_vdpa_config { __u32 off; __u32 len; __u8 buf[]; }: 8 bytes, so the
# number does not depend on sizeof(struct virtio_blk_config).
VHOST_VDPA_CONFIG = struct.Struct("<II")
VHOST_BLK_GET_CONFIG = iowr(VHOST_VIRTIO, 0xFD, VHOST_VDPA_CONFIG.size)

VHOST_FILE_UNBIND = -1
VHOST_VRING_F_LOG = 0
VHOST_PAGE_SIZE = 0x1000

# The ioctls this package uses, by C name (for the cross-check with the headers).
IOCTLS: dict[str, int] = {name: value for name, value in globals().items()
                          if name.startswith("VHOST_") and name.isupper()
                          and isinstance(value, int)
                          and name not in ("VHOST_VIRTIO", "VHOST_FILE_UNBIND",
                                           "VHOST_VRING_F_LOG", "VHOST_PAGE_SIZE")}

# --- feature bits (virtio_config.h, virtio_ring.h, virtio_blk.h, vhost_types.h) -

VIRTIO_F_NOTIFY_ON_EMPTY = 24
VIRTIO_F_ANY_LAYOUT = 27
VIRTIO_RING_F_INDIRECT_DESC = 28
VIRTIO_RING_F_EVENT_IDX = 29
VHOST_F_LOG_ALL = 26
VIRTIO_F_VERSION_1 = 32
VIRTIO_F_ACCESS_PLATFORM = 33
VIRTIO_F_RING_PACKED = 34
VIRTIO_F_IN_ORDER = 35

VIRTIO_BLK_F_BARRIER = 0
VIRTIO_BLK_F_SIZE_MAX = 1
VIRTIO_BLK_F_SEG_MAX = 2
VIRTIO_BLK_F_GEOMETRY = 4
VIRTIO_BLK_F_RO = 5
VIRTIO_BLK_F_BLK_SIZE = 6
VIRTIO_BLK_F_SCSI = 7
VIRTIO_BLK_F_FLUSH = 9
VIRTIO_BLK_F_TOPOLOGY = 10
VIRTIO_BLK_F_CONFIG_WCE = 11
VIRTIO_BLK_F_MQ = 12
VIRTIO_BLK_F_DISCARD = 13
VIRTIO_BLK_F_WRITE_ZEROES = 14
VIRTIO_BLK_F_SECURE_ERASE = 16
VIRTIO_BLK_F_ZONED = 17

# --- request types and status values (virtio_blk.h) ------------------------------

VIRTIO_BLK_T_IN = 0
VIRTIO_BLK_T_OUT = 1
VIRTIO_BLK_T_SCSI_CMD = 2
VIRTIO_BLK_T_FLUSH = 4
VIRTIO_BLK_T_GET_ID = 8
VIRTIO_BLK_T_GET_LIFETIME = 10
VIRTIO_BLK_T_DISCARD = 11
VIRTIO_BLK_T_WRITE_ZEROES = 13
VIRTIO_BLK_T_SECURE_ERASE = 14
VIRTIO_BLK_T_ZONE_APPEND = 15
VIRTIO_BLK_T_ZONE_REPORT = 16
VIRTIO_BLK_T_BARRIER = 0x80000000

VIRTIO_BLK_S_OK = 0
VIRTIO_BLK_S_IOERR = 1
VIRTIO_BLK_S_UNSUPP = 2

VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP = 0x1

# --- split ring (virtio_ring.h) ------------------------------------------------------

VRING_DESC_F_NEXT = 1
VRING_DESC_F_WRITE = 2
VRING_DESC_F_INDIRECT = 4
VRING_USED_F_NO_NOTIFY = 1
VRING_AVAIL_F_NO_INTERRUPT = 1
VRING_AVAIL_ALIGN_SIZE = 2
VRING_USED_ALIGN_SIZE = 4
VRING_DESC_ALIGN_SIZE = 16

SECTOR_SIZE = 512


def bit(n: int) -> int:
    """A feature mask with bit ``n`` set."""
    return 1 << n
