"""Turn what the user gave (a directory, an mbox, a git range) into patches.

A directory is read with :func:`kseries.series.list_patches` (``series``
file order).  An mbox is split with ``git mailsplit``; a cover letter
("[PATCH 0/N]") is dropped.  A git range ``A..B`` in the tree is turned
into patch files with ``git format-patch``.  Every patch gets a
``git patch-id --stable`` and a hash of its commit message, which
together key the resume cache.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
import shutil
import subprocess
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from .. import series
from ..errors import UsageError
from .model import PatchInfo

_PREFIX = re.compile(r"^(?:\s*\[[^\]]*\])+\s*")
_COVER = re.compile(r"^\s*\[[^\]]*\b0+/\d+\]")
_DIFF = re.compile(r"^(?:diff --git |--- \S)", re.M)


@dataclass(frozen=True)
class SeriesInput:
    patches: list[PatchInfo]
    source: str  # what the user gave, for the reports
    base: str | None = None  # set by a git range (its start)


def parse_message(path: Path) -> EmailMessage:
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def _unfold(value: str) -> str:
    return re.sub(r"\s*\n\s*", " ", value).strip()


def subject_of(msg: EmailMessage) -> str:
    return _PREFIX.sub("", _unfold(str(msg.get("Subject", ""))))


def body_of(msg: EmailMessage) -> str:
    payload = msg.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload.decode(msg.get_content_charset() or "utf-8", errors="replace")
    return str(msg.get_payload())


def commit_message(body: str) -> str:
    """The commit message part of a patch mail body (before ``---``)."""
    m = re.search(r"^---\s*$", body, re.M) or _DIFF.search(body)
    return body[:m.start()] if m else body


def patch_id(path: Path) -> str:
    proc = subprocess.run(["git", "patch-id", "--stable"], input=path.read_bytes(),
                          capture_output=True, check=False)
    out = proc.stdout.decode(errors="replace").split()
    return out[0] if out else ""


def describe(index: int, path: Path, name: str | None = None) -> PatchInfo:
    msg = parse_message(path)
    subject = subject_of(msg)
    author = _unfold(str(msg.get("From", "")))
    text = commit_message(body_of(msg))
    key = hashlib.sha256(f"{subject}\0{author}\0{text}".encode()).hexdigest()
    return PatchInfo(index=index, name=name or path.name, path=path.resolve(), subject=subject,
                     author=author, patch_id=patch_id(path), message_key=key,
                     message_id=_unfold(str(msg.get("Message-Id", ""))))


def from_directory(directory: Path) -> SeriesInput:
    paths = series.list_patches(directory)
    if not paths:
        raise UsageError(f"{directory} holds no patches (no *.patch files, no series file)",
                         "give a directory of `git format-patch` output, an mbox or a range")
    return SeriesInput([describe(i, p) for i, p in enumerate(paths, 1)], str(directory))


def _slug(subject: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", subject).strip("-")[:52] or "patch"


def from_mbox(mbox: Path, workdir: Path) -> SeriesInput:
    """Split an mbox into one file per message and describe each patch."""
    text = mbox.read_bytes()[:4096]
    if not text.startswith(b"From ") and not re.match(rb"^[A-Za-z-]+: ", text):
        raise UsageError(f"{mbox} is neither an mbox nor a patch (no 'From ' line at the start)",
                         "give an mbox (b4 am -o - ...), a patch directory or a git range")
    split = workdir / "input"
    shutil.rmtree(split, ignore_errors=True)
    split.mkdir(parents=True)
    proc = subprocess.run(["git", "mailsplit", "-b", f"-o{split}", str(mbox)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise UsageError(f"git mailsplit could not read {mbox}: {proc.stderr.strip()}",
                         "check that the file is an mbox")
    patches: list[PatchInfo] = []
    for path in sorted(split.iterdir()):
        msg = parse_message(path)
        if _COVER.match(str(msg.get("Subject", ""))):
            continue
        if not _DIFF.search(body_of(msg)):
            raise UsageError(f"message {path.name} of {mbox} ({subject_of(msg)!r}) holds no diff",
                             "the mbox must hold the series' patches (a cover letter is fine)")
        index = len(patches) + 1
        dest = split / f"{index:04d}-{_slug(subject_of(msg))}.patch"
        path.rename(dest)
        patches.append(describe(index, dest))
    if not patches:
        raise UsageError(f"{mbox} holds no patches", "give an mbox with the series' patches")
    return SeriesInput(patches, str(mbox))


def from_range(tree: Path, spec: str, workdir: Path) -> SeriesInput:
    """``A..B`` in the tree: format-patch it, base is A."""
    base, _, tip = spec.partition("..")
    if not base or not tip:
        raise UsageError(f"{spec!r} is not a git range", "write it as BASE..TIP")
    out = workdir / "input"
    shutil.rmtree(out, ignore_errors=True)
    proc = subprocess.run(["git", "format-patch", "--zero-commit", "--no-signature",
                           "-o", str(out), spec], cwd=tree, capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise UsageError(f"git format-patch {spec} failed in {tree}: {proc.stderr.strip()}",
                         "check the refs with `git log --oneline BASE..TIP` in the tree")
    files = [Path(line) for line in proc.stdout.splitlines() if line.strip()]
    if not files:
        raise UsageError(f"the range {spec} holds no commits", "give BASE..TIP with commits")
    return SeriesInput([describe(i, p) for i, p in enumerate(files, 1)], spec, base=base)


def load(spec: str | None, default_dir: Path, tree: Path, workdir: Path) -> SeriesInput:
    """Whatever the user gave on the command line, or the project's patches/."""
    if spec is None:
        return from_directory(default_dir)
    path = Path(spec)
    if path.is_dir():
        return from_directory(path.resolve())
    if path.is_file():
        return from_mbox(path.resolve(), workdir)
    if ".." in spec and not path.exists():
        return from_range(tree, spec, workdir)
    raise UsageError(f"input {spec!r} is not a directory, a file or a git range",
                     "give a patch directory, an mbox file, or BASE..TIP with --tree")
