"""Turn what the user gave (a directory, an mbox, a git range) into patches.

A directory is read with :func:`kseries.series.list_patches` (``series``
file order).  An mbox is split with ``git mailsplit`` and read the way a
maintainer receives a thread: the cover letter ("[PATCH 0/N]") and the
replies ("Re: ...") are dropped, the newest version ("[PATCH v2 k/N]")
is kept, and the patches are ordered by k, whatever order the messages
came in; a series with a patch missing is refused.  A git range ``A..B`` in the tree is turned
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
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from .. import series
from ..errors import UsageError
from ..git import git, patch_id
from .model import PatchInfo

_PREFIX = re.compile(r"^(?:\s*\[[^\]]*\])+\s*")
_COVER = re.compile(r"^\s*\[[^\]]*\b0+/\d+\]")
_DIFF = re.compile(r"^(?:diff --git |--- \S)", re.M)
_REPLY = re.compile(r"^\s*(?:re|aw|fwd?)\s*:", re.I)
_BRACKETS = re.compile(r"^\s*((?:\[[^\]]*\]\s*)+)")
_K_OF_N = re.compile(r"\b(\d+)/(\d+)\b")
_VERSION = re.compile(r"\bv(\d+)\b", re.I)


@dataclass(frozen=True)
class SeriesInput:
    patches: list[PatchInfo]
    source: str  # what the user gave, for the reports
    base: str | None = None  # set by a git range (its start)
    notes: tuple[str, ...] = ()  # what was left out of the input, and why


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


def numbering(subject: str) -> tuple[int, int, int] | None:
    """(version, k, n) from a subject's bracketed prefix: "[PATCH v2 3/5]" is
    (2, 3, 5), "[PATCH]" is None; a prefix without a version is version 1."""
    m = _BRACKETS.match(_unfold(subject))
    if not m:
        return None
    prefix = m.group(1)
    kn = _K_OF_N.search(prefix)
    if not kn:
        return None
    version = _VERSION.search(prefix)
    return int(version.group(1)) if version else 1, int(kn.group(1)), int(kn.group(2))


@dataclass(frozen=True)
class _Mail:
    path: Path
    subject: str  # without the prefix
    number: tuple[int, int, int] | None


def _select(mails: list[_Mail], mbox: Path) -> tuple[list[_Mail], list[str]]:
    """The newest version's patches in k order, and notes on what was dropped."""
    numbered = [m for m in mails if m.number is not None]
    if not numbered:
        return mails, []
    if len(numbered) != len(mails):
        loose = next(m for m in mails if m.number is None)
        raise UsageError(f"{mbox} mixes numbered patches with an unnumbered one "
                         f"({loose.subject!r})",
                         "give one series: `b4 am -o - MSGID` writes it as an mbox")
    notes = []
    newest = max(m.number[0] for m in numbered if m.number)
    older = [m for m in numbered if m.number and m.number[0] != newest]
    if older:
        versions = sorted({m.number[0] for m in older if m.number})
        notes.append(f"left out {len(older)} patch(es) of older version(s) "
                     f"{', '.join(f'v{v}' for v in versions)}; checking v{newest}")
    kept = sorted((m for m in numbered if m.number and m.number[0] == newest),
                  key=lambda m: m.number[1] if m.number else 0)
    total = {m.number[2] for m in kept if m.number}
    ks = [m.number[1] for m in kept if m.number]
    if len(total) != 1:
        raise UsageError(f"the v{newest} patches of {mbox} disagree on the patch count "
                         f"({', '.join(str(n) for n in sorted(total))})",
                         "give one series: `b4 am -o - MSGID` writes it as an mbox")
    n = total.pop()
    dupes = sorted({k for k in ks if ks.count(k) > 1})
    if dupes:
        raise UsageError(f"{mbox} has two messages for patch {dupes[0]}/{n} of v{newest}",
                         "give one copy of the series: `b4 am -o - MSGID` writes it as an mbox")
    missing = [k for k in range(1, n + 1) if k not in ks]
    if missing:
        raise UsageError(f"{mbox} lacks patch(es) {', '.join(f'{k}/{n}' for k in missing)} "
                         f"of v{newest}", "fetch the whole thread (`b4 am MSGID`) and retry")
    if [m.path for m in kept] != [m.path for m in numbered if m in kept]:
        notes.append("ordered by [k/N], not by the order of the messages")
    return kept, notes


def from_mbox(mbox: Path, workdir: Path) -> SeriesInput:
    """Split an mbox into one file per message and describe each patch."""
    text = mbox.read_bytes()[:4096]
    if not text.startswith(b"From ") and not re.match(rb"^[A-Za-z-]+: ", text):
        raise UsageError(f"{mbox} is neither an mbox nor a patch (no 'From ' line at the start)",
                         "give an mbox (b4 am -o - ...), a patch directory or a git range")
    split = workdir / "input"
    shutil.rmtree(split, ignore_errors=True)
    split.mkdir(parents=True)
    proc = git(split, "mailsplit", "-b", f"-o{split}", str(mbox), check=False)
    if proc.returncode != 0:
        raise UsageError(f"git mailsplit could not read {mbox}: {proc.stderr.strip()}",
                         "check the file is an mbox")
    mails: list[_Mail] = []
    replies = 0
    for path in sorted(split.iterdir()):
        msg = parse_message(path)
        raw_subject = _unfold(str(msg.get("Subject", "")))
        if _REPLY.match(raw_subject):
            replies += 1
            continue
        if _COVER.match(raw_subject):
            continue
        if not _DIFF.search(body_of(msg)):
            raise UsageError(f"message {path.name} of {mbox} ({subject_of(msg)!r}) holds no "
                             "diff and is not a reply",
                             "give the series' patches: `b4 am -o - MSGID` writes a thread's "
                             "patches as an mbox")
        mails.append(_Mail(path, subject_of(msg), numbering(raw_subject)))
    if not mails:
        what = f" ({replies} replies left out)" if replies else ""
        raise UsageError(f"{mbox} holds no patches{what}",
                         "give the thread's patches: `b4 am -o - MSGID` writes them as an mbox")
    kept, notes = _select(mails, mbox)
    if replies:
        notes.insert(0, f"left out {replies} repl{'y' if replies == 1 else 'ies'}")
    patches: list[PatchInfo] = []
    for index, mail in enumerate(kept, 1):
        dest = split / f"{index:04d}-{_slug(mail.subject)}.patch"
        mail.path.rename(dest)
        patches.append(describe(index, dest))
    return SeriesInput(patches, str(mbox), notes=tuple(notes))


def from_range(tree: Path, spec: str, workdir: Path) -> SeriesInput:
    """``A..B`` in the tree: format-patch it, base is A."""
    base, _, tip = spec.partition("..")
    if not base or not tip:
        raise UsageError(f"{spec!r} is not a git range", "write it as BASE..TIP")
    out = workdir / "input"
    shutil.rmtree(out, ignore_errors=True)
    proc = git(tree, "format-patch", "--zero-commit", "--no-signature", "-o", str(out), spec,
               check=False)
    if proc.returncode != 0:
        raise UsageError(f"git format-patch {spec} failed in {tree}: {proc.stderr.strip()}",
                         "check the refs with `git log --oneline BASE..TIP` in the tree")
    files = [Path(line) for line in proc.stdout.splitlines() if line.strip()]
    if not files:
        raise UsageError(f"the range {spec} holds no commits", "give BASE..TIP with commits")
    return SeriesInput([describe(i, p) for i, p in enumerate(files, 1)], spec, base=base)


def load(spec: str | None, default_dir: Path, tree: Path, workdir: Path,
         thread_mbox: Path | None = None) -> SeriesInput:
    """Whatever the user gave on the command line, or the project's patches/."""
    from . import thread

    if spec is None:
        return from_directory(default_dir)
    path = Path(spec)
    if path.is_dir():
        return from_directory(path.resolve())
    if path.is_file():
        return from_mbox(path.resolve(), workdir)
    msgid = thread.msgid_of(spec)
    if msgid is not None:
        return thread.fetch(msgid, thread_mbox, workdir)
    if ".." in spec and not path.exists():
        return from_range(tree, spec, workdir)
    raise UsageError(f"input {spec!r} is not a directory, a file, a git range or a message-id",
                     "give a patch directory, an mbox file, BASE..TIP with --tree, or a "
                     "message-id or lore URL with --thread FILE")
