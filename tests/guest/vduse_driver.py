"""The kernel's own virtio_blk driving vhost-blk, through VDUSE.

vblk.vduse makes a VDUSE virtio-blk device whose virtqueues
vhost-blk serves; virtio_vdpa binds it and virtio_blk probes it, as it
would a disk of a VM.  Everything here goes through that /dev/vdX with
ordinary tools (dd, fio, mkfs.ext4, e2fsck, blkdiscard): the requests
are what Linux's driver sends, not what our own test driver builds.

Not collected by pytest's default pattern: the CI guest run lists it by
path (tests/integration/test_pipeline.py).  Needs CONFIG_VDPA_USER,
CONFIG_VIRTIO_VDPA and CONFIG_EXT4_FS (kernel-tree/configs/base.config) and
iproute2's vdpa tool; without /dev/vduse/control the tests fail, since CI
counts a skip as a failure.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from vblk_env import Backend, kmsg, null_blk

from vblk.vduse import CONTROL, Bridge, disk_of, vduse_disk

_seq = 0


def _name() -> str:
    global _seq
    _seq += 1
    return f"vblk-vduse-{os.getpid()}-{_seq}"


@contextlib.contextmanager
def disk(be: Backend, queues: int = 1, read_only: bool = False,
         serial: bytes | None = None) -> Iterator[tuple[str, Bridge]]:
    assert os.path.exists(CONTROL), f"no {CONTROL}: CONFIG_VDPA_USER=y is expected"
    with vduse_disk(_name(), be.fd, queues=queues, read_only=read_only,
                    serial=serial) as (path, bridge):
        yield path, bridge
        assert not bridge.errors, bridge.errors


def _sysfs(path: str, attr: str) -> str:
    return Path(f"/sys/block/{Path(path).name}/{attr}").read_text().strip()


def _run(*cmd: str) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{' '.join(cmd)}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    return done.stdout


def _direct(path: str, offset: int, data: bytes | None = None, length: int = 0) -> bytes:
    """O_DIRECT write of ``data`` or read of ``length`` bytes at ``offset``."""
    fd = os.open(path, (os.O_RDWR if data is not None else os.O_RDONLY) | os.O_DIRECT)
    try:
        size = len(data) if data is not None else length
        buf = mmap.mmap(-1, max(size, mmap.PAGESIZE))
        if data is not None:
            buf[:size] = data
            assert os.pwritev(fd, [memoryview(buf)[:size]], offset) == size
            return b""
        assert os.preadv(fd, [memoryview(buf)[:size]], offset) == size
        return bytes(buf[:size])
    finally:
        os.close(fd)


def test_virtio_blk_sees_the_device(ram: Backend) -> None:
    """Size, block size, serial and queues as vhost-blk and the bridge describe them."""
    with disk(ram, serial=b"vduse-serial-1", queues=2) as (path, bridge):
        assert int(_sysfs(path, "size")) == ram.size // 512
        assert _sysfs(path, "serial") == "vduse-serial-1"
        assert len(list(Path(f"/sys/block/{Path(path).name}/mq").iterdir())) == 2
        assert _sysfs(path, "ro") == "0"
        data = os.urandom(1 << 20)
        _direct(path, 4 << 20, data)
        assert _direct(path, 4 << 20, length=len(data)) == data
        assert ram.direct_read(4 << 20, len(data)) == data, "not on the backing device"
        assert bridge.irqs > 0
    kmsg(f"vduse: virtio_blk on vhost-blk, {bridge.irqs} interrupts relayed")


# Each interrupt goes through the bridge's Python thread: a few ms under
# TCG, so the small blocks get a smaller area.
FIO_SIZES = {"512": "512K", "4k": "2M", "64k": "4M", "1m": "4M"}


@pytest.mark.parametrize("bs", list(FIO_SIZES))
def test_fio_verify(ram: Backend, bs: str) -> None:
    """fio writes blocks at random with checksums, then reads and checks them."""
    with disk(ram) as (path, _):
        _run("fio", "--name=verify", f"--filename={path}", "--direct=1", "--ioengine=libaio",
             "--rw=randwrite", f"--bs={bs}", f"--size={FIO_SIZES[bs]}", "--iodepth=16",
             "--verify=crc32c", "--verify_fatal=1", "--do_verify=1", "--output=/dev/stdout")


@pytest.mark.parametrize("lbs", [512, 4096])
def test_direct_io_at_unaligned_buffer_offsets(lbs: int) -> None:
    """O_DIRECT from buffers at every logical-block offset inside a page: the
    guest driver's segments start where the application's buffer does."""
    with null_blk(blocksize=lbs) as be, disk(be) as (path, _):
        fd = os.open(path, os.O_RDWR | os.O_DIRECT)
        try:
            buf = mmap.mmap(-1, 4 * mmap.PAGESIZE)
            for off in range(0, mmap.PAGESIZE, lbs):
                data = os.urandom(2 * lbs)
                buf[off:off + len(data)] = data
                assert os.pwritev(fd, [memoryview(buf)[off:off + len(data)]], 64 * lbs) \
                    == len(data)
                buf[off:off + len(data)] = bytes(len(data))
                assert os.preadv(fd, [memoryview(buf)[off:off + len(data)]], 64 * lbs) \
                    == len(data)
                assert buf[off:off + len(data)] == data, f"buffer offset {off}"
        finally:
            os.close(fd)


def test_filesystem(ram: Backend) -> None:
    """mkfs.ext4, files, umount, e2fsck clean, the files again."""
    with disk(ram) as (path, _):
        _run("mkfs.ext4", "-q", "-F", path)
        mnt = Path(f"/tmp/vduse-mnt-{os.getpid()}")
        mnt.mkdir(exist_ok=True)
        _run("mount", "-t", "ext4", path, str(mnt))
        try:
            blobs = {f"f{i}": os.urandom(4096 * (i + 1)) for i in range(32)}
            for name, data in blobs.items():
                (mnt / name).write_bytes(data)
        finally:
            _run("umount", str(mnt))
        _run("e2fsck", "-fn", path)
        _run("mount", "-t", "ext4", "-o", "ro", path, str(mnt))
        try:
            for name, data in blobs.items():
                assert (mnt / name).read_bytes() == data, name
        finally:
            _run("umount", str(mnt))
            mnt.rmdir()


def test_discard_and_write_zeroes(ram: Backend) -> None:
    with disk(ram) as (path, _):
        assert int(_sysfs(path, "queue/discard_max_bytes")) > 0
        _direct(path, 0, b"\x5a" * (1 << 20))
        _run("blkdiscard", "-o", "0", "-l", str(1 << 20), path)
        _direct(path, 0, b"\x5a" * (1 << 20))
        _run("blkdiscard", "-z", "-o", "0", "-l", str(1 << 20), path)
        assert _direct(path, 0, length=1 << 20) == bytes(1 << 20)


def test_read_only(ram: Backend) -> None:
    data = os.urandom(65536)
    ram.direct_write(0, data)
    with disk(ram, read_only=True) as (path, _):
        assert _sysfs(path, "ro") == "1"
        assert _direct(path, 0, length=len(data)) == data
        with pytest.raises(OSError):
            _direct(path, 0, bytes(4096))
    assert ram.direct_read(0, len(data)) == data


def test_device_removed_under_load(ram: Backend) -> None:
    """vdpa dev del while fio runs on every queue: fio gets errors, nothing hangs,
    nothing leaks (the session's splat, pin and kmemleak checks)."""
    name = _name()
    bridge = Bridge(name, ram.fd, queues=2)
    bridge.create()
    try:
        subprocess.run(["vdpa", "dev", "add", "name", name, "mgmtdev", "vduse"], check=True)
        path = disk_of(name)
        fio = subprocess.Popen(["fio", "--name=load", f"--filename={path}", "--direct=1",
                                "--ioengine=libaio", "--rw=randrw", "--bs=4k",
                                "--iodepth=32", "--numjobs=2", "--time_based",
                                "--runtime=120", "--output=/dev/null"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(3)
        assert fio.poll() is None, "fio ended early"
        t0 = time.monotonic()
        subprocess.run(["vdpa", "dev", "del", name], check=True, timeout=120)
        took = time.monotonic() - t0
        try:
            fio.wait(timeout=60)
        except subprocess.TimeoutExpired:
            fio.send_signal(signal.SIGKILL)
            raise AssertionError("fio hung after its disk was removed") from None
    finally:
        bridge.destroy()
    kmsg(f"vduse: device removed under fio in {took:.1f} s")
    # The backend is released and serves its host again.
    ram.direct_write(0, b"\x77" * 4096)
    assert ram.direct_read(0, 4096) == b"\x77" * 4096
