"""Apply patches/ to a branch of the kernel tree, and export it back.

``apply`` creates the series branch from the base and runs ``git am``
one patch at a time, so a failure names the patch and the file.
``export`` runs ``git format-patch`` with options that make its output
depend only on the commits (zeroed From line, no git version
signature, a fixed cover letter date), so the same branch always gives
byte-identical files.  The cover letter's subject and text live in the
branch description while the series is in the tree.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import git as g
from .errors import KseriesError, UsageError
from .git import git
from .progress import Progress

COVER = "0000-cover-letter.patch"
# What `git format-patch --cover-letter` writes for the author to replace.
COVER_PLACEHOLDERS = ("*** SUBJECT HERE ***", "*** BLURB HERE ***")
SERIES_FILE = "series"
_COVER_NAME = re.compile(r"^(?:v\d+-)?0000-cover-letter\.patch$")
_PATCH_FAILED = re.compile(r"^error: (?:patch failed: (\S+?):(\d+)|(\S+): (.*))$", re.M)
_SUBJECT = re.compile(r"^Subject: (?:\[[^\]]*\] ?)?(.*(?:\n[ \t].*)*)", re.M)


@dataclass(frozen=True)
class ApplyResult:
    branch: str
    applied: list[str]
    head: str


def list_patches(patches_dir: Path) -> list[Path]:
    """Patches in order: the ``series`` file if present, else by name."""
    if not patches_dir.is_dir():
        raise UsageError(f"patch directory {patches_dir} does not exist",
                         "create it with `kseries export` or pass the right directory")
    series = patches_dir / SERIES_FILE
    if series.exists():
        names = [line.strip() for line in series.read_text().splitlines()
                 if line.strip() and not line.strip().startswith("#")]
        paths = [patches_dir / name for name in names]
        for path in paths:
            if not path.is_file():
                raise UsageError(f"{series} lists {path.name}, which does not exist",
                                 "regenerate patches/ with `kseries export`")
    else:
        # `git format-patch -v2 --cover-letter` names it v2-0000-cover-letter.patch.
        paths = sorted(p for p in patches_dir.glob("*.patch") if not _COVER_NAME.match(p.name))
    for path in paths:
        head = path.read_text(errors="replace")[:4096]
        if not head.startswith("From ") or "\nSubject:" not in head:
            raise UsageError(f"{path} is not a git format-patch file (no From/Subject header)",
                             "remove it from the patch directory or regenerate the series")
    return paths


def cover_text(patches_dir: Path) -> str | None:
    """Subject line and body of the cover letter, without the shortlog."""
    cover = patches_dir / COVER
    if not cover.exists():
        return None
    text = cover.read_text()
    header, _, body = text.partition("\n\n")
    m = _SUBJECT.search(header)
    subject = re.sub(r"\s*\n[ \t]+", " ", m.group(1)).strip() if m else "vhost-blk"
    # format-patch appends the shortlog after the description; cut it.
    body = re.split(r"\n[^\n]+ \(\d+\):\n", body, maxsplit=1)[0]
    body = body.split("\n---\n")[0].rstrip()
    return f"{subject}\n\n{body}\n"


def _check_clean(repo: Path) -> None:
    if g.is_dirty(repo):
        raise UsageError(f"the kernel tree {repo} has uncommitted changes",
                         "commit or stash them first (nothing is overwritten)")
    if (g.git_dir(repo) / "rebase-apply").exists():
        raise UsageError(f"a `git am` is in progress in {repo}",
                         "finish it or run `git am --abort` there")


def am_failure(patch: Path, stderr: str) -> KseriesError:
    # git am says "patch failed: FILE:LINE" and then "FILE: patch does not
    # apply" for the same file: name each file once, with its line.
    failed_at = {m.group(1): m.group(2) for m in _PATCH_FAILED.finditer(stderr) if m.group(1)}
    files = [f"{path}:{line}" for path, line in failed_at.items()]
    files += [f"{m.group(3)} ({m.group(4)})" for m in _PATCH_FAILED.finditer(stderr)
              if m.group(3) and m.group(3) not in failed_at]
    if files:
        where = ", ".join(dict.fromkeys(files))
    else:
        lines = stderr.strip().splitlines()
        where = lines[-1] if lines else "git am failed without a message"
    return KseriesError(f"patch {patch.name} does not apply: {where}",
                        "rebase the series onto the base in the tree, commit, and "
                        "run `kseries export`")


def _committer_env(repo: Path) -> dict[str, str]:
    """A committer identity for git am on a machine that has none (CI)."""
    if g.config_get(repo, "user.email"):
        return {}
    return {"GIT_COMMITTER_NAME": "kseries", "GIT_COMMITTER_EMAIL": "kseries@invalid"}


def apply(repo_path: Path, base: str, branch: str, patches_dir: Path,
          progress: Progress, force: bool = False) -> ApplyResult:
    """Create ``branch`` at ``base`` and ``git am`` every patch onto it."""
    patches = list_patches(patches_dir)
    if not patches:
        raise UsageError(f"{patches_dir} holds no patches",
                         "export a series into it with `kseries export` first")
    repo = repo_path
    _check_clean(repo)
    # Where to go back to when a patch does not apply: the branch, or a detached HEAD.
    on_branch = git(repo, "symbolic-ref", "-q", "--short", "HEAD", check=False)
    previous = (on_branch.stdout.strip() if on_branch.returncode == 0
                else g.out(repo, "rev-parse", "HEAD"))
    base_sha = g.rev(repo, base)
    if base_sha is None:
        raise UsageError(f"base {base!r} does not exist in {repo_path}",
                         "fetch the pinned tree or give --base REF")
    if (g.branch_exists(repo, branch) and not force
            and g.out(repo, "rev-list", "--count", f"{base_sha}..{branch}") != "0"):
        raise UsageError(f"branch {branch} already exists in {repo_path} with commits",
                         "export it first if it has work, then use --force to recreate it")
    git(repo, "checkout", "-q", "-B", branch, base_sha)
    description = cover_text(patches_dir)
    if description:
        git(repo, "config", f"branch.{branch}.description", description)
    env = _committer_env(repo)
    for i, patch in enumerate(patches, 1):
        progress.say(f"apply [{i}/{len(patches)}] {patch.name}")
        proc = git(repo, "am", "--committer-date-is-author-date", str(patch.resolve()),
                   env=env, check=False)
        if proc.returncode != 0:
            git(repo, "am", "--abort", check=False)
            git(repo, "checkout", "-q", previous if previous != branch else base_sha)
            git(repo, "branch", "-D", branch)
            raise am_failure(patch, proc.stderr)
    return ApplyResult(branch, [p.name for p in patches], g.out(repo, "rev-parse", "HEAD"))


def export(repo_path: Path, base: str, branch: str, patches_dir: Path,
           progress: Progress, reroll: int | None = None) -> list[Path]:
    """Regenerate ``patches_dir`` from ``base..branch``, reproducibly."""
    repo = repo_path
    if not g.branch_exists(repo, branch):
        raise UsageError(f"branch {branch} does not exist in {repo_path}",
                         "run `kseries apply` first, or give --branch")
    base_sha = g.rev(repo, base)
    if base_sha is None:
        raise UsageError(f"base {base!r} does not exist in {repo_path}",
                         "fetch the pinned tree or give --base REF")
    count = int(g.out(repo, "rev-list", "--count", f"{base}..{branch}"))
    if count == 0:
        raise UsageError(f"branch {branch} has no commits on top of {base}",
                         "commit the series in the tree first")
    if not g.config_get(repo, f"branch.{branch}.description"):
        git(repo, "config", f"branch.{branch}.description",
            "vhost-blk: in-kernel virtio-blk backend\n\n*** BLURB HERE ***\n")
    with tempfile.TemporaryDirectory() as tmp:
        args = ["--zero-commit", "--no-signature", "--cover-letter",
                "--cover-from-description=subject", f"--base={base_sha}",
                "--no-attach", "--no-thread", "-o", tmp, f"{base}..{branch}"]
        if reroll:
            args.insert(0, f"-v{reroll}")
        out = git(repo, "format-patch", *args,
                  env={"GIT_COMMITTER_DATE": "2000-01-01T00:00:00Z"}).stdout
        files = [Path(line) for line in out.splitlines() if line.strip()]
        for path in files:
            _stabilise(path, repo, branch)
        patches_dir.mkdir(parents=True, exist_ok=True)
        for old in patches_dir.glob("*.patch"):
            old.unlink()
        written = []
        for path in files:
            name = re.sub(r"^v\d+-", "", path.name)
            dest = patches_dir / name
            shutil.copyfile(path, dest)
            written.append(dest)
    names = [p.name for p in written if p.name != COVER]
    (patches_dir / SERIES_FILE).write_text("\n".join(names) + "\n")
    progress.say(f"exported {len(names)} patches and a cover letter to {patches_dir}")
    return written


def _stabilise(path: Path, repo: Path, branch: str) -> None:
    """Give the cover letter the tip's author and date, not the local ones.

    Message-Id and threading headers are left to the sending tool (b4).
    """
    if not path.name.endswith(COVER):
        return
    date, author = git(repo, "log", "-1", "--format=%aD%x00%an <%ae>",
                       branch).stdout.rstrip("\n").split("\0")
    text = path.read_text()
    text = re.sub(r"^Date: .*$", lambda _: f"Date: {date}", text, count=1, flags=re.M)
    # A long From header is folded onto continuation lines; replace them too.
    text = re.sub(r"^From: .*(?:\n[ \t].*)*$", lambda _: f"From: {author}", text, count=1,
                  flags=re.M)
    path.write_text(text)
