"""submit-series end to end on a throwaway tree: b4 dry run, threading, git am,
refusals, --reflect to a local capture command, trailers from a reply mbox."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import json
import mailbox
import os
import re
import shutil
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

import pytest
from helpers import git, init_repo, quiet_progress

from kseries import series
from kseries.check.reports import json_report
from kseries.submit import b4run, cli, emails

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "submit"
TOOL = Path(__file__).resolve().parents[2] / "tools" / "submit-series"
TAG = "v0.0-fixture"
SKELETON_FILES = ("COPYING", "CREDITS", "Kbuild", "Makefile", "README", "Kconfig")
SKELETON_DIRS = ("Documentation", "arch", "include", "drivers", "fs", "init", "ipc",
                 "kernel", "lib")
SOB = "Signed-off-by: Test Author <author@example.org>"


def commit(repo: Path, message: str, when: int) -> None:
    env = dict(os.environ, GIT_AUTHOR_DATE=f"@{when} +0000", GIT_COMMITTER_DATE=f"@{when} +0000")
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-q", "-m", message], cwd=repo, env=env, check=True)


def make_tree(path: Path) -> Path:
    """A kernel-shaped repository: get_maintainer.pl, MAINTAINERS, a tagged base."""
    repo = init_repo(path)
    for name in SKELETON_FILES:
        (repo / name).write_text(f"{name}\n")
    for name in SKELETON_DIRS:
        (repo / name).mkdir()
        (repo / name / ".keep").write_text("")
    (repo / "scripts").mkdir()
    shutil.copy(FIX / "get_maintainer.pl", repo / "scripts" / "get_maintainer.pl")
    shutil.copy(FIX / "MAINTAINERS", repo / "MAINTAINERS")
    (repo / "drivers" / "foo").mkdir()
    (repo / "drivers" / "foo" / "foo.c").write_text("int foo(void)\n{\n\treturn 0;\n}\n")
    commit(repo, "base", 1_700_000_000)
    git(repo, "tag", TAG)
    return repo


def make_series(repo: Path, patches: Path, version: int = 1) -> list[Path]:
    """Branch vhost-blk with 3 commits (v1: a different error code), exported."""
    git(repo, "checkout", "-q", "-B", "vhost-blk", TAG)
    foo = repo / "drivers" / "foo" / "foo.c"
    foo.write_text(foo.read_text() + "\nint foo_probe(void)\n{\n\treturn 1;\n}\n")
    commit(repo, f"foo: add the driver\n\nProbe the device.\n\n{SOB}", 1_700_000_100)
    code = "-EIO" if version > 1 else "-EINVAL"
    foo.write_text(foo.read_text() + f"\nint foo_error(void)\n{{\n\treturn {code};\n}}\n")
    commit(repo, f"foo: handle errors\n\nReturn {code} on errors.\n\n{SOB}", 1_700_000_200)
    (repo / "Documentation" / "foo.rst").write_text("The foo driver\n==============\n")
    commit(repo, f"Documentation: describe foo\n\nA page for foo.\n\n{SOB}", 1_700_000_300)
    git(repo, "config", "branch.vhost-blk.description", (FIX / "cover.txt").read_text())
    progress, _ = quiet_progress()
    series.export(repo, TAG, "vhost-blk", patches, progress)
    git(repo, "checkout", "-q", "master")
    return series.list_patches(patches)


@pytest.fixture
def project(tmp_path: Path) -> dict[str, Path]:
    repo = make_tree(tmp_path / "linux")
    patches = tmp_path / "patches"
    make_series(repo, patches)
    manifest = tmp_path / "proj" / "kernel-tree" / "manifest.toml"
    manifest.parent.mkdir(parents=True)
    text = (Path(__file__).resolve().parents[2] / "kernel-tree" / "manifest.toml").read_text()
    manifest.write_text(text.replace('tag = "v6.12.117-deb12u1"', f'tag = "{TAG}"'))
    return {"root": tmp_path, "repo": repo, "patches": patches, "manifest": manifest,
            "worktree": tmp_path / "wt", "out": tmp_path / "out"}


def argv(p: dict[str, Path], *extra: str, check: str = "missing.json") -> list[str]:
    return ["--tree", str(p["repo"]), "--manifest", str(p["manifest"]),
            "--patches", str(p["patches"]), "--work", str(p["root"] / "build"),
            "--worktree", str(p["worktree"]), "--config", str(FIX / "submit.toml"),
            "--check-json", str(FIX / check), "--bench", str(p["root"] / "no-bench.json"),
            "-o", str(p["out"]), *extra]


def parse(path: Path) -> EmailMessage:
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def test_dry_run_writes_a_threaded_posting_that_git_am_applies(
        project: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv(project)) == 0
    out = project["out"]
    files = sorted(out.glob("*.eml"))
    assert [f.name[:4] for f in files] == ["0000", "0001", "0002", "0003"]
    msgs = [parse(f) for f in files]
    cover, patches = msgs[0], msgs[1:]
    assert cover["Subject"] == "[PATCH 0/3] foo: a driver for the foo device"
    cover_id = cover["Message-Id"]
    assert cover_id.startswith("<") and cover_id.endswith(">")
    assert cover["In-Reply-To"] is None
    for i, msg in enumerate(patches, 1):
        assert msg["Subject"].startswith(f"[PATCH {i}/3] ")
        assert msg["In-Reply-To"] == cover_id
        assert msg["References"] == cover_id
        assert msg["From"] == "Test Author <author@example.org>"
    assert len({m["Message-Id"] for m in msgs}) == 4
    # Recipients: get_maintainer.pl people in To, lists in Cc, submit.toml extras,
    # excluded address gone, each address once.
    to = msgs[1]["To"]
    cc = msgs[1]["Cc"]
    assert "Series Lead <lead@example.org>" in to
    assert '"Foo M. Maintainer" <foo@example.org>' in to
    assert "Rhea Reviewer <rhea@example.org>" in to and "docs@example.org" in to
    assert "foo-devel@example.org" in cc and "linux-doc@example.org" in cc
    assert "foo-announce@example.org" in cc and "party@example.org" in cc
    assert "torvalds@example.org" not in to + cc
    assert (to + cc).count("foo@example.org") == 1
    # The cover: design text, the "no report" sentence, the base, b4's tail.
    body = cover.get_content()
    assert "Design\n======\n- one file per device;" in body
    assert "No tools/check-series report was found" in body
    assert "Base: Linux 0.0" not in body
    assert "base-commit: " + git(project["repo"], "rev-parse", TAG) in body
    # The patch bodies are intact: git am onto the base in a fresh clone gives
    # the series' tree.
    clone = project["root"] / "clone"
    subprocess.run(["git", "clone", "-q", str(project["repo"]), str(clone)], check=True)
    git(clone, "config", "user.name", "T")
    git(clone, "config", "user.email", "t@example.org")
    git(clone, "checkout", "-q", "--detach", TAG)
    git(clone, "am", *(str(f) for f in files[1:]))
    assert git(clone, "rev-parse", "HEAD^{tree}") == git(project["repo"], "rev-parse",
                                                            "vhost-blk^{tree}")
    assert git(clone, "log", "-1", "--format=%B").startswith("Documentation: describe foo")
    # The mbox holds the whole thread; the report says what was checked.
    assert len(mailbox.mbox(str(out / "series.mbox"))) == 4
    rcpt = json.loads((out / "recipients.json").read_text())
    assert set(rcpt["per_patch"]) == {p.name for p in series.list_patches(project["patches"])}
    said = capsys.readouterr().out
    assert "git am applied 3/3" in said and "b4 am accepted 3" in said
    assert "nothing was sent" in said
    assert emails.check_thread(emails.load(out), 3) == []


def test_v2_rfc_with_changelog_and_range_diff(project: dict[str, Path]) -> None:
    v1 = project["root"] / "patches-v1"
    shutil.copytree(project["patches"], v1)
    make_series(project["repo"], project["patches"], version=2)
    assert cli.main(argv(project, "-v", "2", "--rfc", "--previous", str(v1),
                         check="check-pass.json")) == 0
    files = sorted(project["out"].glob("*.eml"))
    cover = parse(files[0])
    assert cover["Subject"] == "[RFC PATCH v2 0/3] foo: a driver for the foo device"
    assert parse(files[2])["Subject"] == "[RFC PATCH v2 2/3] foo: handle errors"
    body = cover.get_content()
    assert "Changes in v2:\n- foo: handle errors: return -EIO" in body
    head, _, tail = body.partition("\n---\n")
    assert "Range-diff against v1:" in tail and "-EINVAL" in tail and "-EIO" in tail
    # The check matrix and test counts come from the report, nothing else.
    assert "  patch  apply  checkpatch  build" in head
    assert "  2/3    pass   pass        pass   pass" in head
    assert "kunit: 2 passed, 0 failed, 1 skipped" in head


def test_a_cover_letter_with_placeholders_is_refused(
        project: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """`git format-patch --cover-letter` output as it comes: nothing to post."""
    cover = project["patches"] / series.COVER
    text = cover.read_text()
    subject = re.search(r"^Subject: \[PATCH 0/3\] (.*)$", text, re.M)
    assert subject is not None
    cover.write_text(text.replace(subject.group(1), "*** SUBJECT HERE ***"))
    assert cli.main(argv(project)) == 2
    err = capsys.readouterr().err
    assert "still says *** SUBJECT HERE ***" in err
    assert "Traceback" not in err
    assert not list(project["out"].glob("*.eml"))


def test_new_version_needs_a_changelog(project: dict[str, Path],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv(project, "-v", "3")) == 2
    assert "version 3 has no changelog" in capsys.readouterr().err


@pytest.mark.parametrize(("flag", "check", "why"), [
    ("--send", "missing.json", "no check-series report"),
    ("--send", "check-fail.json", "failed"),
    ("--reflect", "missing.json", "no check-series report"),
    ("--reflect", "check-fail.json", "failed"),
])
def test_refuses_to_send_without_a_passing_check(
        project: dict[str, Path], capsys: pytest.CaptureFixture[str],
        flag: str, check: str, why: str) -> None:
    assert cli.main(argv(project, flag, check=check)) == 2
    err = capsys.readouterr().err
    assert "refusing to send" in err and why in err and "--force" in err
    assert not project["out"].exists()
    assert not project["worktree"].exists()


def test_stale_check_report_is_refused(project: dict[str, Path], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    report = json_report.load(FIX / "check-pass.json")
    report.patches = report.patches[:2]
    stale = tmp_path / "stale.json"
    json_report.write(report, stale)
    assert cli.main(argv(project, "--send", "--check-json", str(stale))) == 2
    assert "stale" in capsys.readouterr().err


def test_reflect_sends_only_to_oneself(project: dict[str, Path]) -> None:
    """--force past a missing report; b4 --reflect hands every message to a
    local command (the capture script) with only the sender as recipient."""
    capture = project["root"] / "capture"
    capture.mkdir()
    script = project["root"] / "fake-sendmail"
    script.write_text("#!/bin/sh\nn=$(ls \"$CAPTURE\" | wc -l)\n"
                      "echo \"$@\" > \"$CAPTURE/$n.args\"\ncat > \"$CAPTURE/$n.eml\"\n")
    script.chmod(0o755)
    repo = project["repo"]
    git(repo, "config", "sendemail.sendmailcmd", str(script))
    git(repo, "config", "sendemail.b4-really-reflect-via", str(script))
    env = dict(os.environ, CAPTURE=str(capture))
    proc = subprocess.run([sys.executable, str(TOOL), *argv(project, "--reflect", "--force",
                                                             "--no-sign")],
                          input="\n\n\n", text=True, capture_output=True, env=env, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "sending although no check-series report" in proc.stderr
    args = sorted(capture.glob("*.args"))
    assert len(args) == 4
    for a in args:
        assert a.read_text().split() == ["-i", "author@example.org"]
    sent = parse(capture / "0.eml")
    assert sent["Subject"] == "[PATCH 0/3] foo: a driver for the foo device"
    assert "foo@example.org" in sent["To"]


def test_trailers_from_a_reply_mbox_are_exported(project: dict[str, Path]) -> None:
    assert cli.main(argv(project)) == 0
    files = sorted(project["out"].glob("*.eml"))
    thread = [parse(f) for f in files]

    def reply(to: EmailMessage, sender: str, text: str) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = sender
        msg["Subject"] = "Re: " + to["Subject"]
        msg["Message-Id"] = f"<reply-{len(thread)}@example.org>"
        msg["In-Reply-To"] = to["Message-Id"]
        msg["References"] = f"{to['Message-Id']}"
        msg["Date"] = "Thu, 26 Nov 2026 10:00:00 +0000"
        msg.set_content(f"> quoted\n\n{text}\n")
        return msg

    thread.append(reply(thread[2], "Rhea Reviewer <rhea@example.org>",
                        "Reviewed-by: Rhea Reviewer <rhea@example.org>"))
    thread.append(reply(thread[0], '"Foo M. Maintainer" <foo@example.org>',
                        'Acked-by: "Foo M. Maintainer" <foo@example.org>'))
    mbox_path = project["root"] / "replies.mbox"
    box = mailbox.mbox(str(mbox_path))
    for msg in thread:
        box.add(msg.as_bytes())
    box.close()
    before = {p.name: p.read_text() for p in project["patches"].glob("*.patch")}
    args = argv(project)
    common = args[:args.index("--check-json")]
    assert cli.main(["trailers", *common, str(mbox_path)]) == 0
    after = {p.name: p.read_text() for p in project["patches"].glob("*.patch")}
    assert set(after) == set(before)
    two = next(n for n in after if n.startswith("0002-"))
    assert "Reviewed-by: Rhea Reviewer <rhea@example.org>" in after[two]
    for name, text in after.items():
        if name.startswith("0000"):
            assert text == before[name]
            continue
        assert 'Acked-by: "Foo M. Maintainer" <foo@example.org>' in text
        assert text.replace(after[name].split("\n---\n")[0], "") == \
            before[name].replace(before[name].split("\n---\n")[0], "")


def test_previous_that_is_neither_a_directory_nor_a_ref_is_refused(
        project: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(argv(project, "--previous", "no-such-ref"))
    err = capsys.readouterr().err
    assert code == 2, err
    assert "submit-series: error: --previous 'no-such-ref' is neither a patch directory " \
           "nor a git ref" in err
    assert "Traceback" not in err


def test_b4_tracking_and_the_cover_live_in_the_branch_config(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    git(repo, "commit", "-q", "--allow-empty", "-m", "base")
    assert not b4run.is_enrolled(repo, "master")
    git(repo, "config", "branch.master.b4-tracking", '{"series": {}}')
    assert b4run.is_enrolled(repo, "master")
    b4run.store_cover(repo, "master", "subject\n\nbody\n")
    assert git(repo, "config", "--get", "branch.master.description") == "subject\n\nbody"


def test_a_report_of_the_cheap_checks_only_is_refused(project: dict[str, Path], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The exact patches passed `--only apply,checkpatch,build,kunit`: the project's
    check-series.toml enables more, and the gate names what did not run."""
    from kseries.submit import checks as submit_checks
    report = json_report.load(FIX / "check-pass.json")
    ids = submit_checks.patch_ids(series.list_patches(project["patches"]))
    for row, pid in zip(report.patches, ids, strict=True):
        row.patch = dataclasses.replace(row.patch, patch_id=pid)
    path = tmp_path / "only.json"
    json_report.write(report, path)
    assert cli.main(argv(project, "--send", "--check-json", str(path))) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    assert "did not run hygiene, fixes, sparse, kerneldoc, boot, diffstat, range-diff" in lines[0]
