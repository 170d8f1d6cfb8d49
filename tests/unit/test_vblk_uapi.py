"""The vhost-blk uAPI mirror (vblk.uapi) against the kernel's C headers.

The cross-check compiles a small C program against the series' uapi
headers (installed the way `make headers_install` would: without
<linux/compiler.h>) and compares every ioctl number, structure size,
field offset and constant.  It is skipped without gcc or the headers;
the encoding tests always run.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from vblk import uapi

# The series' headers: the worktree the main job applies patches/ in
# (tests/integration runs this file again there after the main job).
SERIES_UAPI = Path(__file__).resolve().parents[2] / "build" / "series-tree" / "include" / "uapi"
UAPI_DIR = Path(os.environ.get("VBLK_UAPI_INCLUDE", SERIES_UAPI))
HEADERS = ["vhost.h", "vhost_types.h", "virtio_blk.h", "virtio_ring.h", "virtio_config.h",
           "virtio_types.h"]

STRUCTS: dict[str, type[ctypes.Structure]] = {
    "vhost_vring_state": uapi.VhostVringState,
    "vhost_vring_file": uapi.VhostVringFile,
    "vhost_vring_addr": uapi.VhostVringAddr,
    "vhost_worker_state": uapi.VhostWorkerState,
    "vhost_vring_worker": uapi.VhostVringWorker,
    "vhost_memory_region": uapi.VhostMemoryRegion,
    "vhost_memory": uapi.VhostMemory,
    "virtio_blk_config": uapi.VirtioBlkConfig,
    "virtio_blk_outhdr": uapi.VirtioBlkOuthdr,
    "virtio_blk_discard_write_zeroes": uapi.VirtioBlkDiscardWriteZeroes,
    "vring_desc": uapi.VringDesc,
    "vring_used_elem": uapi.VringUsedElem,
}

CONSTANT_PREFIXES = ("VIRTIO_BLK_F_", "VIRTIO_BLK_T_", "VIRTIO_BLK_S_", "VIRTIO_RING_F_",
                     "VRING_DESC_F_", "VRING_USED_F_", "VRING_AVAIL_F_")
CONSTANTS = [
    *sorted(name for name in vars(uapi)
            if name.startswith(CONSTANT_PREFIXES) and isinstance(getattr(uapi, name), int)
            and name != "VIRTIO_BLK_T_GET_LIFETIME"),  # not in the 6.12 header
    "VIRTIO_F_VERSION_1", "VIRTIO_F_ACCESS_PLATFORM", "VIRTIO_F_RING_PACKED",
     "VIRTIO_F_ANY_LAYOUT", "VIRTIO_F_NOTIFY_ON_EMPTY", "VIRTIO_F_IN_ORDER",
     "VHOST_F_LOG_ALL", "VIRTIO_BLK_ID_BYTES", "VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP",
     "VHOST_VIRTIO", "VHOST_FILE_UNBIND", "VHOST_PAGE_SIZE", "VHOST_VRING_F_LOG",
]


def test_ioc_encoding_matches_known_values() -> None:
    # Values from <linux/vhost.h> of any 6.x kernel.
    assert uapi.VHOST_SET_OWNER == 0xAF01
    assert uapi.VHOST_GET_FEATURES == 0x8008AF00
    assert uapi.VHOST_SET_FEATURES == 0x4008AF00
    assert uapi.VHOST_SET_MEM_TABLE == 0x4008AF03
    assert uapi.VHOST_SET_VRING_ADDR == 0x4028AF11
    assert uapi.VHOST_GET_VRING_BASE == 0xC008AF12
    assert uapi.VHOST_NEW_WORKER == 0x8004AF08
    assert uapi.VHOST_ATTACH_VRING_WORKER == 0x4008AF15


def test_vhost_blk_ioctls() -> None:
    assert uapi.VHOST_BLK_SET_BACKEND == 0x4008AFFF
    assert uapi.VHOST_BLK_SET_SERIAL == 0x4014AFFE
    assert uapi.VHOST_BLK_GET_CONFIG == 0xC008AFFD


def test_ioc_rejects_oversized_arguments() -> None:
    with pytest.raises(ValueError):
        uapi.ioc(uapi.IOC_WRITE, 0xAF, 0, 1 << 14)
    with pytest.raises(ValueError):
        uapi.ioc(uapi.IOC_WRITE, 0xAF, 256, 8)


def test_struct_sizes() -> None:
    assert ctypes.sizeof(uapi.VirtioBlkConfig) == 96
    assert uapi.VirtioBlkConfig.num_queues.offset == 34
    assert uapi.VirtioBlkConfig.write_zeroes_may_unmap.offset == 56
    assert ctypes.sizeof(uapi.VhostVringAddr) == 40
    assert ctypes.sizeof(uapi.VirtioBlkOuthdr) == uapi.OUTHDR.size == 16
    assert ctypes.sizeof(uapi.VirtioBlkDiscardWriteZeroes) == uapi.DWZ_SEG.size == 16
    assert ctypes.sizeof(uapi.VringDesc) == uapi.DESC.size == 16


def test_wire_formats() -> None:
    assert uapi.outhdr(1, 0x0102030405060708, 3) == bytes(
        [1, 0, 0, 0, 3, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1])
    assert uapi.dwz_seg(2, 8, 1) == bytes([2] + [0] * 7 + [8, 0, 0, 0, 1, 0, 0, 0])
    mem = uapi.vhost_memory([(0x1000, 0x2000, 0x3000)])
    assert len(mem) == 8 + 32
    assert mem[:8] == bytes([1, 0, 0, 0, 0, 0, 0, 0])


def _c_program() -> str:
    lines = ["#include <stdio.h>", "#include <stddef.h>", "#include <linux/vhost.h>",
             "#include <linux/virtio_blk.h>", "#include <linux/virtio_ring.h>",
             "#include <linux/virtio_config.h>", "int main(void) {"]
    for name in uapi.IOCTLS:
        lines.append(f'printf("ioctl {name} %lu\\n", (unsigned long)({name}));')
    for cname, cls in STRUCTS.items():
        lines.append(f'printf("sizeof {cname} %zu\\n", sizeof(struct {cname}));')
        for fname, *_ in cls._fields_:
            lines.append(f'printf("offsetof {cname}.{fname} %zu\\n", '
                         f"offsetof(struct {cname}, {fname}));")
    for name in CONSTANTS:
        lines.append(f'printf("const {name} %lld\\n", (long long)({name}));')
    lines += ["return 0;", "}"]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def c_values(tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed")
    if not (UAPI_DIR / "linux" / "vhost.h").exists():
        pytest.skip(f"no uapi headers at {UAPI_DIR} (run the main job, or set "
                    "VBLK_UAPI_INCLUDE)")
    work = tmp_path_factory.mktemp("uapi")
    inc = work / "include" / "linux"
    inc.mkdir(parents=True)
    for header in HEADERS:
        text = (UAPI_DIR / "linux" / header).read_text()
        # As scripts/headers_install.sh does.
        text = "\n".join(line for line in text.splitlines()
                         if line.strip() != "#include <linux/compiler.h>")
        (inc / header).write_text(text + "\n")
    src = work / "probe.c"
    src.write_text(_c_program())
    exe = work / "probe"
    subprocess.run([gcc, "-Wall", "-Werror", "-I", str(work / "include"), "-o", str(exe),
                    str(src)], check=True, capture_output=True, text=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    values: dict[str, int] = {}
    for line in out.splitlines():
        kind, name, value = line.split()
        values[f"{kind} {name}"] = int(value)
    return values


def test_ioctl_numbers_match_headers(c_values: dict[str, int]) -> None:
    mismatches = {name: (hex(value), hex(c_values[f"ioctl {name}"]))
                  for name, value in uapi.IOCTLS.items()
                  if c_values[f"ioctl {name}"] != value}
    assert not mismatches
    assert len(uapi.IOCTLS) >= 25


def test_struct_layouts_match_headers(c_values: dict[str, int]) -> None:
    for cname, cls in STRUCTS.items():
        assert ctypes.sizeof(cls) == c_values[f"sizeof {cname}"], cname
        for fname, *_ in cls._fields_:
            assert getattr(cls, fname).offset == c_values[f"offsetof {cname}.{fname}"], \
                f"{cname}.{fname}"


def test_constants_match_headers(c_values: dict[str, int]) -> None:
    for name in CONSTANTS:
        assert getattr(uapi, name) == c_values[f"const {name}"], name
