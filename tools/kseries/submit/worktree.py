"""The scratch worktree and branches a posting is made from.

Submission never checks anything out in the developer's tree: it works
in a separate ``git worktree`` of it (created on first use), on a branch
that `kseries apply` recreates from patches/ every time (patches/ is the
source of truth).  Beside it, ``<branch>-base`` marks the pinned base for
``b4 prep --enroll`` (b4 wants a branch there), and ``<branch>-prev``
holds the previous version when one is given for the range-diff.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from .. import git as g
from .. import series
from ..errors import KseriesError, UsageError
from ..git import git
from ..progress import Progress
from ..tree import open_tree


@dataclass(frozen=True)
class Branches:
    series: str

    @property
    def base(self) -> str:
        return f"{self.series}-base"

    @property
    def previous(self) -> str:
        return f"{self.series}-prev"


DOTFILES = (".gitattributes", ".mailmap", ".get_maintainer.ignore")


def ensure(source: Path, path: Path, base: str, progress: Progress) -> Path:
    """``path`` as a worktree of ``source`` (created detached at ``base`` if absent)."""
    if not path.exists():
        open_tree(source, base)
        progress.say(f"creating worktree {path} of {source} at {base}")
        path.parent.mkdir(parents=True, exist_ok=True)
        git(source, "worktree", "add", "--detach", str(path), base)
    open_tree(path, base)
    _copy_untracked_attributes(source, path)
    return path.resolve()


def _copy_untracked_attributes(source: Path, path: Path) -> None:
    """Give the worktree the source's top-level dotfiles that git does not track.

    The imported Debian tree leaves the kernel's top-level dotfiles out of
    the base commit (``git add -A`` honours the tree's own ``.*`` ignore
    rule), yet the files in the developer's checkout matter here:
    ``.gitattributes`` decides the function names in hunk headers
    (``*.[ch] diff=cpp``), ``.mailmap`` and ``.get_maintainer.ignore``
    what get_maintainer.pl prints.  Without them, emails and re-exported
    patches would differ from ``kseries export``'s in those lines.
    """
    for name in DOTFILES:
        src, dest = source / name, path / name
        if src.is_file() and not dest.exists() and not g.out(source, "ls-files", "--", name):
            shutil.copyfile(src, dest)


def prepare(tree: Path, base: str, names: Branches, patches: Path, progress: Progress) -> str:
    """Recreate the series branch from ``patches``; return the base commit id."""
    base_sha = g.rev(tree, base)
    if base_sha is None:
        raise UsageError(f"base {base!r} does not exist in {tree}",
                         "give an existing ref with --base (or fetch the pinned tree)")
    git(tree, "am", "--abort", check=False)  # left over from an interrupted run
    git(tree, "checkout", "-q", "--detach", base_sha)
    git(tree, "branch", "-f", names.base, base_sha)
    series.apply(tree, base_sha, names.series, patches, progress, force=True)
    return base_sha


def previous(tree: Path, base: str, names: Branches, spec: str, progress: Progress) -> str:
    """The previous version as a git range: a patch directory is applied first."""
    path = Path(spec)
    if path.is_dir():
        series.apply(tree, base, names.previous, path, progress, force=True)
        return f"{base}..{names.previous}"
    if ".." in spec:
        return spec
    if g.rev(tree, spec) is None:
        raise UsageError(f"--previous {spec!r} is neither a patch directory nor a git ref",
                         "give the directory of the previous version's patches, a ref, "
                         "or a range A..B")
    return f"{base}..{spec}"


def range_diff(tree: Path, old: str, new: str) -> str:
    proc = git(tree, "range-diff", "--no-color", old, new, check=False)
    if proc.returncode != 0:
        raise UsageError(f"git range-diff {old} {new} failed: {proc.stderr.strip()}",
                         "check --previous")
    return proc.stdout


def verify_am(tree: Path, base: str, branch: str, emails: list[Path]) -> int:
    """``git am`` the emails onto ``base`` (detached) and compare with ``branch``.

    Returns the number of patches applied; raises when one does not apply
    or the result differs from the branch's tree.  The branch is checked
    out again afterwards.
    """
    git(tree, "checkout", "-q", "--detach", base)
    try:
        proc = git(tree, "am", "--quiet", *(str(p) for p in emails), check=False)
        if proc.returncode != 0:
            git(tree, "am", "--abort", check=False)
            raise KseriesError(f"git am of the written emails onto {base} failed: "
                               f"{g.last_line(proc.stderr + proc.stdout)}",
                               "this is a bug in the submission path; report it")
        applied = int(g.out(tree, "rev-list", "--count", f"{base}..HEAD"))
        if g.out(tree, "rev-parse", "HEAD^{tree}") != g.out(tree, "rev-parse",
                                                            f"{branch}^{{tree}}"):
            raise KseriesError("the emails apply but give a different tree than the series",
                               "this is a bug in the submission path; report it")
        return applied
    finally:
        git(tree, "checkout", "-q", branch)
