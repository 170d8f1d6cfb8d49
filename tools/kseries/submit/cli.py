"""submit-series: turn patches/ into a posting, through b4.

With no arguments it is a dry run: the series is applied in a scratch
worktree, the cover letter is rendered, recipients are collected with
get_maintainer.pl, ``b4 send -o`` writes the emails to build/submit/vN/,
and the emails are checked (thread, headers, ``git am`` onto the pinned
base gives the series' tree, ``b4 am`` accepts the mbox).  Nothing is
mailed unless ``--reflect`` (to yourself) or ``--send`` is given, and
those refuse when the latest check-series run failed or is missing,
unless ``--force``.

``submit-series trailers MBOX`` adds the Reviewed-by/Acked-by/Tested-by
replies in MBOX to the patches (``b4 trailers -u``) and re-exports patches/.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import frontdoor, options
from ..errors import KseriesError, UsageError
from . import config

if TYPE_CHECKING:
    pass

PROG = "submit-series"
HELP = "turn patches/ into a posting through b4 (`kseries submit trailers MBOX`: add trailers)"

# The posting's modules (b4, get_maintainer.pl, jinja2 templates) are
# imported by the commands, so that `kseries --help` does not load them.


def _common(p: argparse.ArgumentParser) -> None:
    options.add_tree_opts(p, manifest_help="pin of the base tree",
                          tree_help="kernel git tree to make the worktree from (default: "
                                    "kernel-tree/linux)",
                          base_help="base ref (default: the pinned tag)")
    options.add_patches_opt(p)
    options.add_work_opt(p, help="build directory (default: build/)")
    p.add_argument("--worktree", type=Path, default=None,
                   help="scratch worktree to post from (default: BUILD/submit/linux, created)")
    p.add_argument("--branch", default=None,
                   help="series branch in the worktree (default: submit/<series branch>)")
    p.add_argument("--config", type=Path, default=None, help="submit.toml (default: at the root)")


def configure(p: argparse.ArgumentParser) -> None:
    """submit-series' options, on its own parser or on ``kseries submit``'s."""
    _common(p)
    p.add_argument("-v", "--reroll", type=int, default=1, metavar="N", help="series version")
    p.add_argument("--rfc", action="store_true", help='subject prefix "RFC PATCH"')
    p.add_argument("--prefix", action="append", default=[],
                   help="extra subject prefix, e.g. net-next (repeatable)")
    p.add_argument("--previous", default=None, metavar="DIR|REF|A..B",
                   help="previous version, for the changelog's range-diff")
    p.add_argument("--changelog", type=Path, default=None,
                   help="text of 'Changes in vN' (default: [submit.changes] in submit.toml)")
    p.add_argument("--check-json", type=Path, default=None,
                   help="check-series report, file or directory (default from submit.toml)")
    p.add_argument("--bench", type=Path, default=None,
                   help="benchmark results (default from submit.toml)")
    p.add_argument("-o", "--out", type=Path, default=None,
                   help="directory for the emails (default: build/submit/vN)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--reflect", action="store_true",
                      help="after the dry run, mail the series to yourself only (b4 --reflect)")
    mode.add_argument("--send", action="store_true",
                      help="after the dry run, mail the series to its recipients (b4 send)")
    p.add_argument("--force", action="store_true",
                   help="send even if the latest check-series run failed or is missing")
    p.add_argument("--no-sign", action="store_true", help="no patatt signature (b4 --no-sign)")
    p.add_argument("--no-verify", action="store_true",
                   help="skip the git am / b4 am checks of the written emails")


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    configure(p)
    p.set_defaults(func=cmd_submit)
    return p


def register(sub: Any) -> None:
    """Add ``kseries submit`` (the same command as submit-series) to kseries' subcommands.

    ``kseries submit trailers MBOX`` is parsed by ``trailers_parser()``:
    kseries' main() sees it first, as submit-series' main() does.
    """
    p = sub.add_parser("submit", help=HELP, description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    configure(p)
    p.set_defaults(func=cmd_submit)


def trailers_parser(prog: str = f"{PROG} trailers") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog,
                                description="add review trailers from a reply mbox to "
                                "patches/ (b4 trailers -u), then re-export patches/")
    _common(p)
    p.add_argument("mbox", type=Path, help="mbox with the series and its replies")
    p.add_argument("--sloppy", action="store_true",
                   help="accept trailers whose address does not match the sender (b4 -S)")
    p.set_defaults(func=cmd_trailers)
    return p


def prefixes(cfg: config.SubmitConfig, rfc: bool, extra: Sequence[str]) -> list[str]:
    """b4 prefixes: RFC before PATCH, then the rest ([RFC PATCH net-next v2 1/3])."""
    wanted = [*cfg.prefixes, *extra]
    rfc = rfc or any(p.upper() == "RFC" for p in wanted)
    rest = list(dict.fromkeys(p for p in wanted if p.upper() not in ("RFC", "PATCH")))
    if not rfc and not rest:
        return []
    return [*(["RFC"] if rfc else []), "PATCH", *rest]


def changelog(cfg: config.SubmitConfig, version: int, given: Path | None
              ) -> tuple[tuple[int, str], ...]:
    if version <= 1:
        return ()
    texts = dict(cfg.changes)
    if given is not None:
        if not given.is_file():
            raise UsageError(f"--changelog {given} does not exist", "give a text file")
        texts[str(version)] = given.read_text().strip()
    if str(version) not in texts:
        raise UsageError(f"version {version} has no changelog",
                         f'add v{version} = """- what changed""" under [submit.changes] in '
                         "submit.toml, or pass --changelog FILE")
    return tuple((v, texts[str(v)]) for v in range(version, 1, -1) if str(v) in texts)


class Context:
    """Paths and names shared by both commands."""

    def __init__(self, args: argparse.Namespace) -> None:
        from .. import paths
        from ..progress import Progress
        from . import worktree

        self.lay = paths.layout(manifest_path=args.manifest, tree=args.tree, base=args.base,
                                patches=args.patches, work=args.work)
        self.cfg = config.load(args.config or self.lay.submit_config)
        self.names = worktree.Branches(args.branch or f"submit/{self.lay.manifest.branch}")
        self.worktree_path = (args.worktree or self.lay.submit_worktree).resolve()
        self.progress = Progress()

    def tree(self) -> Path:
        from . import worktree

        return worktree.ensure(self.lay.tree, self.worktree_path, self.lay.base, self.progress)


def _clean_out(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for old in [*out.glob("*.eml"), out / "series.mbox"]:
        if old.exists():
            old.unlink()


def cmd_submit(args: argparse.Namespace) -> int:
    from .. import series
    from . import b4run, bench, checks, cover, emails, recipients, worktree

    ctx = Context(args)
    lay, cfg, progress = ctx.lay, ctx.cfg, ctx.progress
    if args.reroll < 1:
        raise UsageError(f"-v {args.reroll} is not a version", "give 1, 2, ...")
    mode = "send" if args.send else "reflect" if args.reflect else "dry-run"
    patch_files = series.list_patches(lay.patches)
    text = series.cover_text(lay.patches)
    if not patch_files or text is None:
        raise UsageError(f"{lay.patches} has no patches or no cover letter",
                         "regenerate it with `kseries export`")
    placeholders = [p for p in series.COVER_PLACEHOLDERS if p in text]
    if placeholders:
        raise UsageError(f"the cover letter in {lay.patches} still says "
                         f"{' and '.join(placeholders)}",
                         "write its subject and text (the branch description, then "
                         "`kseries export`, or the 0000 file itself)")
    check_json = cfg.resolve(lay.root, cfg.check_json, lay.check_report)
    report = checks.load(args.check_json or check_json,
                         len(patch_files), checks.patch_ids(patch_files),
                         enabled=checks.enabled(lay.root))
    report = checks.with_claims(report, cover.unsupported_claims(
        cover.parse_design(text).testing, report))
    if mode != "dry-run":
        warning = checks.gate(report, args.force)
        if warning:
            progress.say(f"WARNING: {warning}")
    elif report.status != "pass":
        progress.say(f"note: {report.problem}; --reflect/--send would refuse without --force")
    changes = changelog(cfg, args.reroll, args.changelog)
    output = cfg.resolve(lay.root, cfg.output, lay.submit_output)
    out = (args.out or output / f"v{args.reroll}").resolve()

    tree = ctx.tree()
    prev_range = ""
    if args.previous:
        prev_range = worktree.previous(tree, lay.base, ctx.names, args.previous, progress)
    with progress.stage(f"apply {len(patch_files)} patches to {ctx.names.series} in {tree}"):
        base_sha = worktree.prepare(tree, lay.base, ctx.names, lay.patches, progress)
    rdiff = worktree.range_diff(tree, prev_range, f"{base_sha}..{ctx.names.series}") \
        if prev_range else ""
    with progress.stage("b4 prep (enroll, revision, prefixes)"):
        b4run.enroll(tree, ctx.names.series, ctx.names.base)
        b4run.set_series(tree, args.reroll, prefixes(cfg, args.rfc, args.prefix))
    with progress.stage("get_maintainer.pl per patch and for the cover letter"):
        rcpt = recipients.collect(tree, patch_files, cfg)
    inputs = cover.CoverInputs(
        design=cover.parse_design(text), manifest=lay.manifest, base_commit=base_sha,
        version=args.reroll, patch_count=len(patch_files), checks=report,
        bench=bench.load(args.bench or cfg.resolve(lay.root, cfg.bench_results,
                                                   lay.bench_runs)),
        changes=changes, previous=args.previous or "")
    letter = cover.render(inputs)
    _clean_out(out)
    (out / "cover-letter.txt").write_text(letter)
    (out / "recipients.json").write_text(json.dumps(rcpt.as_json(), indent=2) + "\n")
    template = out / "b4-cover.template"
    template.write_text(cover.render_b4_template(rdiff, args.reroll - 1))
    dests = "".join(f"To: {a}\n" for a in rcpt.to) + "".join(f"Cc: {a}\n" for a in rcpt.cc)
    b4run.store_cover(tree, ctx.names.series, letter + ("\n" + dests if dests else ""))

    with progress.stage(f"b4 send --dry-run -o {out}"):
        b4run.send(tree, "dry-run", template, out)
    mails = emails.load(out)
    emails.require_thread(mails, len(patch_files))
    mbox = emails.write_mbox(mails, out / "series.mbox")
    verified = ""
    if not args.no_verify:
        with progress.stage(f"git am the emails onto {lay.base} and b4 am the mbox"):
            applied = worktree.verify_am(tree, base_sha, ctx.names.series,
                                         [m.path for m in mails[1:]])
            with tempfile.TemporaryDirectory() as tmp:
                b4out = b4run.am_check(tree, mbox, Path(tmp))
            m = re.search(r"Total patches: (\d+)", b4out)
            accepted = int(m.group(1)) if m else 0
            if accepted != len(patch_files):
                raise KseriesError(f"b4 am found {accepted} patches in {mbox}, expected "
                                   f"{len(patch_files)}", "see b4's output above")
        verified = (f"; git am applied {applied}/{len(patch_files)} onto {lay.base} "
                    f"(same tree as the series), b4 am accepted {accepted}")
    print(f"{mails[0].subject}")
    print(f"{len(mails)} emails in {out} (cover + {len(mails) - 1} patches){verified}")
    print(f"To: {len(rcpt.to)}, Cc: {len(rcpt.cc)} (details: {out / 'recipients.json'})")
    print(f"check-series: {report.status}" + (f" ({report.problem})" if report.problem else ""))
    if mode == "dry-run":
        print("dry run: nothing was sent (use --reflect to mail yourself, --send to post)")
        return 0
    with progress.stage(f"b4 send{' --reflect' if mode == 'reflect' else ''}"):
        b4run.send(tree, mode, template, sign=not args.no_sign)
    return 0


def cmd_trailers(args: argparse.Namespace) -> int:
    from .. import series
    from . import b4run, worktree

    ctx = Context(args)
    lay, progress = ctx.lay, ctx.progress
    if not args.mbox.is_file():
        raise UsageError(f"mbox {args.mbox} does not exist", "save the thread with its replies "
                         "(e.g. `b4 mbox MSGID`) and pass its path")
    before = {p.name: p.read_bytes() for p in lay.patches.glob("*.patch")}
    tree = ctx.tree()
    with progress.stage(f"apply patches/ to {ctx.names.series} in {tree}"):
        base_sha = worktree.prepare(tree, lay.base, ctx.names, lay.patches, progress)
    b4run.enroll(tree, ctx.names.series, ctx.names.base)
    with progress.stage(f"b4 trailers -u -m {args.mbox}"):
        output = b4run.trailers(tree, args.mbox, sloppy=args.sloppy)
    sys.stderr.write(output)
    series.export(tree, base_sha, ctx.names.series, lay.patches, progress)
    changed = sorted(name for name, data in before.items()
                     if (lay.patches / name).exists() and (lay.patches / name).read_bytes() != data)
    print(f"trailers added to {len(changed)} patch file(s) in {lay.patches}"
          + (": " + ", ".join(changed) if changed else ""))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The ``submit-series`` command: ``kseries submit`` under its own name."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["trailers"]:
        args = trailers_parser().parse_args(argv[1:])
    else:
        args = build_parser().parse_args(argv)
    return frontdoor.run(PROG, args.func, args)
