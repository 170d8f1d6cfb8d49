"""Build just what a patch touches, at the patch and at the patch before it.

The objects come from the files the patch changes: ``foo.c`` gives
``foo.o``; a header gives the objects whose kbuild dependency files
(``.foo.o.cmd``) name it; a Makefile or Kbuild in a directory gives that
directory.  Objects are deleted before each build so the compiler runs,
and prints its warnings, every time.  The previous tree is built first,
so one-off rebuilds (a changed flag such as W=1) land in the baseline.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from .. import build
from ..errors import KseriesError
from ..git import git
from . import diagnostics, gitops
from .context import CheckContext
from .model import Outcome, State

T = TypeVar("T")
_MEMO_DIR = ".kseries-runs"  # in a build directory: the diagnostics of earlier builds
_CONFIG_COMMIT = ".kseries-config-commit"  # the commit whose Kconfig .config was made for
# kbuild's quiet line for a compiled object: "  CC [M]  drivers/vhost/blk.o"
_COMPILED = re.compile(r"^  CC(?: \[M\])? +(\S+\.o)$", re.M)
Parser = Callable[[str, list[Path]], list[diagnostics.Diagnostic]]


@dataclass(frozen=True)
class Targets:
    now: list[str]  # make targets in the patched tree
    before: list[str]  # those that exist in the tree before the patch
    notes: list[str]


@dataclass(frozen=True)
class BuildRun:
    diagnostics: list[diagnostics.Diagnostic]
    error: str  # "" when make succeeded
    compiled: frozenset[str] = frozenset()  # the objects kbuild said it compiled (CC lines)


def is_kernel(tree: Path) -> bool:
    return (tree / "scripts" / "Makefile.build").is_file()


def header_users(outdir: Path, header: str, limit: int) -> list[str]:
    """Objects whose kbuild dependency list names ``header``."""
    pattern = re.compile(rf"(?:^|[\s/]){re.escape(header)}\b", re.M)
    users = []
    for cmd in outdir.rglob(".*.o.cmd"):
        try:
            text = cmd.read_text(errors="replace")
        except OSError:
            continue
        if pattern.search(text):
            rel = cmd.parent.relative_to(outdir) / cmd.name[1:-len(".cmd")]
            users.append(str(rel))
            if len(users) > limit:
                break
    return sorted(users)


def targets(ctx: CheckContext, build_dirs: list[Path] | None = None) -> Targets:
    """The make targets of the files the patch changes.

    A header's users come from the dependency files of the first of
    ``build_dirs`` (default: the check's build directory) that has any.
    """
    changed = ctx.changed_files()
    limit = ctx.config.build.header_object_limit
    now: list[str] = []
    notes: list[str] = []
    kernel = is_kernel(ctx.tree)
    for status, path in changed:
        if status == "D":
            continue
        found: list[str] = []
        if path.endswith((".c", ".S")):
            found = [path[:-2] + ".o"]
        elif path.endswith(".h"):
            # The build directory may hold dependency files of objects a
            # later patch adds (from an earlier build of the tip): only
            # objects whose source is in the tree at this patch count.
            for outdir in build_dirs or [ctx.build_dir]:
                found = [t for t in header_users(outdir, path, limit)
                         if _source_in_tree(ctx.tree, t)]
                if found:
                    break
            if len(found) > limit:
                notes.append(f"{path} is used by more than {limit} objects; built {limit}")
                found = found[:limit]
        elif kernel and Path(path).name in ("Makefile", "Kbuild") and "/" in path:
            found = [str(Path(path).parent) + "/"]
        now += [t for t in found if t not in now]
    before = [t for t in now if existed(ctx, t)]
    return Targets(now, before, notes)


def _source_in_tree(tree: Path, target: str) -> bool:
    stem = target[:-2]
    return any((tree / (stem + ext)).is_file() for ext in (".c", ".S"))


def existed(ctx: CheckContext, target: str) -> bool:
    """Whether the target's source was in the tree before the patch."""
    if target.endswith("/"):
        return gitops.exists(ctx.tree, ctx.prev_commit, target.rstrip("/"))
    stem = target[:-2]
    return any(gitops.exists(ctx.tree, ctx.prev_commit, stem + ext) for ext in (".c", ".S"))


def kconfig_changed(ctx: CheckContext) -> bool:
    return any(Path(p).name.startswith("Kconfig") for _, p in ctx.changed_files())


def kconfig_moved(ctx: CheckContext, stamp: Path) -> bool:
    """Whether the Kconfig files at the patch differ from those of the commit
    named in ``stamp`` (the one a .config was last made for; False without one).

    kbuild syncs .config to the Kconfig of the tree it builds, so checking
    an earlier patch again (--resume, --from) drops the options later
    patches add, and a patch that does not touch Kconfig itself would be
    built without them.
    """
    if not stamp.is_file():
        return False
    made = stamp.read_text().strip()
    if made == ctx.commit:
        return False
    proc = git(ctx.tree, "diff", "--quiet", made, ctx.commit, "--", ":(glob)**/Kconfig*",
               check=False)
    return proc.returncode != 0


def ensure_config(ctx: CheckContext, force: bool) -> None:
    """Configure the build directory from the project's fragments, if it has any;
    again when ``force`` or when its .config was made for other Kconfig files."""
    fragments = list(ctx.config.build.fragments)
    if not fragments:
        return
    stamp = ctx.build_dir / _CONFIG_COMMIT
    if not force and kconfig_moved(ctx, stamp):
        ctx.write_log(f"config: made for {stamp.read_text().strip()[:12]}, whose Kconfig files "
                      "differ from this patch's: configuring again")
        force = True
    missing = build.configure(ctx.tree, ctx.build_dir, fragments, ctx.progress, ctx.log,
                              force=force)
    stamp.write_text(ctx.commit)
    if missing:
        ctx.write_log("config: not as the fragments ask (yet): "
                      + ", ".join(str(m) for m in missing))


def _remove_objects(outdir: Path, target: str) -> None:
    path = outdir / target
    if target.endswith("/"):
        for obj in path.glob("**/*.o") if path.is_dir() else []:
            obj.unlink(missing_ok=True)
    else:
        path.unlink(missing_ok=True)


def compile_targets(ctx: CheckContext, names: list[str], flags: list[str], label: str,
                    force: bool = True, outdir: Path | None = None,
                    cc: str = "gcc", parser: Parser = diagnostics.parse) -> BuildRun:
    """make the targets (in ``outdir``, default the check's build directory);
    the diagnostics it printed (as ``parser`` reads them), and its error if it failed."""
    if not names:
        return BuildRun([], "")
    outdir = outdir or ctx.build_dir
    outdir.mkdir(parents=True, exist_ok=True)
    if force:
        for name in names:
            _remove_objects(outdir, name)
    ctx.log.parent.mkdir(parents=True, exist_ok=True)
    ctx.log.touch()
    start = ctx.log.stat().st_size
    error = ""
    try:
        build.make(ctx.tree, outdir, names, ctx.progress, ctx.log, extra=flags, label=label,
                   cc=cc)
    except KseriesError as err:
        error = err.message
    with ctx.log.open(errors="replace") as fh:
        fh.seek(start)
        text = fh.read()
    compiled = frozenset(m.group(1) for m in _COMPILED.finditer(text))
    return BuildRun(parser(text, [ctx.tree, outdir]), error, compiled)


def at_previous(ctx: CheckContext, work: Callable[[], T], outdir: Path | None = None) -> T:
    """Run ``work`` with the tree at the previous patch, then come back.

    The build directory's (``outdir``'s) .config is kept aside: the older
    Kconfig may drop options the patch adds, and the next build needs them.
    """
    dot_config = (outdir or ctx.build_dir) / ".config"
    saved = dot_config.read_bytes() if dot_config.exists() else None
    gitops.checkout(ctx.tree, ctx.prev_commit)
    try:
        return work()
    finally:
        gitops.checkout(ctx.tree, ctx.commit)
        if saved is not None:
            dot_config.write_bytes(saved)


def _memo_file(outdir: Path, label: str, commit: str, targets: list[str], flags: list[str],
               cc: str) -> Path:
    """Where the diagnostics of this build (check, commit, .config, flags, targets) are kept."""
    dot_config = outdir / ".config"
    config = dot_config.read_bytes() if dot_config.is_file() else b""
    digest = hashlib.sha256(config)
    for part in (label, commit, cc, *flags, "|", *targets):
        digest.update(b"\0" + part.encode())
    return outdir / _MEMO_DIR / f"{digest.hexdigest()}.json"


def _remember(memo: Path, run: BuildRun, outdir: Path) -> None:
    memo.parent.mkdir(parents=True, exist_ok=True)
    data = {"vars": build.last_make(outdir), "error": run.error,
            "compiled": sorted(run.compiled),
            "diagnostics": [[d.file, d.line, d.kind, d.message, d.text]
                            for d in run.diagnostics]}
    memo.write_text(json.dumps(data))


def _recall(memo: Path, outdir: Path) -> BuildRun | None:
    """The kept run, if the last make in outdir compiled the way it did."""
    try:
        data = json.loads(memo.read_text())
        if data["vars"] != build.last_make(outdir):
            return None
        return BuildRun([diagnostics.Diagnostic(f, int(n), k, m, t)
                         for f, n, k, m, t in data["diagnostics"]],
                        str(data["error"]), frozenset(data["compiled"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def before_and_after(ctx: CheckContext, targets: list[str], flags: list[str], label: str,
                     force: bool = True, outdir: Path | None = None, cc: str = "gcc",
                     parser: Parser = diagnostics.parse) -> tuple[BuildRun, BuildRun]:
    """Build the targets at the patch before (those that existed) and at the patch.

    Each run's diagnostics are kept in the build directory, keyed by the
    check, the commit, the .config, the flags and the targets.  The run
    before the patch is the run at the previous patch when the targets
    are the same (a series that keeps changing one file), so it is not
    built again when the last make in the directory compiled with the
    same variables (a make with other flags, a full build without W=1
    say, may leave objects that the next W=1 build redoes, and their
    warnings must land before the patch).
    """
    out = outdir or ctx.build_dir
    before_targets = [t for t in targets if existed(ctx, t)]
    ctx.write_log(f"== before the patch ({ctx.prev_commit[:12]}): {' '.join(before_targets)}")
    memo = _memo_file(out, label, ctx.prev_commit, before_targets, flags, cc)
    before = _recall(memo, out) if before_targets else None
    if before is not None:
        ctx.write_log(f"the same build ran at {ctx.prev_commit[:12]} with this .config and "
                      f"these flags, and nothing compiled differently since: not built again "
                      f"({memo.name}); its {len(before.diagnostics)} diagnostic(s):")
        for d in before.diagnostics:
            ctx.write_log(f"  {d.text}")
    else:
        before = at_previous(ctx, lambda: compile_targets(
            ctx, before_targets, flags, f"{label} (before)", force, outdir, cc, parser), outdir)
        if before_targets:
            _remember(memo, before, out)
    if before.error:
        ctx.write_log(f"note: the tree before the patch did not build: {before.error}")
    ctx.write_log(f"== with the patch ({ctx.commit[:12]}): {' '.join(targets)}")
    now = compile_targets(ctx, targets, flags, label, force, outdir, cc, parser)
    _remember(_memo_file(out, label, ctx.commit, targets, flags, cc), now, out)
    return before, now


def verdict(ctx: CheckContext, new: list[diagnostics.Diagnostic], total: int,
            severity: State, what: str, done: str = "built", noun: str = "warning",
            prefix: str = "") -> Outcome:
    """Log the new diagnostics; the outcome that names the first, or says there are none.

    ``what`` is what was built or checked ("2 target(s)"), ``total`` how
    many diagnostics the patch's run printed in all.
    """
    ctx.write_log(f"== {len(new)} new diagnostics (of {total}):")
    for d in new:
        ctx.write_log(f"NEW: {d.text}")
    if new:
        return Outcome(severity, f"{prefix}{len(new)} new {noun}(s) in {what}; first: {new[0]}")
    return Outcome(State.SUCCESS, f"{prefix}{what} {done}, no new {noun}s"
                   + (f" ({total} already there)" if total else ""))


def have_make() -> bool:
    return shutil.which("make") is not None
