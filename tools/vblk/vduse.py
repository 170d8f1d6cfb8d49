"""A VDUSE virtio-blk device whose virtqueues vhost-blk serves.

The client is the kernel's own virtio_blk, unmodified: VDUSE (a vDPA
device in userspace) puts a virtio-blk device on the vDPA bus, where
virtio_vdpa binds it and virtio_blk probes it as it would a PCI disk.
This bridge is VDUSE's userspace half, and hands everything the guest
side needs to /dev/vhost-blk, as a VMM would:

- features and configuration space come from vhost-blk (VHOST_GET_FEATURES,
  VHOST_BLK_GET_CONFIG), plus VIRTIO_F_ACCESS_PLATFORM, which VDUSE
  requires (the driver maps its buffers through VDUSE's IOVA domain);
- memory: every IOVA range of the device (the bounce region and the
  coherent allocations that hold the rings) is mapped with
  VDUSE_IOTLB_GET_FD and becomes one region of vhost's memory table,
  with the IOVA as the guest-physical address; VDUSE_UPDATE_IOTLB
  rebuilds the table;
- kicks: one eventfd a queue, signalled by VDUSE (VDUSE_VQ_SETUP_KICKFD)
  and watched by vhost-blk (VHOST_SET_VRING_KICK);
- interrupts: vhost-blk signals a call eventfd, a thread turns that into
  VDUSE_VQ_INJECT_IRQ;
- DRIVER_OK starts vhost-blk (features, memory table, vrings, backend),
  a reset stops it (backend -1, then the ring bases).

Only the standard library and vblk: this runs in the test VM.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import mmap
import os
import select
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from . import uapi
from .device import VhostBlk, new_eventfd
from .memory import GuestMemory

CONTROL = "/dev/vduse/control"
VDUSE_BASE = 0x81
VIRTIO_ID_BLOCK = 2
VIRTIO_F_ACCESS_PLATFORM = 33
VIRTIO_CONFIG_S_DRIVER_OK = 4

DEV_CONFIG = struct.Struct("<256sIIQII52xI")  # struct vduse_dev_config, config[] after it
IOTLB_ENTRY = struct.Struct("<QQQB7x")  # struct vduse_iotlb_entry
VQ_CONFIG = struct.Struct("<IH26x")  # struct vduse_vq_config
VQ_INFO = struct.Struct("<IIQQQH6xB7x")  # struct vduse_vq_info, split state
VQ_EVENTFD = struct.Struct("<Ii")  # struct vduse_vq_eventfd
REQUEST = struct.Struct("<II16x128s")  # struct vduse_dev_request
RESPONSE = struct.Struct("<II16x128s")  # struct vduse_dev_response
U64 = 8

VDUSE_SET_API_VERSION = uapi.iow(VDUSE_BASE, 0x01, U64)
VDUSE_CREATE_DEV = uapi.iow(VDUSE_BASE, 0x02, DEV_CONFIG.size)
VDUSE_DESTROY_DEV = uapi.iow(VDUSE_BASE, 0x03, 256)
VDUSE_IOTLB_GET_FD = uapi.iowr(VDUSE_BASE, 0x10, IOTLB_ENTRY.size)
VDUSE_DEV_GET_FEATURES = uapi.ior(VDUSE_BASE, 0x11, U64)
VDUSE_VQ_SETUP = uapi.iow(VDUSE_BASE, 0x14, VQ_CONFIG.size)
VDUSE_VQ_GET_INFO = uapi.iowr(VDUSE_BASE, 0x15, VQ_INFO.size)
VDUSE_VQ_SETUP_KICKFD = uapi.iow(VDUSE_BASE, 0x16, VQ_EVENTFD.size)
VDUSE_VQ_INJECT_IRQ = uapi.iow(VDUSE_BASE, 0x17, 4)

VDUSE_GET_VQ_STATE, VDUSE_SET_STATUS, VDUSE_UPDATE_IOTLB = 0, 1, 2
RESULT_OK, RESULT_FAILED = 0, 1

# What the bridge exposes of what vhost-blk offers.
WANTED = (uapi.bit(uapi.VIRTIO_F_VERSION_1) | uapi.bit(uapi.VIRTIO_RING_F_INDIRECT_DESC)
          | uapi.bit(uapi.VIRTIO_RING_F_EVENT_IDX) | uapi.bit(uapi.VIRTIO_BLK_F_SIZE_MAX)
          | uapi.bit(uapi.VIRTIO_BLK_F_SEG_MAX) | uapi.bit(uapi.VIRTIO_BLK_F_BLK_SIZE)
          | uapi.bit(uapi.VIRTIO_BLK_F_FLUSH) | uapi.bit(uapi.VIRTIO_BLK_F_WRITE_ZEROES))


class VduseError(RuntimeError):
    """The VDUSE device could not be created, started or removed."""


@dataclass
class Region:
    """One IOVA range of the device, mapped into this process."""

    iova: int
    size: int
    map: mmap.mmap
    addr: int

    def hva(self, iova: int) -> int | None:
        return self.addr + iova - self.iova if self.iova <= iova < self.iova + self.size else None


@dataclass
class Queue:
    index: int
    kick: int
    call: int
    err: int
    base: int = 0


@dataclass
class Bridge:
    """A running VDUSE block device served by vhost-blk (see module docstring)."""

    name: str
    backend_fd: int
    queues: int = 1
    read_only: bool = False
    discard: bool = True
    serial: bytes | None = None
    ring_max: int = 256
    vhost: VhostBlk = field(init=False)
    control: int = field(default=-1, init=False)
    dev: int = field(default=-1, init=False)
    regions: list[Region] = field(default_factory=list, init=False)
    vqs: list[Queue] = field(default_factory=list, init=False)
    started: bool = field(default=False, init=False)
    errors: list[str] = field(default_factory=list, init=False)
    irqs: int = field(default=0, init=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _threads: list[threading.Thread] = field(default_factory=list, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    # -- creation -------------------------------------------------------------------

    def create(self) -> None:
        """The vhost-blk device, then the VDUSE device it describes."""
        self.vhost = VhostBlk(mem=GuestMemory(mmap.PAGESIZE))
        self.vhost.set_owner()
        offered = self.vhost.get_features()
        self.vhost.set_backend(self.backend_fd)  # before the rings: the config needs it
        if self.serial is not None:
            self.vhost.set_serial(self.serial)
        cfg = self.vhost.get_config()
        cfg.num_queues = self.queues
        features = offered & WANTED
        if self.queues > 1:
            features |= uapi.bit(uapi.VIRTIO_BLK_F_MQ) & offered
        if self.discard and cfg.max_discard_sectors:
            features |= uapi.bit(uapi.VIRTIO_BLK_F_DISCARD) & offered
        if self.read_only:
            features |= uapi.bit(uapi.VIRTIO_BLK_F_RO) & offered
        config = bytes(cfg)
        self.control = os.open(CONTROL, os.O_RDWR | os.O_CLOEXEC)
        fcntl.ioctl(self.control, VDUSE_SET_API_VERSION, (0).to_bytes(8, "little"))
        head = DEV_CONFIG.pack(self.name.encode(), 0, VIRTIO_ID_BLOCK,
                               features | uapi.bit(VIRTIO_F_ACCESS_PLATFORM), self.queues,
                               mmap.PAGESIZE, len(config))
        try:
            fcntl.ioctl(self.control, VDUSE_CREATE_DEV, bytearray(head + config), True)
        except OSError as exc:
            raise VduseError(f"VDUSE_CREATE_DEV {self.name}: {exc.strerror}") from None
        path = Path("/dev/vduse") / self.name
        for _ in range(100):
            if path.exists():
                break
            time.sleep(0.02)
        self.dev = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        for i in range(self.queues):
            fcntl.ioctl(self.dev, VDUSE_VQ_SETUP, VQ_CONFIG.pack(i, self.ring_max))
        self._spawn(self._messages)
        self._spawn(self._relay)

    def _spawn(self, target: Callable[[], None]) -> None:
        t = threading.Thread(target=target, daemon=True)
        t.start()
        self._threads.append(t)

    # -- control messages ---------------------------------------------------------

    def _messages(self) -> None:
        poller = select.poll()
        poller.register(self.dev, select.POLLIN)
        while not self._stop.is_set():
            if not poller.poll(100):
                continue
            try:
                raw = os.read(self.dev, REQUEST.size)
            except OSError as exc:
                self.errors.append(f"read {self.name}: {exc.strerror}")
                return
            kind, req_id, body = REQUEST.unpack(raw)
            result, payload = RESULT_OK, bytes(128)
            try:
                with self._lock:
                    if kind == VDUSE_SET_STATUS:
                        self._set_status(body[0])
                    elif kind == VDUSE_UPDATE_IOTLB:
                        if self.started:
                            self._map_memory()
                    elif kind == VDUSE_GET_VQ_STATE:
                        index = struct.unpack_from("<I", body)[0]
                        payload = struct.pack("<IH", index, self._vq_base(index)).ljust(128, b"\0")
            except OSError as exc:
                self.errors.append(f"message {kind}: {exc}")
                result = RESULT_FAILED
            os.write(self.dev, RESPONSE.pack(req_id, result, payload))

    def _vq_base(self, index: int) -> int:
        for q in self.vqs:
            if q.index == index:
                return self.vhost.get_vring_base(index) if self.started else q.base
        return 0

    def _set_status(self, status: int) -> None:
        if status & VIRTIO_CONFIG_S_DRIVER_OK and not self.started:
            self._start()
        elif not status and self.started:
            self._halt()

    # -- memory ---------------------------------------------------------------------

    def _map_memory(self) -> None:
        """Every IOVA range of the device, mapped, as vhost's memory table.

        VDUSE_IOTLB_GET_FD lists what the IOTLB holds: the coherent
        allocations (the rings) and, once the driver has mapped a first
        buffer, the bounce region [0, bounce_size).  The bounce region is
        mapped from the start, from the same file at offset 0: its pages
        exist once the driver maps a buffer, which it does before it puts
        the buffer on a ring.
        """
        regions: list[Region] = []
        domain = -1
        iova = 0
        try:
            while iova < 2**64:
                entry = bytearray(IOTLB_ENTRY.pack(0, iova, 2**64 - 1, 0))
                try:
                    fd = fcntl.ioctl(self.dev, VDUSE_IOTLB_GET_FD, entry, True)
                except OSError:
                    break  # nothing mapped at or after iova
                offset, start, last, _perm = IOTLB_ENTRY.unpack(entry)
                if domain < 0:
                    domain = os.dup(fd)
                try:
                    regions.append(_map(fd, start, last - start + 1, offset))
                finally:
                    os.close(fd)
                iova = last + 1
            bounce = int(Path(f"/sys/class/vduse/{self.name}/bounce_size").read_text())
            if domain >= 0 and not any(r.iova == 0 for r in regions):
                regions.insert(0, _map(domain, 0, bounce, 0))
        finally:
            if domain >= 0:
                os.close(domain)
        self.vhost.set_mem_table([(r.iova, r.size, r.addr) for r in regions])
        old, self.regions = self.regions, regions
        for r in old:
            r.map.close()

    def hva(self, iova: int) -> int:
        for r in self.regions:
            addr = r.hva(iova)
            if addr is not None:
                return addr
        raise VduseError(f"IOVA {iova:#x} is in no mapped range")

    # -- start and stop -------------------------------------------------------------

    def _start(self) -> None:
        driver = int.from_bytes(fcntl.ioctl(self.dev, VDUSE_DEV_GET_FEATURES, bytes(8)),
                                "little")
        self.vhost.set_features(driver & ~uapi.bit(VIRTIO_F_ACCESS_PLATFORM))
        self._map_memory()
        self.vqs = []
        for i in range(self.queues):
            info = bytearray(VQ_INFO.pack(i, 0, 0, 0, 0, 0, 0))
            fcntl.ioctl(self.dev, VDUSE_VQ_GET_INFO, info, True)
            _, num, desc, driver_area, device_area, avail, ready = VQ_INFO.unpack(info)
            if not ready:
                continue
            q = Queue(i, new_eventfd(), new_eventfd(), new_eventfd(), base=avail)
            self.vqs.append(q)
            self.vhost.set_vring_num(i, num)
            self.vhost.set_vring_base(i, avail)
            self.vhost.set_vring_addr(i, self.hva(desc), self.hva(driver_area),
                                      self.hva(device_area))
            fcntl.ioctl(self.dev, VDUSE_VQ_SETUP_KICKFD, VQ_EVENTFD.pack(i, q.kick))
            self.vhost.set_vring_kick(i, q.kick)
            self.vhost.set_vring_call(i, q.call)
            self.vhost.set_vring_err(i, q.err)
        self.vhost.set_backend(self.backend_fd)
        self.started = True

    def _halt(self) -> None:
        self.vhost.set_backend(-1)
        for q in self.vqs:
            q.base = self.vhost.get_vring_base(q.index)
            fcntl.ioctl(self.dev, VDUSE_VQ_SETUP_KICKFD, VQ_EVENTFD.pack(q.index, -1))
            self.vhost.set_vring_addr(q.index, 0, 0, 0)
        self.started = False
        for q in self.vqs:
            for fd in (q.kick, q.call, q.err):
                os.close(fd)
        self.vqs = []

    # -- interrupts -----------------------------------------------------------------

    def _relay(self) -> None:
        """vhost-blk's call eventfds to VDUSE_VQ_INJECT_IRQ; error eventfds noted."""
        while not self._stop.is_set():
            with self._lock:
                fds = {q.call: (q.index, False) for q in self.vqs}
                fds.update({q.err: (q.index, True) for q in self.vqs})
            if not fds:
                time.sleep(0.01)
                continue
            try:
                ready, _, _ = select.select(list(fds), [], [], 0.05)
            except (OSError, ValueError):
                continue  # a stop closed them
            for fd in ready:
                index, is_err = fds[fd]
                try:
                    os.eventfd_read(fd)
                except OSError:
                    continue  # consumed or closed by a stop
                if is_err:
                    self.errors.append(f"vhost-blk signalled an error on queue {index}")
                    continue
                try:
                    fcntl.ioctl(self.dev, VDUSE_VQ_INJECT_IRQ, struct.pack("<I", index))
                except OSError as exc:
                    self.errors.append(f"VDUSE_VQ_INJECT_IRQ {index}: {exc.strerror}")
                    continue
                self.irqs += 1

    # -- teardown -------------------------------------------------------------------

    def destroy(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)
        with contextlib.suppress(OSError):
            if self.started:
                self._halt()
        if self.dev >= 0:
            os.close(self.dev)
            self.dev = -1
        if self.control >= 0:
            with contextlib.suppress(OSError):
                fcntl.ioctl(self.control, VDUSE_DESTROY_DEV, self.name.encode().ljust(256, b"\0"))
            os.close(self.control)
            self.control = -1
        self.vhost.close()
        for r in self.regions:
            r.map.close()
        self.regions = []


def _map(fd: int, iova: int, size: int, offset: int) -> Region:
    m = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=offset)
    return Region(iova, size, m, ctypes_address(m))


def ctypes_address(m: mmap.mmap) -> int:
    """The address of a mapping (the ctypes view is dropped at once)."""
    return ctypes.addressof(ctypes.c_char.from_buffer(m))


def _vdpa(*args: str) -> None:
    done = subprocess.run(["vdpa", *args], capture_output=True, text=True, check=False)
    if done.returncode:
        raise VduseError(f"vdpa {' '.join(args)}: {done.stderr.strip() or done.returncode}")


def disk_of(name: str, timeout: float = 30.0) -> str:
    """/dev/vdX that virtio_blk made of the vDPA device ``name``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for block in Path(f"/sys/bus/vdpa/devices/{name}").glob("virtio*/block/vd*"):
            if Path("/dev", block.name).exists():
                return f"/dev/{block.name}"
        time.sleep(0.1)
    raise VduseError(f"virtio_blk made no disk of vDPA device {name} in {timeout:.0f} s")


@contextlib.contextmanager
def vduse_disk(name: str, backend_fd: int, queues: int = 1, read_only: bool = False,
               serial: bytes | None = None, discard: bool = True) -> Iterator[tuple[str, Bridge]]:
    """A /dev/vdX of the kernel's virtio_blk, served by vhost-blk through VDUSE."""
    bridge = Bridge(name, backend_fd, queues=queues, read_only=read_only, serial=serial,
                    discard=discard)
    bridge.create()
    added = False
    try:
        _vdpa("dev", "add", "name", name, "mgmtdev", "vduse")
        added = True
        yield disk_of(name), bridge
    finally:
        if added:
            with contextlib.suppress(VduseError):
                _vdpa("dev", "del", name)
        bridge.destroy()
