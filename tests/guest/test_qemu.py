"""QEMU's own tests of vhost-blk-pci, where /dev/vhost-blk exists.

tests/qtest/vhost-blk-test.c (patches/qemu) drives the device with
libqos' virtio-pci driver, QEMU's code and not vblk, the way
QEMU tests virtio-blk-pci and vhost-user-blk-pci.  The qtest
accelerator emulates no guest CPU, so the cases run at this VM's
speed; each one sets up a loop device over a file in /tmp.

The binaries come from ``kseries qemu build`` (build/qemu).  Without
them the test is skipped and says so; CI builds them first and counts a
skip as a failure.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from vblk_env import REPORT_LINES, kmsg

from kseries import paths
from kseries.qemu.build import binaries

PREFIX = "/x86_64/pc/i440FX-pcihost/pci-bus-pc/pci-bus/vhost-blk-pci/"
# GLib's TAP: "ok 3 /x86_64/.../vhost-blk-tests/basic", "not ok 4 ...",
# "ok 5 /x86_64/... # SKIP why".
TAP = re.compile(r"^(ok|not ok) \d+ (\S+)(.*)$", re.M)
TIMEOUT = 1800


def _loop_backing_files() -> set[str]:
    out = set()
    for f in Path("/sys/block").glob("loop*/loop/backing_file"):
        out.add(f.read_text().strip())
    return out


def _qemu() -> tuple[Path, Path]:
    bins = binaries(paths.layout().qemu_build)
    qemu, qos = bins["qemu-system-x86_64"], bins["qos-test"]
    for binary in (qemu, qos):
        if not os.access(binary, os.X_OK):
            pytest.skip(f"no {binary}: build QEMU with `kseries qemu build` first")
    return qemu, qos


def test_qemu_vhost_blk_qtests() -> None:
    """Every vhost-blk-pci case qos-test lists runs and passes; none skips."""
    qemu, qos = _qemu()
    env = dict(os.environ, QTEST_QEMU_BINARY=str(qemu))
    env.pop("QTEST_VHOST_BLK_DEVICE", None)  # the cases make their own loop devices
    listed = subprocess.run([str(qos), "-l"], cwd="/tmp", env=env, capture_output=True,
                            text=True, timeout=600, check=True).stdout
    cases = sorted({line.strip() for line in listed.splitlines()
                    if line.strip().startswith(PREFIX)})
    assert cases, f"qos-test lists no case under {PREFIX}: is patches/qemu applied?"
    loops_before = _loop_backing_files()

    args = [str(qos), "--tap", "-k"]
    for case in cases:
        args += ["-p", case]
    proc = subprocess.run(args, cwd="/tmp", env=env, capture_output=True, text=True,
                          timeout=TIMEOUT, check=False)
    results = {path: (word, rest.strip()) for word, path, rest in TAP.findall(proc.stdout)}
    tail = proc.stdout[-3000:] + proc.stderr[-3000:]
    failed = [p for p, (word, _) in results.items() if word != "ok"]
    skipped = [f"{p} {rest}" for p, (word, rest) in results.items()
               if word == "ok" and "SKIP" in rest.upper()]
    missing = [c for c in cases if c not in results]
    assert not failed, f"qos-test failed: {failed}\n{tail}"
    assert not skipped, f"qos-test skipped: {skipped}"
    assert not missing, f"qos-test did not run: {missing}\n{tail}"
    assert proc.returncode == 0, f"qos-test exited {proc.returncode}\n{tail}"
    assert _loop_backing_files() == loops_before, "qos-test left a loop device behind"
    line = f"qemu qtests: {len(cases)} vhost-blk-pci cases passed"
    kmsg(line)
    REPORT_LINES.append(line)
