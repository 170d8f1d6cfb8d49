"""get_maintainer.pl on a fixture MAINTAINERS, and the merge with submit.toml."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kseries.errors import UsageError
from kseries.submit import config, recipients

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "submit"
FILES = ("COPYING", "CREDITS", "Kbuild", "Makefile", "README")
DIRS = ("Documentation", "arch", "include", "drivers", "fs", "init", "ipc", "kernel", "lib",
        "scripts")


def patch(path: Path, *files: str) -> Path:
    text = "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
    text += "From: A <a@example.org>\nSubject: [PATCH] x\n\nx\n---\n"
    for name in files:
        text += (f"diff --git a/{name} b/{name}\n--- a/{name}\n+++ b/{name}\n"
                 "@@ -1 +1 @@\n-a\n+b\n")
    path.write_text(text)
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    top = tmp_path / "linux"
    top.mkdir()
    for name in FILES:
        (top / name).write_text("")
    for name in DIRS:
        (top / name).mkdir()
    shutil.copy(FIX / "get_maintainer.pl", top / "scripts" / "get_maintainer.pl")
    shutil.copy(FIX / "MAINTAINERS", top / "MAINTAINERS")
    return top


def test_parse_roles() -> None:
    out = ('"Michael S. Tsirkin" <mst@redhat.com> (maintainer:VIRTIO HOST (VHOST))\n'
           "kvm@vger.kernel.org (open list:VIRTIO HOST (VHOST))\n"
           "linux-kernel@vger.kernel.org (open list)\nplain@example.org\n\n")
    entries = recipients.parse(out)
    assert [e.address for e in entries] == ['"Michael S. Tsirkin" <mst@redhat.com>',
                                            "kvm@vger.kernel.org",
                                            "linux-kernel@vger.kernel.org", "plain@example.org"]
    assert [e.is_list for e in entries] == [False, True, True, False]
    assert entries[0].role == "maintainer:VIRTIO HOST (VHOST)"


def test_get_maintainer_per_patch_and_for_the_cover(tree: Path, tmp_path: Path) -> None:
    p1 = patch(tmp_path / "0001.patch", "drivers/foo/foo.c")
    p2 = patch(tmp_path / "0002.patch", "Documentation/foo.rst", "drivers/foo/foo.c")
    cfg = config.load(FIX / "submit.toml")
    r = recipients.collect(tree, [p1, p2], cfg)
    assert r.per_patch["0001.patch"] == ['"Foo M. Maintainer" <foo@example.org>',
                                         "Rhea Reviewer <rhea@example.org>",
                                         "Linus Torvalds <torvalds@example.org>",
                                         "foo-devel@example.org", "linux-kernel@example.org"]
    assert "Doc Maintainer <docs@example.org>" in r.per_patch["0002.patch"]
    # submit.toml's To first, then people in the cover letter's order; lists
    # and Cc; the excluded address is gone; foo@ (a person in To and a Cc in
    # submit.toml) once.
    assert r.to == ["Series Lead <lead@example.org>", "Doc Maintainer <docs@example.org>",
                    '"Foo M. Maintainer" <foo@example.org>', "Rhea Reviewer <rhea@example.org>"]
    assert r.cc == ["foo-announce@example.org", "linux-doc@example.org",
                    "linux-kernel@example.org", "foo-devel@example.org",
                    "Interested Party <party@example.org>"]


def test_merge_dedupes_case_insensitively() -> None:
    a = recipients.Entry("A <A@Example.org>", "maintainer:X")
    b = recipients.Entry("a@example.org", "reviewer:Y")
    lst = recipients.Entry("list@example.org", "open list:X")
    r = recipients.merge([a, lst], {"p": [b, lst]}, config.SubmitConfig())
    assert r.to == ["A <A@Example.org>"] and r.cc == ["list@example.org"]


def test_missing_script_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"get_maintainer\.pl does not exist"):
        recipients.get_maintainer(tmp_path, [], [])


def test_get_maintainer_failure_is_reported(tree: Path) -> None:
    with pytest.raises(UsageError, match=r"get_maintainer\.pl failed"):
        recipients.get_maintainer(tree, [tree / "nonexistent.patch"], ["--no-git"])
