"""Read the emails b4 wrote back, check the thread, and bundle it as an mbox."""

from __future__ import annotations

import email
import email.policy
import mailbox
import re
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from ..errors import KseriesError

_COUNTER = re.compile(r"\[(?P<prefix>[^\]]*?)\s*(?P<n>\d+)/(?P<total>\d+)\]")


@dataclass(frozen=True)
class Mail:
    path: Path
    message: EmailMessage

    @property
    def subject(self) -> str:
        return " ".join(str(self.message["Subject"]).split())

    @property
    def counter(self) -> tuple[int, int]:
        m = _COUNTER.search(self.subject)
        return (int(m.group("n")), int(m.group("total"))) if m else (1, 1)

    @property
    def prefix(self) -> str:
        m = _COUNTER.search(self.subject)
        return m.group("prefix") if m else ""


def read(path: Path) -> EmailMessage:
    with path.open("rb") as fh:
        msg = email.message_from_binary_file(fh, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def load(outdir: Path) -> list[Mail]:
    """The ``*.eml`` files in order (b4 names them NNNN-slug.eml)."""
    return [Mail(p, read(p)) for p in sorted(outdir.glob("*.eml"))]


def check_thread(mails: list[Mail], expected_patches: int) -> list[str]:
    """Problems with the thread; empty when it is a well-formed posting."""
    problems: list[str] = []
    if len(mails) != expected_patches + 1:
        return [f"{len(mails)} emails written, expected {expected_patches} patches "
                "and a cover letter"]
    cover = mails[0]
    cover_id = str(cover.message["Message-Id"] or "")
    if cover.counter != (0, expected_patches):
        problems.append(f"the first email is not the cover letter 0/{expected_patches}: "
                        f"{cover.subject}")
    if not cover_id:
        problems.append("the cover letter has no Message-Id")
    seen = {cover_id}
    for i, mail in enumerate(mails[1:], 1):
        msg = mail.message
        for header in ("From", "To", "Subject", "Date", "Message-Id"):
            if not msg[header]:
                problems.append(f"{mail.path.name} has no {header} header")
        if mail.counter != (i, expected_patches):
            problems.append(f"{mail.path.name} is numbered {mail.counter}, expected "
                            f"{i}/{expected_patches}")
        if str(msg["In-Reply-To"] or "") != cover_id or cover_id not in str(
                msg["References"] or ""):
            problems.append(f"{mail.path.name} is not threaded to the cover letter")
        mid = str(msg["Message-Id"] or "")
        if mid in seen:
            problems.append(f"{mail.path.name} repeats Message-Id {mid}")
        seen.add(mid)
        body = msg.get_content() if not msg.is_multipart() else ""
        if "\ndiff --git " not in body:
            problems.append(f"{mail.path.name} has no diff in its body")
    return problems


def write_mbox(mails: list[Mail], path: Path) -> Path:
    """All emails in one mbox, the form ``b4 am -m`` and mail clients read."""
    if path.exists():
        path.unlink()
    box = mailbox.mbox(str(path))
    try:
        for mail in mails:
            box.add(mail.path.read_bytes())
        box.flush()
    finally:
        box.close()
    return path


def require_thread(mails: list[Mail], expected_patches: int) -> None:
    problems = check_thread(mails, expected_patches)
    if problems:
        raise KseriesError("b4 wrote a malformed posting: " + "; ".join(problems),
                           "this is a bug in the submission path; report it")
