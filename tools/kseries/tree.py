"""Obtain the pinned kernel tree and import it into git.

``fetch()`` downloads Debian's linux-source package at the exact pinned
version with ``apt-get download`` (no root, no system-wide install),
unpacks it with ``dpkg-deb -x``, checks both sha256 sums, extracts the
tarball and imports the result into git as one commit with a fixed
author and date, so every machine gets the same base commit id.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import deb as debs
from . import git as g
from .deb import sha256_file
from .errors import InfraError, UsageError
from .manifest import Manifest
from .paths import Layout
from .progress import Progress

# Debian's tree ignores every top-level file with these two lines.
_DEBIAN_IGNORE_LINES = ("/*", "!/debian/")
IMPORT_IDENTITY = {
    "GIT_AUTHOR_NAME": "kseries import",
    "GIT_AUTHOR_EMAIL": "kseries@invalid",
    "GIT_AUTHOR_DATE": "2000-01-01T00:00:00+0000",
    "GIT_COMMITTER_NAME": "kseries import",
    "GIT_COMMITTER_EMAIL": "kseries@invalid",
    "GIT_COMMITTER_DATE": "2000-01-01T00:00:00+0000",
}


@dataclass(frozen=True)
class Tree:
    """A kernel git tree and the ref of the series' base in it."""

    path: Path
    base: str

    def head(self) -> str:
        """The commit checked out in the tree."""
        return g.out(self.path, "rev-parse", "HEAD")

    def base_commit(self) -> str:
        sha = g.rev(self.path, self.base)
        if sha is None:
            raise UsageError(
                f"base ref {self.base!r} does not exist in {self.path}",
                "give an existing tag, branch or commit with --base",
            )
        return sha


def check_hash(path: Path, expected: str, what: str) -> None:
    actual = sha256_file(path)
    if actual != expected:
        raise UsageError(
            f"{what} {path} has sha256 {actual}, the manifest pins {expected}",
            "delete the file and fetch again; if Debian rebuilt the package, "
            "move the pin in kernel-tree/manifest.toml",
        )


def open_tree(path: Path, base: str) -> Tree:
    """A user-supplied or already imported tree; check it is usable."""
    if not path.exists():
        raise UsageError(
            f"kernel tree {path} does not exist",
            "run `kseries tree fetch` or pass --tree PATH to a kernel git checkout",
        )
    if not g.is_repo(path):
        raise UsageError(
            f"{path} is not a git repository",
            "pass --tree PATH to a kernel git checkout, or remove it and run `kseries tree fetch`",
        )
    if not (path / "Makefile").is_file() or not (path / "Kconfig").is_file():
        raise UsageError(f"{path} does not look like a kernel tree (no Makefile/Kconfig)",
                         "pass --tree PATH to the top of a kernel source tree")
    tree = Tree(path=path.resolve(), base=base)
    tree.base_commit()
    return tree


def ensure(lay: Layout, progress: Progress) -> Tree:
    """The tree a job builds: fetched first when it is the pinned one."""
    if lay.tree == lay.pinned_tree:
        fetch(lay.manifest, lay.pinned_tree, cache=lay.kernel_cache, progress=progress)
    return open_tree(lay.tree, lay.base)


def download_deb(manifest: Manifest, cache: Path, progress: Progress) -> Path:
    """Return the pinned .deb from the cache, downloading it if needed."""
    pin = debs.Pin(manifest.package, manifest.debian_version, manifest.deb_sha256, "all",
                  manifest.path)
    return debs.download(pin, cache, progress,
                        " (debian_version and both sha256), then run `kseries apply` to see "
                        "whether the series still applies")


def _strip_debian_ignore(tree: Path) -> None:
    gitignore = tree / ".gitignore"
    if not gitignore.exists():
        return
    lines = gitignore.read_text().splitlines(keepends=True)
    kept = [line for line in lines if line.strip() not in _DEBIAN_IGNORE_LINES]
    gitignore.write_text("".join(kept))


def import_into_git(src: Path, manifest: Manifest, progress: Progress,
                    min_files: int = 10000) -> None:
    """Make ``src`` a git repo with one commit of the whole tree, tagged."""
    _strip_debian_ignore(src)
    g.git(src, "init", "-q", "-b", "master")
    # No `git gc --auto` in this repository: after the commit it would
    # repack ~90k loose objects in the background, for minutes, while the
    # first kernel build wants both cores.  Nor a pack here: measured on
    # this tree, `git repack -a -d` takes 90 s (54 s without deltas) and
    # saves 7.5 s per `git worktree add` (19.3 s loose, 11.8 s packed),
    # which a checkout does once.  `git gc` by hand packs it any time.
    g.git(src, "config", "gc.auto", "0")
    with progress.stage("git import"):
        # -f: the commit is the tarball as shipped.  The tree's own ignore
        # rules would leave out every .gitignore and top-level dotfile
        # (.gitattributes, .mailmap, ...) that Debian's .gitignore hides.
        g.git(src, "add", "-A", "-f")
        count = len(g.git(src, "ls-files", "--cached").stdout.splitlines())
        if count < min_files:
            raise InfraError(f"only {count} files were added to git from {src}",
                             "the .gitignore still hides the tree; report this bug")
        message = (f"Linux {manifest.kernel_version} ({manifest.package} "
                   f"{manifest.debian_version})\n\nImported by kseries from Debian's "
                   f"{manifest.deb_name}, tarball sha256 {manifest.tarball_sha256}.\n")
        g.git(src, "commit", "-q", "--no-verify", "-m", message, env=IMPORT_IDENTITY)
        g.git(src, "tag", "-a", manifest.tag, "-m", f"kseries base {manifest.tag}",
              env=IMPORT_IDENTITY)
        progress.say(f"imported {count} files as {g.out(src, 'rev-parse', 'HEAD')[:12]} "
                     f"tagged {manifest.tag}")



def is_imported(path: Path, manifest: Manifest) -> bool:
    return g.is_repo(path) and g.rev(path, manifest.tag) is not None


def fetch(manifest: Manifest, dest: Path, deb: Path | None = None,
          progress: Progress | None = None, min_files: int = 10000,
          cache: Path | None = None) -> Tree:
    """Fetch, verify, unpack and import the pinned tree into ``dest`` (idempotent).

    The .deb is ``deb`` when given, else downloaded into ``cache``
    (``Places.kernel_cache``).
    """
    progress = progress or Progress()
    dest = dest.resolve()
    if is_imported(dest, manifest):
        progress.say(f"kernel tree already present at {dest} (tag {manifest.tag}): nothing to do")
        return Tree(dest, manifest.tag)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UsageError(f"{dest} exists but is not an import of {manifest.tag}",
                         "move it away (nothing is deleted automatically) and fetch again, "
                         "or use it with --tree PATH --base REF")
    if deb is None:
        if cache is None:
            raise ValueError("tree.fetch needs a cache directory or a .deb")
        deb = download_deb(manifest, cache, progress)
    elif not deb.is_file():
        raise UsageError(f"--deb {deb} does not exist", "give the path of the downloaded .deb")
    check_hash(deb, manifest.deb_sha256, "package")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".fetch-") as tmp:
        tmpdir = Path(tmp)
        with progress.stage(f"unpack {deb.name}"):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(tmpdir / "deb")], check=True)
            tarball = tmpdir / "deb" / manifest.tarball
            if not tarball.is_file():
                raise UsageError(f"{deb.name} has no {manifest.tarball}",
                                 "fix `tarball` in kernel-tree/manifest.toml")
            check_hash(tarball, manifest.tarball_sha256, "tarball")
            subprocess.run(["tar", "-xf", str(tarball), "-C", str(tmpdir)], check=True)
            shutil.rmtree(tmpdir / "deb")
        src = tmpdir / manifest.topdir
        if not (src / "Makefile").is_file():
            raise UsageError(f"the tarball did not unpack to {manifest.topdir}/",
                             "fix `topdir` in kernel-tree/manifest.toml")
        import_into_git(src, manifest, progress, min_files)
        if dest.exists():
            dest.rmdir()
        src.rename(dest)
    progress.say(f"kernel tree ready at {dest}")
    return Tree(dest, manifest.tag)
