"""Build variants: the patch's objects in other configurations than the main build's.

Each variant has a build directory of its own (``WORK/build-NAME``),
configured like the main one (``virtme-configkernel --defconfig`` of its
architecture plus the fragments, ``[variants] fragments`` or else
``[build] fragments``; without fragments the tree's ``make defconfig``),
with its make variables (``ARCH=i386``, ``LLVM=1``) in every make it
runs, Kconfig's included.  That base configuration is kept in the
directory (``.kseries-base-config``) and made again only when a patch
changes a Kconfig file, the fragments change, it is missing, or it was
made for a commit with other Kconfig files (an earlier patch checked
again).

A symbol variant (``value`` y, m or n) starts each patch from the base
configuration, sets the symbols the patch touches (``ksyms.touched``)
with the tree's ``scripts/config`` and runs ``make olddefconfig``; a
value Kconfig does not keep (a dependency is off, a bool cannot be m)
is said in the cell, and when no symbol holds the value nothing is
built.  It builds the directories of the files the patch changes (the
whole directory, so objects the symbol turns off are left out and the
ones that stay are built without it).  The other variants build the
same objects as the build check.

Before and after, new warnings only: the same targets are built at the
patch before and at the patch, objects deleted first, and the
diagnostics compared as the build check does (``diagnostics.new_since``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import build, kconfig
from . import diagnostics, kbuild, ksyms
from .context import CheckContext
from .model import Outcome, State

_BASE = ".kseries-base-config"
_BASE_STAMP = ".kseries-base-stamp"
_BASE_COMMIT = ".kseries-base-commit"  # the commit whose Kconfig the base was made for
_SCRIPTS_CONFIG = {"y": "--enable", "m": "--module", "n": "--disable"}


@dataclass(frozen=True)
class Variant:
    name: str  # build directory WORK/build-NAME
    what: str  # how the cell names the configuration
    make_vars: tuple[str, ...] = ()
    arch: str | None = None  # virtme-configkernel --arch
    cc: str = "gcc"  # the compiler ccache wraps


def build_dir(ctx: CheckContext, variant: Variant) -> Path:
    return ctx.work / f"build-{variant.name}"


def _stamp(ctx: CheckContext, variant: Variant) -> str:
    return build.config_stamp(ctx.tree, list(ctx.config.variant_fragments), variant.make_vars)


def base_config(ctx: CheckContext, variant: Variant, outdir: Path) -> list[kconfig.Mismatch]:
    """Put the variant's base configuration in outdir/.config; what the
    fragments ask for that it lacks (options of another architecture, say)."""
    fragments = list(ctx.config.variant_fragments)
    outdir.mkdir(parents=True, exist_ok=True)
    base, stamp, dot_config = outdir / _BASE, outdir / _BASE_STAMP, outdir / ".config"
    made_at = outdir / _BASE_COMMIT
    fp = _stamp(ctx, variant)
    fresh = (kbuild.kconfig_changed(ctx) or not base.is_file() or not stamp.is_file()
             or stamp.read_text() != fp or kbuild.kconfig_moved(ctx, made_at))
    if fresh:
        ctx.progress.say(f"build-{variant.name}: configuring {outdir}")
        if fragments:
            build.configure(ctx.tree, outdir, fragments, ctx.progress, ctx.log, force=True,
                            make_vars=variant.make_vars, arch=variant.arch)
        else:
            build.run_logged(["make", f"O={outdir}", *variant.make_vars, "defconfig"],
                             ctx.tree, ctx.log)
        base.write_bytes(dot_config.read_bytes())
        stamp.write_text(fp)
        made_at.write_text(ctx.commit)
    else:
        ctx.write_log(f"config: the base configuration of {outdir} (unchanged)")
        dot_config.write_bytes(base.read_bytes())
    if not fragments:
        return []
    return kconfig.mismatches(kconfig.load_fragments(fragments), dot_config.read_text())


@dataclass(frozen=True)
class Setting:
    symbol: ksyms.Definition
    wanted: str
    got: str
    why: str  # when it did not hold

    @property
    def held(self) -> bool:
        return self.got == self.wanted

    def __str__(self) -> str:
        text = f"CONFIG_{self.symbol.name}={self.wanted}"
        if self.held:
            return text
        return f"{text} does not hold (got {self.got}): {self.why}"


def _why(sym: ksyms.Definition, wanted: str, got: str, values: dict[str, str]) -> str:
    if wanted == "m" and sym.type == "bool":
        return "it is a bool, it cannot be m"
    if wanted in ("y", "m") and sym.type not in ("bool", "tristate", ""):
        return f"it is {sym.type}, not a bool or tristate"
    deps = sym.depends_symbols()
    if wanted != "n" and deps:
        state = ", ".join(f"{d}={values.get('CONFIG_' + d, 'n')}" for d in deps)
        return (f"{sym.file}:{sym.line} depends on {' && '.join(sym.depends)} ({state})")
    if wanted == "n":
        return "another option selects it, or it has no prompt and its default holds"
    return f"see {sym.file}:{sym.line} (make menuconfig, /{sym.name})"


def set_symbols(ctx: CheckContext, variant: Variant, outdir: Path, value: str,
                symbols: list[ksyms.Definition]) -> list[Setting]:
    """scripts/config the symbols to ``value``, olddefconfig, and read what held."""
    dot_config = outdir / ".config"
    cmd = [str(ctx.tree / "scripts" / "config"), "--file", str(dot_config)]
    for sym in symbols:
        cmd += [_SCRIPTS_CONFIG[value], sym.name]
    build.run_logged(cmd, ctx.tree, ctx.log, what="scripts/config")
    build.run_logged(["make", f"O={outdir}", *variant.make_vars, "olddefconfig"], ctx.tree,
                     ctx.log)
    values = kconfig.parse(dot_config.read_text(errors="replace"), ".config")
    settings = []
    for sym in symbols:
        got = values.get(f"CONFIG_{sym.name}", "n")
        why = "" if got == value else _why(sym, value, got, values)
        settings.append(Setting(sym, value, got, why))
    for s in settings:
        ctx.write_log(f"config: {s}")
    return settings


def directories(ctx: CheckContext, objects: list[str]) -> list[str]:
    """The kbuild directories of the targets and of the Kconfig files the patch changes."""
    found: list[str] = []
    paths = [*objects, *(p for s, p in ctx.changed_files()
                         if s != "D" and Path(p).name.startswith("Kconfig"))]
    for target in paths:
        parent = target if target.endswith("/") else str(Path(target).parent) + "/"
        if parent == "./" or parent in found:
            continue
        if any((ctx.tree / parent / f).is_file() for f in ("Makefile", "Kbuild")):
            found.append(parent)
    return found


def not_the_patchs(ctx: CheckContext, before: kbuild.BuildRun,
                   new: list[diagnostics.Diagnostic]
                   ) -> tuple[list[diagnostics.Diagnostic], list[diagnostics.Diagnostic]]:
    """Split the new diagnostics: those that count, and those in a C file the
    patch does not change whose object the build before it did not compile.

    A symbol the patch adds can turn on objects that are not the patch's
    (``select VHOST`` builds vhost.o): their old warnings are not new.
    """
    changed = {p for _, p in ctx.changed_files()}
    counted, elsewhere = [], []
    for d in new:
        untouched_c = d.file.endswith(".c") and d.file not in changed
        if untouched_c and d.file[:-2] + ".o" not in before.compiled:
            elsewhere.append(d)
        else:
            counted.append(d)
    return counted, elsewhere


def compare(ctx: CheckContext, variant: Variant, outdir: Path, targets: list[str],
            what: str) -> Outcome:
    """Build the targets at the patch before and at the patch; new warnings only."""
    flags = [*variant.make_vars, *ctx.config.build.make_flags]
    before, now = kbuild.before_and_after(ctx, targets, flags, f"build-{variant.name}",
                                          outdir=outdir, cc=variant.cc)
    if now.error:
        return Outcome(State.FAIL, f"{what}: {now.error}")
    new, elsewhere = not_the_patchs(ctx, before, diagnostics.new_since(before.diagnostics,
                                                                       now.diagnostics))
    for d in elsewhere:
        ctx.write_log(f"not counted (a file the patch does not change, compiled only with "
                      f"the patch's configuration): {d.text}")
    more = " ..." if len(targets) > 3 else ""
    return kbuild.verdict(ctx, new, len(now.diagnostics), ctx.config.variants.severity,
                          f"{len(targets)} target(s) ({' '.join(targets[:3])}{more})",
                          prefix=f"{what}: ")
