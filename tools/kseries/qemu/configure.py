"""Configure QEMU into its build directory, only when something calls for it.

One x86_64 system emulator with what the project tests: TCG and KVM,
vhost-kernel and vhost-user, the tools (qemu-storage-daemon with the
vhost-user-blk export, linux-aio and io_uring) and the qtests; every
other feature off.  The options, the source tree, its ``configure``
script and meson's version are recorded in the build directory after a
successful configure; the next build configures again only when one of
them changed.  Changes to meson.build files need no configure: ninja
regenerates the build itself.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from ..build import make_env
from ..errors import KseriesError, UsageError
from ..progress import Progress

STAMP = ".kseries-configure.json"
LOG = "configure.log"

FEATURES = (
    "--target-list=x86_64-softmmu",
    "--without-default-features",
    "--enable-tcg",
    "--enable-kvm",
    "--enable-vhost-kernel",
    "--enable-vhost-user",
    "--enable-vhost-user-blk-server",
    "--enable-tools",
    "--enable-linux-aio",
    "--enable-linux-io-uring",
    "--enable-fdt=system",
    "--disable-docs",
    "--disable-guest-agent",
    "--disable-werror",
    # Subprojects come from the tarball; nothing is downloaded at build time.
    "--disable-download",
    # Debian's +ds tarball has no prebuilt firmware: use the machine's
    # (seabios, ipxe-qemu and qemu-system-data, installed with qemu-system-x86).
    "--disable-install-blobs",
)
FIRMWARE = ("/usr/share/qemu", "/usr/share/seabios", "/usr/lib/ipxe/qemu")

# What the build needs and which Debian package has it.
_PROGRAMS = {"gcc": "build-essential", "ninja": "ninja-build", "pkg-config": "pkg-config"}
_PKG_CONFIG = {"glib-2.0": "libglib2.0-dev", "pixman-1": "libpixman-1-dev",
               "liburing": "liburing-dev"}
_HEADERS = {"/usr/include/libfdt.h": "libfdt-dev", "/usr/include/libaio.h": "libaio-dev"}
MESON_MIN = (1, 5, 0)  # QEMU 10.0's pythondeps.toml


def options(python: str, ccache: bool) -> list[str]:
    """configure's command line (after the script's path)."""
    return [f"--python={python}", *(["--cc=ccache gcc"] if ccache else []), *FEATURES,
            f"--firmwarepath={':'.join(FIRMWARE)}"]


def link_firmware(build: Path) -> None:
    """Let the binaries in the build directory find the machine's firmware.

    Run from a build directory, QEMU looks up every data directory,
    --firmwarepath's too, under ``qemu-bundle/`` next to the binary
    (util/cutils.c: get_relocated_path), where meson puts only QEMU's
    own data.  Link the firmware directories in there.
    """
    for directory in FIRMWARE:
        link = build / "qemu-bundle" / directory.lstrip("/")
        if link.is_symlink() or link.exists():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(directory)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


def missing_prerequisites() -> list[str]:
    """What the machine lacks for the build, as install instructions."""
    debs = [pkg for prog, pkg in _PROGRAMS.items() if shutil.which(prog) is None]
    if shutil.which("pkg-config"):
        debs += [pkg for mod, pkg in _PKG_CONFIG.items()
                 if subprocess.run(["pkg-config", "--exists", mod], check=False).returncode]
    debs += [pkg for header, pkg in _HEADERS.items() if not Path(header).exists()]
    pips = []
    meson = _version("meson")
    if meson is None or _version_tuple(meson) < MESON_MIN:
        pips.append(f"meson>={'.'.join(map(str, MESON_MIN))} (have {meson or 'none'})")
    if _version("pycotap") is None:
        pips.append("pycotap")
    out = []
    if debs:
        out.append("Debian packages " + " ".join(dict.fromkeys(debs)))
    if pips:
        out.append(f"Python packages in {sys.prefix}: " + ", ".join(pips))
    return out


def fingerprint(src: Path, opts: list[str]) -> dict[str, str | list[str]]:
    configure = src / "configure"
    digest = hashlib.sha256(configure.read_bytes()).hexdigest() if configure.exists() else ""
    return {"options": opts, "source": str(src.resolve()), "configure": digest,
            "meson": _version("meson") or ""}


_WHY = {"options": "the configure options changed", "source": "the source tree moved",
        "configure": "QEMU's configure script changed", "meson": "meson's version changed"}


def reason_to_configure(build: Path, wanted: dict[str, str | list[str]]) -> str | None:
    """Why configure must run, or None when the last configure still holds."""
    if not (build / "build.ninja").exists():
        return "not configured yet"
    try:
        had = json.loads((build / STAMP).read_text())
    except (OSError, ValueError):
        return "no record of a finished configure"
    changed = [_WHY.get(key, key) for key in wanted if had.get(key) != wanted[key]]
    return ", ".join(changed) or None


def _error_lines(text: str) -> str:
    found = [line.strip() for line in text.splitlines()
             if "ERROR" in line or line.startswith("error")]
    return " | ".join(dict.fromkeys(found[-3:])) or (text.strip().splitlines() or ["no output"])[-1]


def configure(src: Path, build: Path, opts: list[str], progress: Progress,
              force: bool = False) -> bool:
    """Run configure in ``build`` when needed; return whether it ran."""
    wanted = fingerprint(src, opts)
    why = "--reconfigure" if force else reason_to_configure(build, wanted)
    if why is None:
        progress.say(f"qemu: configure: unchanged ({build})")
        return False
    missing = missing_prerequisites()
    if missing:
        raise UsageError(f"the QEMU build lacks {'; '.join(missing)}",
                         "run `tools/run unit` as root (it installs them), or install them "
                         "yourself: apt-get install ...; pip install -e .")
    build.mkdir(parents=True, exist_ok=True)
    (build / STAMP).unlink(missing_ok=True)
    log = build / LOG
    cmd = [str(src / "configure"), *opts]
    with progress.stage(f"qemu: configure ({why})"), log.open("w") as fh:
        fh.write(f"$ cd {build} && {' '.join(cmd)}\n")
        fh.flush()
        proc = subprocess.run(cmd, cwd=build, env=make_env(), stdout=fh,
                              stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        raise KseriesError(f"configuring QEMU failed (exit {proc.returncode}): "
                           f"{_error_lines(log.read_text(errors='replace'))}",
                           f"full log: {log}")
    (build / STAMP).write_text(json.dumps(wanted, indent=1, sort_keys=True) + "\n")
    return True
