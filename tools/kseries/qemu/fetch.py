"""Obtain the pinned QEMU tree: download, verify, unpack, import into git.

The orig tarball is imported as one commit with a fixed author,
committer and date (tag ``import_tag``), the build fixes of
``qemu-tree/fixes/`` are applied on top with ``git am`` the same way,
and the result is tagged ``tag``: the base of patches/qemu, with the same
commit id on every machine.  The base tag's message records the tarball's
and each fix's sha256, so a tree imported from another pin is noticed.
"""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
from pathlib import Path

from ..errors import UsageError
from ..git import git
from ..progress import Progress
from ..series import list_patches
from ..tree import IMPORT_IDENTITY as IDENTITY
from . import download, sources
from .manifest import QemuManifest


def fix_patches(man: QemuManifest) -> list[Path]:
    """The build fixes in order (none when the directory does not exist)."""
    return list_patches(man.fixes_dir) if man.fixes_dir.is_dir() else []


def base_note(man: QemuManifest) -> str:
    """The base tag's message: what the import is made of."""
    lines = [f"kseries base {man.tag}: QEMU {man.version} from {man.spec}", "",
             f"{man.tarball} sha256 {man.tarball_sha256}"]
    for patch in fix_patches(man):
        lines.append(f"fix {patch.name} sha256 {hashlib.sha256(patch.read_bytes()).hexdigest()}")
    return "\n".join(lines)


def is_imported(dest: Path, man: QemuManifest) -> bool | None:
    """True: the pinned import; False: something else is there; None: nothing is."""
    if not dest.exists() or (dest.is_dir() and not any(dest.iterdir())):
        return None
    if not (dest / ".git").exists():
        return False
    proc = git(dest, "for-each-ref", "--format=%(contents)", f"refs/tags/{man.tag}",
               check=False)
    return proc.returncode == 0 and proc.stdout.strip() == base_note(man).strip()


def _tarball(man: QemuManifest, given: Path | None, progress: Progress) -> Path:
    if given is not None:
        if not given.is_file():
            raise UsageError(f"--tarball {given} does not exist",
                             f"give the path of a downloaded {man.tarball}")
        download.check(given, man.tarball_size, man.tarball_sha256, "tarball",
                       f"give the pinned {man.tarball}, or leave out --tarball to download it")
        return given
    cached = man.cache_dir / man.tarball
    if download.matches(cached, man.tarball_size, man.tarball_sha256):
        progress.say(f"qemu: using cached {cached}")
        return cached
    entry = sources.lookup(man, progress)
    download.fetch(man.url(entry.directory), cached, man.tarball_size, man.tarball_sha256,
                   progress)
    return cached


def import_tree(src: Path, man: QemuManifest, progress: Progress) -> str:
    """Make ``src`` a git repository: the tarball, tagged, then the fixes, tagged."""
    git(src, "init", "-q", "-b", "master")
    # No background `git gc --auto` while the first build wants both cores.
    git(src, "config", "gc.auto", "0")
    with progress.stage("qemu: git import"):
        # -f: the commit is the tarball as shipped, whatever QEMU's .gitignore says.
        git(src, "add", "-A", "-f")
        message = (f"QEMU {man.version} ({man.spec})\n\nImported by kseries from Debian's "
                   f"{man.tarball}, sha256 {man.tarball_sha256}.\n")
        git(src, "commit", "-q", "--no-verify", "-m", message, env=IDENTITY)
        git(src, "tag", "-a", man.import_tag, "-m", f"kseries import of {man.tarball}",
            env=IDENTITY)
    fixes = fix_patches(man)
    for i, patch in enumerate(fixes, 1):
        progress.say(f"qemu: build fix [{i}/{len(fixes)}] {patch.name}")
        proc = git(src, "am", "-q", "--committer-date-is-author-date", str(patch.resolve()),
                   check=False, env=IDENTITY)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
            raise UsageError(f"build fix {patch.name} does not apply to {man.tarball}: {last}",
                             f"update or drop it in {man.fixes_dir} (it was made for another "
                             "QEMU version?)")
    git(src, "tag", "-a", man.tag, "-m", base_note(man), env=IDENTITY)
    return git(src, "rev-parse", "HEAD").stdout.strip()


def fetch(man: QemuManifest, progress: Progress, tarball: Path | None = None) -> Path:
    """The pinned tree at ``man.tree_dir`` (idempotent: nothing to do when present)."""
    dest = man.tree_dir
    state = is_imported(dest, man)
    if state:
        progress.say(f"qemu: tree already present at {dest} (tag {man.tag}): nothing to do")
        return dest
    if state is False:
        raise UsageError(f"{dest} exists but is not the import of {man.tarball} with the "
                         f"fixes in {man.fixes_dir} (no matching tag {man.tag})",
                         "move it away (nothing is deleted automatically) and run "
                         "`kseries qemu fetch` again")
    path = _tarball(man, tarball, progress)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".fetch-") as tmp:
        tmpdir = Path(tmp)
        with progress.stage(f"qemu: unpack {path.name}"):
            # --no-same-owner: as root, tar would keep the tarball's uids, and git
            # refuses a repository owned by another user ("dubious ownership").
            subprocess.run(["tar", "--no-same-owner", "-xf", str(path), "-C", str(tmpdir)],
                           check=True)
        src = tmpdir / man.topdir
        if not (src / "configure").is_file() or not (src / "meson.build").is_file():
            raise UsageError(f"{path.name} did not unpack to a QEMU tree in {man.topdir}/",
                             f"fix `topdir` in {man.path}")
        head = import_tree(src, man, progress)
        if dest.exists():
            dest.rmdir()
        src.rename(dest)
    progress.say(f"qemu: tree ready at {dest}, base {man.tag} = {head[:12]}")
    return dest
