"""The scratch worktree and branches a posting is made from.

Submission never checks anything out in the developer's tree: it works
in a separate ``git worktree`` of it (created on first use), on a branch
that `kseries apply` recreates from patches/ every time (patches/ is the
source of truth).  Beside it, ``<branch>-base`` marks the pinned base for
``b4 prep --enroll`` (b4 wants a branch there), and ``<branch>-prev``
holds the previous version when one is given for the range-diff.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import git

from .. import series
from ..errors import KseriesError, UsageError
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
        git.Repo(source).git.worktree("add", "--detach", str(path), base)
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
    repo = git.Repo(source)
    for name in DOTFILES:
        src, dest = source / name, path / name
        if src.is_file() and not dest.exists() and not repo.git.ls_files("--", name):
            shutil.copyfile(src, dest)


def prepare(tree: Path, base: str, names: Branches, patches: Path, progress: Progress) -> str:
    """Recreate the series branch from ``patches``; return the base commit id."""
    repo = git.Repo(tree)
    base_sha = str(repo.commit(base).hexsha)
    with contextlib.suppress(git.GitCommandError):
        repo.git.am("--abort")
    repo.git.checkout("-q", "--detach", base_sha)
    repo.git.branch("-f", names.base, base_sha)
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
    repo = git.Repo(tree)
    try:
        repo.commit(spec)
    except (git.BadName, ValueError):
        raise UsageError(f"--previous {spec!r} is neither a patch directory nor a git ref",
                         "give the directory of the previous version's patches, a ref, "
                         "or a range A..B") from None
    return f"{base}..{spec}"


def range_diff(tree: Path, old: str, new: str) -> str:
    proc = subprocess.run(["git", "range-diff", "--no-color", old, new], cwd=tree,
                          capture_output=True, text=True, check=False)
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
    repo = git.Repo(tree)
    repo.git.checkout("-q", "--detach", base)
    try:
        try:
            repo.git.am("--quiet", *(str(p) for p in emails))
        except git.GitCommandError as exc:
            with contextlib.suppress(git.GitCommandError):
                repo.git.am("--abort")
            raise KseriesError(f"git am of the written emails onto {base} failed: "
                               f"{str(exc.stderr).strip().splitlines()[-1:]}",
                               "this is a bug in the submission path; report it") from None
        applied = int(repo.git.rev_list("--count", f"{base}..HEAD"))
        if repo.git.rev_parse("HEAD^{tree}") != repo.git.rev_parse(f"{branch}^{{tree}}"):
            raise KseriesError("the emails apply but give a different tree than the series",
                               "this is a bug in the submission path; report it")
        return applied
    finally:
        repo.git.checkout("-q", branch)
