"""L2 guests: an unmodified Linux kernel whose own virtio_blk uses vhost-blk-pci.

This VM (L1, the series' debug kernel) runs the project's QEMU under KVM:
QEMU's TCG emulates AMD-V for L1 (virtme-ng's ``-cpu max`` has svm and
npt) and L1's kvm_amd runs the L2 guest on it.  The L2 guest is Debian
12's kernel with a busybox initramfs (``kseries l2 build``,
l2-guest/manifest.toml); its init, l2-guest/init, runs real tools on the
disk (mkfs.ext4, e2fsck, fio --verify, blkdiscard) and prints one line a
check.  Here we say what to expect on its command line, read its
console, and check the backing device afterwards: the 1 MiB pattern
the guest wrote must be on it.

Each backend boots one guest with two disks: the backend under test
(two queues, the guest has two vCPUs) and a read-only brd disk whose
content this side wrote.  The guest reboots once (a device reset) and
reads its pattern again.  Two more guests keep fio running on every
queue until QEMU is stopped: by SIGTERM (QEMU stops the device with
requests in flight) and by SIGKILL (the kernel releases it).  Splats,
pinned pages and kmemleak are checked for the whole session
(conftest.py, leaks.py).

Without /dev/kvm, the QEMU build or the L2 image the tests skip and say
why; CI counts a skip as a failure.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from vblk_env import REPORT_LINES, Backend, brd, kmsg, loop, null_blk

from kseries import paths
from kseries.l2 import guest
from kseries.l2.guest import Images, L2Run
from kseries.l2.image import outputs
from kseries.qemu.build import binaries

SERIAL, RO_SERIAL = "vblk-l2", "vblk-l2-ro"
QUEUES = 2
PATTERN_OFF, MARKER_OFF = 1 << 20, 8 << 20
LINE = re.compile(r"L2: (ok|FAIL|done|up|rebooting|load running)\b ?(.*)")
# Written by l2-guest/init, checked here: 32768 lines of 32 bytes.
PATTERN = b"".join(b"vhost-blk L2 pattern %010d\n" % i for i in range(32768))


def _need(path: Path, what: str) -> Path:
    if not os.access(path, os.R_OK):
        pytest.skip(f"no {path}: {what}")
    return path


@pytest.fixture(scope="module")
def images() -> Iterator[Images]:
    if not os.path.exists("/dev/kvm"):
        pytest.skip("no /dev/kvm in this VM: boot a kernel built with `kseries build --kvm` "
                    "(KVM_AMD; virtme-ng's -cpu max under TCG has svm)")
    lay = paths.layout()
    qemu = _need(binaries(lay.qemu_build)["qemu-system-x86_64"],
                 "build QEMU with `kseries qemu build` first")
    vmlinuz, initrd = outputs(lay.l2_build)
    for image in (vmlinuz, initrd):
        _need(image, "build the L2 guest with `kseries l2 build` first")
    with guest.static_keys_held():
        yield Images(qemu, vmlinuz, initrd)


@contextlib.contextmanager
def _qemu(img: Images, disks: list[str], append: str, reboot: bool,
          quiet: bool = True) -> Iterator[L2Run]:
    cmd = guest.command(img, append, disks, cpus=QUEUES, reboot=reboot, quiet=quiet)
    with guest.start(cmd) as run:
        yield run


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _discard_expected(be: Backend) -> int:
    """The device offers discard when the block device can do it (QEMU: discard=auto)."""
    return int(int(be.sysfs("queue/discard_max_bytes")) > 0)


@contextlib.contextmanager
def _backend(kind: str) -> Iterator[Backend]:
    if kind == "brd":
        with brd(0) as be:
            yield be
    elif kind.startswith("null_blk-"):
        with null_blk(blocksize=int(kind.split("-")[1])) as be:
            yield be
    else:
        with loop() as be:
            yield be


@pytest.mark.parametrize("kind", ["brd", "null_blk-512", "null_blk-4096", "loop"])
def test_l2_guest(images: Images, kind: str) -> None:
    """The guest's checks pass, it survives a reset, and its pattern is on the disk."""
    with _backend(kind) as be, brd(1) as ro:
        ro_data = os.urandom(65536)
        ro.direct_write(0, ro_data)
        be.direct_write(PATTERN_OFF, bytes(len(PATTERN)))
        be.direct_write(MARKER_OFF, bytes(4096))
        lbs = int(be.sysfs("queue/logical_block_size"))
        append = (f"l2.serial={SERIAL} l2.sectors={be.size // 512} l2.lbs={lbs} "
                  f"l2.queues={QUEUES} l2.discard={_discard_expected(be)} "
                  f"l2.write_zeroes=1 l2.ro_serial={RO_SERIAL} l2.ro_md5={_md5(ro_data)} "
                  "l2.reboot=1")
        disks = [f"vhost-blk-pci,path={be.path},serial={SERIAL},num-queues={QUEUES}",
                 f"vhost-blk-pci,path={ro.path},serial={RO_SERIAL},readonly=on"]
        oks: list[str] = []
        fails: list[str] = []
        dones: list[str] = []
        ups: list[float] = []
        with _qemu(images, disks, append, reboot=True) as run:
            deadline = time.monotonic() + guest.BOOT_ALLOWANCE
            while (line := run.next_line(deadline)) is not None:
                m = LINE.search(line)
                if not m:
                    continue
                word, rest = m.groups()
                if word == "ok":
                    oks.append(rest)
                elif word == "FAIL":
                    fails.append(rest)
                elif word == "up":
                    ups.append(float(rest.split()[0]))
                elif word == "done":
                    dones.append(rest)
                    # The second boot ends the run; QEMU exits on power-off.
            rc = run.proc.wait(timeout=60)
            seconds = time.monotonic() - run.started
            tail = run.tail()
            run.save(kind)
        assert not fails, f"L2 checks failed: {fails}\n{tail}"
        assert rc == 0, f"QEMU exited {rc}\n{tail}"
        # The first boot reboots instead of finishing; the second finishes.
        assert len(ups) == 2, f"expected two boots, saw {len(ups)}\n{tail}"
        assert dones == ["failed=0"], f"expected one finish, got {dones}\n{tail}"
        assert any(o.startswith("pattern after reset") for o in oks), tail
        assert be.direct_read(PATTERN_OFF, len(PATTERN)) == PATTERN, \
            "the backing device does not hold the pattern the L2 guest wrote"
        assert be.direct_read(MARKER_OFF, 4096) == bytes(4096), "reboot marker left behind"
        assert ro.direct_read(0, len(ro_data)) == ro_data, "the read-only disk changed"
    line = (f"l2 guest [{kind}]: {len(oks)} checks passed over 2 boots, init at "
            f"{' and '.join(f'{u:.0f}' for u in ups)} s of guest uptime, "
            f"{seconds:.0f} s in all")
    kmsg(line)
    REPORT_LINES.append(line)


@pytest.mark.parametrize(("kind", "sig"), [("null_blk-512", signal.SIGTERM),
                                           ("loop", signal.SIGKILL)],
                         ids=["null_blk-512-SIGTERM", "loop-SIGKILL"])
def test_l2_stop_with_io_in_flight(images: Images, kind: str, sig: signal.Signals) -> None:
    """QEMU stopped or killed while fio runs on every queue: no hang, no leak, disk usable."""
    with _backend(kind) as be:
        disks = [f"vhost-blk-pci,path={be.path},serial={SERIAL},num-queues={QUEUES}"]
        resets: list[str] = []

        def load() -> tuple[int, float]:
            # The kernel's whole log: a guest that resets before init
            # (guest.GuestReset) prints nothing else on a quiet console.
            with _qemu(images, disks, f"l2.serial={SERIAL} l2.queues={QUEUES} l2.mode=load",
                       reboot=False, quiet=False) as run:
                try:
                    deadline = time.monotonic() + guest.BOOT_ALLOWANCE
                    while (line := run.next_line(deadline)) is not None:
                        assert "L2: FAIL" not in line, run.tail()
                        if "L2: load running" in line:
                            break
                    else:
                        raise AssertionError(f"QEMU ended (exit {run.proc.wait(timeout=60)}) "
                                             f"before the load started\n{run.tail()}")
                    time.sleep(3)
                    t0 = time.monotonic()
                    run.proc.send_signal(sig)
                    rc = run.proc.wait(timeout=120)
                    took = time.monotonic() - t0
                finally:
                    run.save(f"{kind}-{sig.name}-{len(resets) + 1}")
            return rc, took

        rc, took = guest.retry_on_reset(load, resets.append)
        # SIGTERM: QEMU quits (device stop, then close); SIGKILL: only the release.
        assert rc == (0 if sig == signal.SIGTERM else -signal.SIGKILL), f"QEMU exited {rc}"
        data = os.urandom(65536)
        be.direct_write(0, data)
        assert be.direct_read(0, len(data)) == data
    for note in resets:
        kmsg(f"l2 guest [{kind}]: {note}")
        REPORT_LINES.append(f"l2 guest [{kind}]: {note}")
    line = f"l2 guest [{kind}]: QEMU {sig.name} with fio in flight, gone in {took:.1f} s"
    kmsg(line)
    REPORT_LINES.append(line)

