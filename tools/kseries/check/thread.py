"""A series named by a message-id or a lore/patchwork URL, fetched with ``b4 am``.

A maintainer names a series by one of its messages: ``<id@host>``,
``id@host``, ``https://lore.kernel.org/LIST/ID/``, ``.../r/ID``,
``https://patch.msgid.link/ID`` or a patchwork patch URL
``https://patchwork.kernel.org/project/P/patch/ID/``.  check-series hands
the Message-Id to ``b4 am``, which picks the newest revision of the
thread, orders its patches, adds the reviewers' trailers and leaves the
cover letter and the replies out.  No network is reachable here, so b4
runs in offline mode on a local copy of the thread (``--thread FILE``,
``b4 am -m FILE``; lore's ``t.mbox.gz`` of the thread, gunzipped, is
one).  Without a local copy the run stops with one line saying so.
"""

from __future__ import annotations

import re
import shutil
import urllib.parse
from pathlib import Path

from ..errors import KseriesError, UsageError
from ..submit import b4run
from . import inputs

_BARE = re.compile(r"^<?([^\s<>/@]+@[^\s<>/@]+?)>?$")
_URL = re.compile(r"^https?://", re.I)
NAME = "series"  # b4 am -n: OUT/series.mbx, OUT/series.cover


def msgid_of(spec: str) -> str | None:
    """The Message-Id ``spec`` names (without <>), or None if it names no message."""
    if _URL.match(spec):
        parts = [urllib.parse.unquote(p) for p in urllib.parse.urlsplit(spec).path.split("/")]
        for part in parts:
            m = _BARE.match(part)
            if m:
                return m.group(1)
        raise UsageError(f"the URL {spec} names no Message-Id",
                         "give the series' message-id, or a lore or patchwork URL that "
                         "holds it (https://lore.kernel.org/all/MSGID/)")
    if ".." in spec:
        return None
    m = _BARE.match(spec)
    return m.group(1) if m else None


def _b4_lines(text: str) -> list[str]:
    """What b4 am says worth keeping: the revision it took and the trailers it added."""
    keep = []
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("Will use the latest revision") or s.startswith("+ "):
            keep.append(s)
    return keep


def fetch(msgid: str, thread_mbox: Path | None, workdir: Path) -> inputs.SeriesInput:
    """The series of ``msgid`` as ``b4 am -m THREAD`` writes it, read as an mbox."""
    if thread_mbox is None:
        raise UsageError(f"no local copy of the thread of <{msgid}>, and no network to "
                         "fetch it from",
                         "pass the thread's mbox with --thread FILE (lore's t.mbox.gz of "
                         "the thread, gunzipped): check-series runs `b4 am -m FILE MSGID`")
    if not thread_mbox.is_file():
        raise UsageError(f"--thread {thread_mbox} is not a file",
                         "give the mbox that holds the thread")
    out = workdir / "b4"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    hint = "check the message-id, and that the file holds its thread"
    try:
        said = b4run.run(out, ["am", "-m", str(thread_mbox.resolve()), "-o", str(out),
                               "-n", NAME, msgid]).strip()
    except KseriesError as err:
        raise UsageError(f"b4 am found no series for <{msgid}> in {thread_mbox}: "
                         f"{err.message}", hint) from None
    mbx = out / f"{NAME}.mbx"
    if not mbx.is_file() or not mbx.stat().st_size:
        last = said.splitlines()[-1] if said else "no output"
        raise UsageError(f"b4 am found no series for <{msgid}> in {thread_mbox}: {last}",
                         hint)
    got = inputs.from_mbox(mbx, workdir)
    notes = tuple(f"b4 am: {line}" for line in _b4_lines(said)) + got.notes
    return inputs.SeriesInput(got.patches, f"<{msgid}> (b4 am -m {thread_mbox})",
                              got.base, notes)
