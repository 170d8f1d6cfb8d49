"""checkpatch: the tree's scripts/checkpatch.pl (--strict by default) on the patch.

It runs from the top of the tree: run from elsewhere, checkpatch does
not find the tree and reports false errors.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

from ... import build
from ..context import Check, CheckContext
from ..model import Outcome, State

_TOTAL = re.compile(r"^total: (\d+) errors?, (\d+) warnings?, (?:(\d+) checks?, )?", re.M)
# A finding and, on its next line, where: "#45: FILE: drivers/vhost/blk.c:123:".
_FIRST = re.compile(r"^(ERROR|WARNING|CHECK): (.*)$(?:\n#\d+: FILE: (\S+?):?$)?", re.M)
# A Python helper (spdxcheck.py) that died: its last line names the error.
_CRASH = re.compile(r"^Traceback \(most recent call last\):\n(?:[ \t].*\n)*(\S.*)$", re.M)


def summarise(output: str) -> tuple[int, int, int] | None:
    """(errors, warnings, checks) from checkpatch's total line."""
    m = _TOTAL.search(output)
    if not m:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


class Checkpatch(Check):
    name = "checkpatch"
    description = "scripts/checkpatch.pl --strict on the patch, run from the tree's top"
    needs_tree = False
    version = "3"  # the first finding says where

    def run(self, ctx: CheckContext) -> Outcome:
        script = ctx.tree / "scripts" / "checkpatch.pl"
        if not script.is_file():
            return Outcome.cannot_run("the tree has no scripts/checkpatch.pl")
        if shutil.which("perl") is None:
            return Outcome.cannot_run("perl is not installed (apt-get install perl)")
        cmd = ["perl", str(script), *ctx.config.checkpatch_args, str(ctx.patch.path)]
        # checkpatch runs scripts/spdxcheck.py with the python3 on PATH: the
        # project's interpreter first, which has ply.
        proc = subprocess.run(cmd, cwd=ctx.tree, capture_output=True, text=True,
                              errors="replace", check=False,
                              env=dict(os.environ, PATH=build.venv_path()))
        output = proc.stdout + proc.stderr
        ctx.write_log(f"$ (cd {ctx.tree} && {' '.join(cmd)})\n{output}")
        crash = _CRASH.search(output)
        if crash:
            # checkpatch goes on and may total 0 errors; what the helper
            # would have found is unknown, so the cell cannot pass.
            return Outcome(State.FAIL, "a helper of checkpatch.pl crashed, its checks did not "
                                       f"run: {crash.group(1)}")
        counts = summarise(output)
        if counts is None:
            last = (output.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
            return Outcome(State.FAIL, f"checkpatch.pl did not finish: {last}")
        errors, warnings, checks = counts
        text = f"{errors} errors, {warnings} warnings, {checks} checks"
        first = _FIRST.search(output)
        if first and (errors or warnings or checks):
            where = f" ({first.group(3)})" if first.group(3) else ""
            text += f"; first: {first.group(1)}: {first.group(2)}{where}"
        if errors:
            return Outcome(State.FAIL, text)
        if warnings or checks:
            return Outcome(State.WARNING, text)
        return Outcome(State.SUCCESS, text)


CHECK = Checkpatch()
