"""/dev/vhost-blk: the ioctls, the virtqueue setup and the cleanup.

VhostBlk plays the frontend of tools/virtio/virtio_test.c: it owns the
device file, one GuestMemory region registered with SET_MEM_TABLE as an
identity map, and per virtqueue a SplitVring with kick, call and error
eventfds.  Used as a context manager it always closes the device before
the eventfds and the memory, so the kernel is done with them first.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
from dataclasses import dataclass
from typing import TypeVar

from . import uapi
from .memory import GuestMemory
from .vring import SplitVring

DEVICE_PATH = "/dev/vhost-blk"
# Offered by the driver but left out by default: RO follows the backend.
# What Linux's virtio_blk acks from a writable disk: everything but
# VIRTIO_BLK_F_RO.  The device serves only what was acked.
DEFAULT_FEATURES = (uapi.bit(uapi.VIRTIO_F_VERSION_1) | uapi.bit(uapi.VIRTIO_RING_F_INDIRECT_DESC)
                    | uapi.bit(uapi.VIRTIO_RING_F_EVENT_IDX)
                    | uapi.bit(uapi.VIRTIO_BLK_F_SIZE_MAX) | uapi.bit(uapi.VIRTIO_BLK_F_SEG_MAX)
                    | uapi.bit(uapi.VIRTIO_BLK_F_BLK_SIZE) | uapi.bit(uapi.VIRTIO_BLK_F_FLUSH)
                    | uapi.bit(uapi.VIRTIO_BLK_F_MQ) | uapi.bit(uapi.VIRTIO_BLK_F_DISCARD)
                    | uapi.bit(uapi.VIRTIO_BLK_F_WRITE_ZEROES))

S = TypeVar("S", bound=ctypes.Structure)


class VhostError(OSError):
    """An ioctl on the vhost device failed; errno and the ioctl's name are kept."""

    def __init__(self, err: int, what: str) -> None:
        super().__init__(err, f"{what}: {os.strerror(err)}")
        self.what = what


@dataclass
class Vq:
    """One virtqueue set up on the device."""

    index: int
    ring: SplitVring
    kick_fd: int
    call_fd: int
    err_fd: int

    def kick(self) -> None:
        os.eventfd_write(self.kick_fd, 1)

    def close(self) -> None:
        for fd in (self.kick_fd, self.call_fd, self.err_fd):
            if fd >= 0:
                os.close(fd)
        self.kick_fd = self.call_fd = self.err_fd = -1


def new_eventfd() -> int:
    """A non-blocking, close-on-exec eventfd, as kick, call and error eventfds are."""
    return os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)


class VhostBlk:
    """An open /dev/vhost-blk with its guest memory and virtqueues."""

    def __init__(self, path: str = DEVICE_PATH, mem: GuestMemory | None = None,
                 mem_size: int = 64 << 20) -> None:
        self.path = path
        self._own_mem = mem is None
        self.mem = mem if mem is not None else GuestMemory(mem_size)
        self.vqs: dict[int, Vq] = {}
        self.features = 0
        try:
            self.fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except BaseException:
            if self._own_mem:
                self.mem.close()
            raise

    # -- lifetime -------------------------------------------------------------------

    def close(self) -> None:
        """Close the device, then the eventfds, the rings and the memory."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        for vq in self.vqs.values():
            vq.close()
            vq.ring.release()
        self.vqs.clear()
        if self._own_mem:
            self.mem.close()

    def __enter__(self) -> VhostBlk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self.fd < 0

    # -- raw ioctls -------------------------------------------------------------------

    def _ioctl(self, request: int, arg: bytes | bytearray | int, what: str) -> bytes:
        if self.fd < 0:
            raise VhostError(errno.EBADF, what)
        try:
            if isinstance(arg, int):
                fcntl.ioctl(self.fd, request, arg)
                return b""
            buf = bytearray(arg)
            fcntl.ioctl(self.fd, request, buf, True)
            return bytes(buf)
        except OSError as exc:
            raise VhostError(exc.errno or errno.EIO, what) from None

    def _struct_ioctl(self, request: int, value: S, what: str) -> S:
        out = self._ioctl(request, bytes(value), what)
        return type(value).from_buffer_copy(out)

    def _u64_ioctl(self, request: int, value: int, what: str) -> int:
        out = self._ioctl(request, value.to_bytes(8, "little"), what)
        return int.from_bytes(out, "little")

    # -- generic vhost ------------------------------------------------------------------

    def set_owner(self) -> None:
        self._ioctl(uapi.VHOST_SET_OWNER, 0, "VHOST_SET_OWNER")

    def reset_owner(self) -> None:
        self._ioctl(uapi.VHOST_RESET_OWNER, 0, "VHOST_RESET_OWNER")

    def get_features(self) -> int:
        return self._u64_ioctl(uapi.VHOST_GET_FEATURES, 0, "VHOST_GET_FEATURES")

    def set_features(self, features: int) -> None:
        self._u64_ioctl(uapi.VHOST_SET_FEATURES, features, "VHOST_SET_FEATURES")
        self.features = features

    def set_mem_table(self, regions: list[tuple[int, int, int]] | None = None) -> None:
        """Register ``regions`` (gpa, size, uaddr); by default the identity map."""
        table = uapi.vhost_memory(regions if regions is not None else [self.mem.region])
        self._ioctl(uapi.VHOST_SET_MEM_TABLE, table, "VHOST_SET_MEM_TABLE")

    def set_vring_num(self, index: int, num: int) -> None:
        self._struct_ioctl(uapi.VHOST_SET_VRING_NUM, uapi.VhostVringState(index, num),
                           "VHOST_SET_VRING_NUM")

    def set_vring_base(self, index: int, base: int) -> None:
        self._struct_ioctl(uapi.VHOST_SET_VRING_BASE, uapi.VhostVringState(index, base),
                           "VHOST_SET_VRING_BASE")

    def get_vring_base(self, index: int) -> int:
        st = self._struct_ioctl(uapi.VHOST_GET_VRING_BASE, uapi.VhostVringState(index, 0),
                                "VHOST_GET_VRING_BASE")
        return int(st.num)

    def set_vring_addr(self, index: int, desc: int, avail: int, used: int,
                       flags: int = 0, log: int = 0) -> None:
        addr = uapi.VhostVringAddr(index=index, flags=flags, desc_user_addr=desc,
                                   used_user_addr=used, avail_user_addr=avail,
                                   log_guest_addr=log)
        self._struct_ioctl(uapi.VHOST_SET_VRING_ADDR, addr, "VHOST_SET_VRING_ADDR")

    def _vring_file(self, request: int, index: int, fd: int, what: str) -> None:
        self._struct_ioctl(request, uapi.VhostVringFile(index, fd), what)

    def set_vring_kick(self, index: int, fd: int) -> None:
        self._vring_file(uapi.VHOST_SET_VRING_KICK, index, fd, "VHOST_SET_VRING_KICK")

    def set_vring_call(self, index: int, fd: int) -> None:
        self._vring_file(uapi.VHOST_SET_VRING_CALL, index, fd, "VHOST_SET_VRING_CALL")

    def set_vring_err(self, index: int, fd: int) -> None:
        self._vring_file(uapi.VHOST_SET_VRING_ERR, index, fd, "VHOST_SET_VRING_ERR")

    # -- workers (6.5+) ---------------------------------------------------------------

    def new_worker(self) -> int:
        st = self._struct_ioctl(uapi.VHOST_NEW_WORKER, uapi.VhostWorkerState(0),
                                "VHOST_NEW_WORKER")
        return int(st.worker_id)

    def free_worker(self, worker_id: int) -> None:
        self._struct_ioctl(uapi.VHOST_FREE_WORKER, uapi.VhostWorkerState(worker_id),
                           "VHOST_FREE_WORKER")

    def attach_vring_worker(self, index: int, worker_id: int) -> None:
        self._struct_ioctl(uapi.VHOST_ATTACH_VRING_WORKER,
                           uapi.VhostVringWorker(index, worker_id), "VHOST_ATTACH_VRING_WORKER")

    def get_vring_worker(self, index: int) -> int:
        st = self._struct_ioctl(uapi.VHOST_GET_VRING_WORKER, uapi.VhostVringWorker(index, 0),
                                "VHOST_GET_VRING_WORKER")
        return int(st.worker_id)

    # -- vhost-blk ----------------------------------------------------------------------

    def set_backend(self, fd: int, index: int = 0) -> None:
        """Attach the block device open on ``fd``, or stop the device with -1."""
        self._vring_file(uapi.VHOST_BLK_SET_BACKEND, index, fd, "VHOST_BLK_SET_BACKEND")

    def set_serial(self, serial: bytes) -> None:
        if len(serial) > uapi.VIRTIO_BLK_ID_BYTES:
            raise ValueError(f"serial longer than {uapi.VIRTIO_BLK_ID_BYTES} bytes")
        self._ioctl(uapi.VHOST_BLK_SET_SERIAL, serial.ljust(uapi.VIRTIO_BLK_ID_BYTES, b"\0"),
                    "VHOST_BLK_SET_SERIAL")

    def get_config_range(self, off: int, length: int) -> bytes:
        """``length`` bytes at ``off`` of the backend's struct virtio_blk_config."""
        head = uapi.VHOST_VDPA_CONFIG.pack(off & 0xFFFFFFFF, length & 0xFFFFFFFF)
        out = self._ioctl(uapi.VHOST_BLK_GET_CONFIG, head + bytes(max(length, 0)),
                          "VHOST_BLK_GET_CONFIG")
        return out[uapi.VHOST_VDPA_CONFIG.size:]

    def get_config(self) -> uapi.VirtioBlkConfig:
        raw = self.get_config_range(0, ctypes.sizeof(uapi.VirtioBlkConfig))
        return uapi.VirtioBlkConfig.from_buffer_copy(raw)

    # -- bring-up -----------------------------------------------------------------------

    def setup_vq(self, index: int, num: int = 128, ring: SplitVring | None = None) -> Vq:
        """SET_VRING_NUM/BASE/ADDR/KICK/CALL/ERR for one virtqueue."""
        if index in self.vqs:
            raise ValueError(f"virtqueue {index} is already set up")
        if ring is None:
            event_idx = bool(self.features & uapi.bit(uapi.VIRTIO_RING_F_EVENT_IDX))
            ring = SplitVring(self.mem, num, event_idx=event_idx)
        vq = Vq(index, ring, new_eventfd(), new_eventfd(), new_eventfd())
        self.vqs[index] = vq
        self.set_vring_num(index, ring.num)
        self.set_vring_base(index, 0)
        self.set_vring_addr(index, ring.addrs.desc, ring.addrs.avail, ring.addrs.used)
        self.set_vring_kick(index, vq.kick_fd)
        self.set_vring_call(index, vq.call_fd)
        self.set_vring_err(index, vq.err_fd)
        return vq

    def setup(self, num_queues: int = 1, ring_size: int = 128,
              features: int | None = None) -> list[Vq]:
        """SET_OWNER, features, memory table and ``num_queues`` virtqueues."""
        self.set_owner()
        offered = self.get_features()
        wanted = DEFAULT_FEATURES if features is None else features
        self.set_features(offered & wanted if features is None else wanted)
        self.set_mem_table()
        return [self.setup_vq(i, ring_size) for i in range(num_queues)]

    def start(self, backend_fd: int, num_queues: int = 1, ring_size: int = 128,
              features: int | None = None, serial: bytes | None = None) -> list[Vq]:
        """setup(), then the serial and the backend: a device ready for requests."""
        vqs = self.setup(num_queues, ring_size, features)
        if serial is not None:
            self.set_serial(serial)
        self.set_backend(backend_fd)
        return vqs
