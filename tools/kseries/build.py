"""Configure and build a kernel out of tree (O=), with progress."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import kconfig, paths
from .errors import KseriesError, UsageError
from .progress import Progress

# kbuild's quiet-mode lines: "  CC      drivers/vhost/blk.o"
_STEP = re.compile(r"^  [A-Z][A-Z0-9_]*(?: \[[A-Z]\])? +\S")
_ERROR = re.compile(r"(error:|Error \d+|undefined reference|\*\*\*)")
_COUNT_FILE = ".kseries-steps"
_FINGERPRINT_FILE = ".kseries-config"
# The make variables of the last make in a build directory (see compile_vars).
LAST_MAKE_FILE = ".kseries-last-make"
# Variables that pick a checker (sparse, coccicheck), not what the compiler does.
_CHECKER_VARS = ("C=", "CHECK=", "MODE=")


@dataclass(frozen=True)
class BuildResult:
    outdir: Path
    kernel_image: Path
    release: str
    steps: int
    seconds: float
    log: Path


def venv_path() -> str:
    """PATH with this interpreter's bin/ first (virtme-ng needs its helpers)."""
    bindir = str(Path(sys.executable).parent)
    return os.pathsep.join([bindir, os.environ.get("PATH", "")])


def make_env() -> dict[str, str]:
    env = dict(os.environ, PATH=venv_path())
    # Fixed build identity: reproducible banners and better ccache hits.
    env.setdefault("KBUILD_BUILD_USER", "kseries")
    env.setdefault("KBUILD_BUILD_HOST", "kseries")
    env.setdefault("KBUILD_BUILD_TIMESTAMP", "2000-01-01")
    # Paths under the checkout are hashed relative to it, so another clone
    # of the project on the same machine reuses the cache.
    env.setdefault("CCACHE_BASEDIR", str(paths.project_root()))
    return env


def make_args(outdir: Path, jobs: int | None = None, cc: str = "gcc") -> list[str]:
    """O=, -j and, with ccache installed, CC and HOSTCC through it (``cc``: gcc or clang)."""
    args = [f"O={outdir}", f"-j{jobs or os.cpu_count() or 1}"]
    if shutil.which("ccache"):
        args.append(f"CC=ccache {cc}")
        args.append(f"HOSTCC=ccache {cc}")
    return args


def config_stamp(tree: Path, fragments: list[Path], make_vars: tuple[str, ...] = ()) -> str:
    """What a configured build directory was configured from (``configure``'s stamp)."""
    return kconfig.fingerprint(fragments) + str(tree) + "".join(f" {v}" for v in make_vars)


def configure(tree: Path, outdir: Path, fragments: list[Path], progress: Progress,
              log: Path, force: bool = False, make_vars: tuple[str, ...] = (),
              arch: str | None = None) -> list[kconfig.Mismatch]:
    """virtme-configkernel --defconfig plus fragments, into outdir/.config.

    Skipped when the fragments did not change since the last configure,
    unless ``force`` (a Kconfig file changed, say).  ``make_vars`` (such
    as ``ARCH=i386`` or ``LLVM=1``) go to every make the configuration
    runs, since Kconfig asks the compiler what it supports; ``arch`` is
    virtme-configkernel's ``--arch`` (its defconfig of that architecture).
    Returns the options the fragments ask for that the result lacks.
    """
    wanted = kconfig.load_fragments(fragments)
    stamp = outdir / _FINGERPRINT_FILE
    fp = config_stamp(tree, fragments, make_vars)
    dot_config = outdir / ".config"
    if not force and dot_config.exists() and stamp.exists() and stamp.read_text() == fp:
        progress.say(f"config: unchanged ({dot_config})")
    else:
        if shutil.which("virtme-configkernel", path=venv_path()) is None:
            raise UsageError("virtme-configkernel (virtme-ng) is not installed",
                             "run the README's set-up command or `pip install virtme-ng`")
        outdir.mkdir(parents=True, exist_ok=True)
        progress.say(f"config: vng defconfig + {' '.join(f.name for f in fragments)}")
        # virtme-ng appends its own options after --custom ones (it forces
        # DEBUG_INFO, for one), so the fragments are merged afterwards.
        merge = [str(tree / "scripts" / "kconfig" / "merge_config.sh"), "-m", "-O", str(outdir),
                 str(dot_config), *(str(f.resolve()) for f in fragments)]
        vng = ["virtme-configkernel", *(["--arch", arch] if arch else []), "--defconfig",
               f"O={outdir}", *make_vars]
        for cmd in (vng, merge, ["make", f"O={outdir}", *make_vars, "olddefconfig"]):
            run_logged(cmd, tree, log)
        stamp.write_text(fp)
    return kconfig.mismatches(wanted, dot_config.read_text())


def run_logged(cmd: list[str], cwd: Path, log: Path, what: str = "configuring the kernel") -> None:
    """Run a configuration step with its output in ``log``; a failure raises."""
    with log.open("a") as fh:
        fh.write(f"$ {' '.join(cmd)}\n")
        fh.flush()
        proc = subprocess.run(cmd, cwd=cwd, env=make_env(), stdout=fh,
                              stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        raise KseriesError(f"{what} failed: {Path(cmd[0]).name} exited {proc.returncode}",
                           f"see {log}")


def compile_vars(cmd: list[str]) -> str:
    """The variables of a make command line that change how objects are compiled
    (CC=, W=, ARCH=, LLVM=...: not O=, nor the checker's C=, CHECK=, MODE=)."""
    return " ".join(a for a in cmd[1:]
                    if "=" in a and not a.startswith(("O=", *_CHECKER_VARS)))


def last_make(outdir: Path) -> str:
    """compile_vars of the last make in outdir ("" before the first)."""
    stamp = outdir / LAST_MAKE_FILE
    return stamp.read_text() if stamp.is_file() else ""


def _first_errors(lines: list[str], limit: int = 8) -> list[str]:
    return [line for line in lines if _ERROR.search(line)][:limit]


def make(tree: Path, outdir: Path, targets: list[str], progress: Progress, log: Path,
         extra: list[str] | None = None, label: str = "build", cc: str = "gcc") -> int:
    """Run make with a running count of build steps; return the count."""
    expected_file = outdir / _COUNT_FILE
    expected = int(expected_file.read_text()) if expected_file.exists() else 0
    cmd = ["make", "-C", str(tree), *make_args(outdir, cc=cc), *(extra or []), *targets]
    steps = 0
    tail: list[str] = []
    last = time.monotonic()
    with log.open("a") as fh:
        fh.write(f"$ {' '.join(cmd)}\n")
        proc = subprocess.Popen(cmd, env=make_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors="replace")
        assert proc.stdout is not None
        for line in proc.stdout:
            fh.write(line)
            tail.append(line.rstrip("\n"))
            del tail[:-400]
            if _STEP.match(line):
                steps += 1
            now = time.monotonic()
            if now - last >= 30:
                last = now
                total = f"/~{expected}" if expected > steps else ""
                progress.say(f"{label}: {steps}{total} steps ({line.strip()[:60]})")
        rc = proc.wait()
    (outdir / LAST_MAKE_FILE).write_text(compile_vars(cmd))
    if rc != 0:
        errors = _first_errors(tail) or tail[-5:]
        raise KseriesError(f"{label} failed (make exit {rc}): " + " | ".join(errors),
                           f"full log: {log}")
    if steps > expected:
        expected_file.write_text(str(steps))
    return steps


def _missing_hint(tree: Path, missing: list[kconfig.Mismatch]) -> str:
    """What to do when the configuration lacks options: the usual cause is a
    tree without the series (kernel-tree/linux is left at the pinned base)."""
    if (any(m.option == "CONFIG_VHOST_BLK" for m in missing)
            and not (tree / "drivers" / "vhost" / "blk.c").exists()):
        return (f"{tree} has no drivers/vhost/blk.c: the series is not applied there; "
                "run `kseries apply` (branch vhost-blk in kernel-tree/linux), or pass "
                "--tree build/series-tree after the main job")
    return "a dependency is missing; see `make menuconfig` in the build directory"


def build(tree: Path, outdir: Path, fragments: list[Path], progress: Progress,
          strict_config: bool = True) -> BuildResult:
    """Configure (if needed) and build a bootable kernel in outdir."""
    outdir = outdir.resolve()
    outdir.mkdir(parents=True, exist_ok=True)
    log = outdir / "build.log"
    log.write_text("")
    t0 = time.monotonic()
    missing = configure(tree, outdir, fragments, progress, log)
    if missing:
        listing = ", ".join(str(m) for m in missing)
        if strict_config:
            raise UsageError(f"the config lacks options the fragments ask for: {listing}",
                             _missing_hint(tree, missing))
        progress.say(f"config: WARNING: not as requested: {listing}")
    steps = make(tree, outdir, ["all"], progress, log)
    release = subprocess.run(["make", "-s", "-C", str(tree), f"O={outdir}", "kernelrelease"],
                             capture_output=True, text=True, check=True,
                             env=make_env()).stdout.strip()
    image = outdir / "arch" / "x86" / "boot" / "bzImage"
    if not image.exists():
        raise KseriesError(f"the build finished but {image} is missing", f"see {log}")
    took = time.monotonic() - t0
    progress.say(f"build: {steps} steps, kernel {release}, {took:.0f}s")
    return BuildResult(outdir, image, release, steps, took, log)
