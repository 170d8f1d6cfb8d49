"""build-y, build-m, build-n, build-i386, build-clang: the patch in other builds.

Opt-in plug-ins (not in the default [checks] per_patch): each builds in
a directory of its own and counts only the warnings the patch adds; see
``kseries.check.variants`` for how each is configured.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable

from .. import kbuild, ksyms, variants
from ..context import Check, CheckContext
from ..model import Outcome
from ..variants import Variant, build_dir

LLVM_TOOLS = ("clang", "ld.lld", "llvm-ar", "llvm-nm", "llvm-objcopy", "llvm-objdump",
              "llvm-readelf", "llvm-strip")


def _missing_make() -> Outcome | None:
    if not kbuild.have_make():
        return Outcome.cannot_run("make is not installed (apt-get install build-essential)")
    return None


class SymbolBuild(Check):
    """build-y, build-m, build-n: the touched Kconfig symbols at one value."""

    needs_tree = True
    opt_in = True

    def __init__(self, value: str) -> None:
        self.value = value
        self.variant = Variant(value, f"symbols={value}")
        self.name = f"build-{value}"
        self.description = (f"the Kconfig symbols the patch touches ={value} (scripts/config "
                            "+ olddefconfig), its directories built (W=1); new warnings only")

    def run(self, ctx: CheckContext) -> Outcome:
        if (missing := _missing_make()) is not None:
            return missing
        symbols = ksyms.touched(ctx)
        if not symbols:
            return Outcome.skip("the patch touches no Kconfig symbol (no Kconfig entry, no "
                                "object built by one)")
        ctx.write_log("symbols: " + ", ".join(f"CONFIG_{s.name} ({s.file}:{s.line})"
                                              for s in symbols))
        if self.value == "m" and all(s.type == "bool" for s in symbols):
            names = ", ".join(f"CONFIG_{s.name}" for s in symbols)
            return Outcome.skip(f"{names}: a bool cannot be m")
        tg = kbuild.targets(ctx, [build_dir(ctx, self.variant), ctx.build_dir])
        for note in tg.notes:
            ctx.write_log(f"note: {note}")
        dirs = variants.directories(ctx, tg.now)
        if not dirs:
            return Outcome.skip("the patch changes no file of a kbuild directory")
        outdir = build_dir(ctx, self.variant)
        variants.base_config(ctx, self.variant, outdir)
        settings = variants.set_symbols(ctx, self.variant, outdir, self.value, symbols)
        held = [s for s in settings if s.held]
        refused = [s for s in settings if not s.held]
        if not held:
            return Outcome.skip("; ".join(str(s) for s in refused))
        what = " ".join(str(s) for s in held)
        outcome = variants.compare(ctx, self.variant, outdir, dirs, what)
        if refused:
            outcome = Outcome(outcome.state, outcome.description + "; "
                              + "; ".join(str(s) for s in refused))
        return outcome


def _no_gcc_m32() -> str | None:
    gcc = shutil.which("gcc")
    if gcc is None:
        return "gcc is not installed (apt-get install build-essential)"
    probe = subprocess.run([gcc, "-m32", "-c", "-x", "c", "-o", "/dev/null", "-"],
                           input="int x;\n", capture_output=True, text=True, check=False)
    if probe.returncode == 0:
        return None
    last = (probe.stderr.strip().splitlines() or ["no message"])[-1]
    return f"gcc cannot compile for i386 (gcc -m32: {last}) (apt-get install gcc-multilib)"


def _no_llvm() -> str | None:
    absent = [tool for tool in LLVM_TOOLS if shutil.which(tool) is None]
    if not absent:
        return None
    return (f"{', '.join(absent)} not installed: LLVM=1 needs clang, lld and llvm "
            "(apt-get install clang lld llvm)")


def _clang_version() -> str:
    proc = subprocess.run(["clang", "--version"], capture_output=True, text=True, check=False)
    first = (proc.stdout.splitlines() or [""])[0]
    version = first.split("version", 1)[-1].split()[0] if "version" in first else ""
    return f" (clang {version})" if version else ""


class ArchBuild(Check):
    """build-i386, build-clang: the build check's objects in another build.

    ``missing`` says why the variant cannot be built here (make aside),
    ``compiler_version`` what to add to the name of the build in the cell.
    """

    needs_tree = True
    opt_in = True

    def __init__(self, variant: Variant, description: str,
                 missing: Callable[[], str | None],
                 compiler_version: Callable[[], str] = str) -> None:
        self.variant = variant
        self.name = f"build-{variant.name}"
        self.description = description
        self.missing = missing
        self.compiler_version = compiler_version

    def run(self, ctx: CheckContext) -> Outcome:
        if (missing := _missing_make()) is not None:
            return missing
        if (reason := self.missing()) is not None:
            return Outcome.cannot_run(reason)
        outdir = build_dir(ctx, self.variant)
        tg = kbuild.targets(ctx, [outdir, ctx.build_dir])
        for note in tg.notes:
            ctx.write_log(f"note: {note}")
        if not tg.now:
            return Outcome.skip("the patch changes no file that is compiled")
        mismatches = variants.base_config(ctx, self.variant, outdir)
        what = self.variant.what + self.compiler_version()
        if mismatches:
            ctx.write_log(f"config: {len(mismatches)} fragment option(s) do not apply to "
                          f"{self.variant.what}: " + ", ".join(str(m) for m in mismatches))
            what += f" ({len(mismatches)} fragment option(s) do not apply, see the log)"
        return variants.compare(ctx, self.variant, outdir, tg.now, what)


CHECKS: tuple[Check, ...] = (
    SymbolBuild("y"), SymbolBuild("m"), SymbolBuild("n"),
    ArchBuild(Variant("i386", "ARCH=i386", ("ARCH=i386",), arch="i386"),
              "the touched objects built for i386 (ARCH=i386, the fragments that apply, "
              "W=1); new warnings only", _no_gcc_m32),
    ArchBuild(Variant("clang", "LLVM=1", ("LLVM=1",), cc="clang"),
              "the touched objects built with clang and the LLVM tools (LLVM=1, W=1); "
              "new warnings only", _no_llvm, _clang_version),
)
