"""Run b4 (``b4 prep``, ``b4 send``, ``b4 trailers``) the way this project needs.

b4 keeps the series in a git branch.  The project uses b4's
``branch-description`` cover strategy, which matches what kseries already
does: the cover letter is the branch description, and b4's tracking data
(change-id, revision, prefixes) sits beside it in ``branch.<name>.b4-tracking``.

Every call is a subprocess (``python -m b4.command`` of this interpreter,
or ``b4`` on PATH) in the worktree, with ``-c`` overrides instead of
changes to anyone's git config:

- ``b4.prep-cover-strategy=branch-description``;
- ``b4.prep-cover-template`` = the rendered ``b4-cover.tmpl.j2``;
- ``b4.prep-pre-flight-checks``: b4's "run b4 prep --check" and
  "run --auto-to-cc" reminders are replaced by the check-series gate and
  get_maintainer.pl step of this tool;
- for a dry run, ``sendemail.smtpserver=localhost`` so that b4 does not pick
  its web endpoint in a kernel tree (b4 never connects in a dry run).
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import KseriesError, UsageError
from ..git import config_get, git

STRATEGY = "b4.prep-cover-strategy=branch-description"
PREFLIGHT = ("b4.prep-pre-flight-checks=disable-needs-checking,"
             "disable-needs-checking-deps,disable-needs-auto-to-cc")


def command() -> list[str]:
    """How to start b4: this interpreter's package, else ``b4`` on PATH."""
    if importlib.util.find_spec("b4") is not None:
        return [sys.executable, "-m", "b4.command"]
    exe = shutil.which("b4")
    if exe:
        return [exe]
    raise UsageError("b4 is not installed", "run `tools/run unit` to set up .venv/, "
                     "or `pip install b4` in the environment that runs this tool")


def _failure(args: Sequence[str], proc: subprocess.CompletedProcess[str]) -> KseriesError:
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    critical = [ln for ln in lines if "CRITICAL" in ln or "ERROR" in ln]
    detail = (critical or lines or ["no output"])[-1].strip()
    return KseriesError(f"b4 {' '.join(args[:2])} failed (exit {proc.returncode}): {detail}",
                        "the full b4 output is above; rerun with it in mind")


def run(tree: Path, args: Sequence[str], config: Sequence[str] = (),
        interactive: bool = False, offline: bool = True) -> str:
    """Run ``b4 [-c ...] ARGS`` in ``tree``; return its output (stdout + stderr)."""
    cmd = command()
    if offline:
        cmd.append("--offline-mode")
    if not interactive:
        cmd.append("--no-interactive")
    for item in (STRATEGY, PREFLIGHT, *config):
        cmd += ["-c", item]
    cmd += list(args)
    if interactive:
        # b4 talks to the terminal and asks "Press Enter to proceed" itself.
        done = subprocess.run(cmd, cwd=tree, check=False)
        if done.returncode != 0:
            raise KseriesError(f"b4 {' '.join(args[:2])} exited with {done.returncode}",
                               "see b4's messages above")
        return ""
    proc = subprocess.run(cmd, cwd=tree, text=True, check=False, capture_output=True,
                          stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise _failure(list(args), proc)
    return proc.stdout + proc.stderr


def is_enrolled(tree: Path, branch: str) -> bool:
    return bool((config_get(tree, f"branch.{branch}.b4-tracking") or "").strip())


def enroll(tree: Path, branch: str, base_branch: str) -> None:
    """``b4 prep -e BASE``, unless the branch is already b4's (keeps the change-id)."""
    if not is_enrolled(tree, branch):
        run(tree, ["prep", "-e", base_branch])


def set_series(tree: Path, version: int, prefixes: Sequence[str]) -> None:
    """Revision N and extra subject prefixes (``RFC``...) in b4's tracking data."""
    run(tree, ["prep", "--force-revision", str(version),
               "--set-prefixes", *(prefixes or [""])])


def store_cover(tree: Path, branch: str, text: str) -> None:
    """Where the branch-description strategy keeps the cover (as b4's store_cover)."""
    git(tree, "config", f"branch.{branch}.description", text)


def send(tree: Path, mode: str, template: Path, output: Path | None = None,
         sign: bool = True) -> str:
    """``b4 send``: ``dry-run`` writes to ``output``; ``reflect`` and ``send`` mail.

    ``reflect`` and ``send`` are interactive (b4 asks before sending) and use
    the sender's own git sendemail configuration.
    """
    config = [f"b4.prep-cover-template={template}"]
    args = ["send"]
    if mode == "dry-run":
        if output is None:
            raise ValueError("a dry run needs an output directory")
        config.append("sendemail.smtpserver=localhost")
        args += ["-o", str(output), "--no-sign"]
    elif mode == "reflect":
        args.append("--reflect")
    elif mode != "send":
        raise ValueError(f"unknown send mode {mode}")
    if mode != "dry-run" and not sign:
        args.append("--no-sign")
    return run(tree, args, config, interactive=mode != "dry-run", offline=mode == "dry-run")


def trailers(tree: Path, mbox: Path, sloppy: bool = False) -> str:
    """``b4 trailers -u -m MBOX``: add follow-up trailers to the branch's commits."""
    args = ["trailers", "-u", "-m", str(mbox.resolve())]
    if sloppy:
        args.append("-S")
    return run(tree, args)


def am_check(tree: Path, mbox: Path, outdir: Path) -> str:
    """``b4 am`` on the written thread: does b4 accept it as a series?"""
    return run(tree, ["am", "-m", str(mbox.resolve()), "-o", str(outdir), "-n", "accepted"])
