"""kerneldoc: scripts/kernel-doc -none -Wall on the changed C files; new warnings only."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from .. import diagnostics, gitops
from ..context import Check, CheckContext
from ..model import Outcome, State


def kernel_doc(script: Path, cwd: Path, files: list[str]) -> str:
    if not files:
        return ""
    cmd = ["perl", str(script), "-none", "-Wall", *files]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, errors="replace",
                          check=False)
    return proc.stdout + proc.stderr


class KernelDoc(Check):
    name = "kerneldoc"
    description = "scripts/kernel-doc -none -Wall on changed .c/.h files; new warnings only"

    def run(self, ctx: CheckContext) -> Outcome:
        script = ctx.tree / "scripts" / "kernel-doc"
        if not script.is_file():
            return Outcome.cannot_run("the tree has no scripts/kernel-doc")
        if shutil.which("perl") is None:
            return Outcome.cannot_run("perl is not installed (apt-get install perl)")
        files = [p for s, p in ctx.changed_files() if s != "D" and p.endswith((".c", ".h"))]
        if not files:
            return Outcome.skip("the patch changes no .c or .h file")
        with tempfile.TemporaryDirectory() as tmp:
            old_files = []
            for path in files:
                content = gitops.show(ctx.tree, ctx.prev_commit, path)
                if content is not None:
                    (Path(tmp) / path).parent.mkdir(parents=True, exist_ok=True)
                    (Path(tmp) / path).write_bytes(content)
                    old_files.append(path)
            before_text = kernel_doc(script, Path(tmp), old_files)
        now_text = kernel_doc(script, ctx.tree, files)
        ctx.write_log(f"$ kernel-doc -none -Wall {' '.join(files)}\n{now_text}")
        before = diagnostics.parse(before_text, [ctx.tree])
        now = diagnostics.parse(now_text, [ctx.tree])
        new = diagnostics.new_since(before, now)
        for d in new:
            ctx.write_log(f"NEW: {d.text}")
        if new:
            return Outcome(ctx.config.kerneldoc_severity,
                           f"{len(new)} new kernel-doc warning(s); first: {new[0]}")
        return Outcome(State.SUCCESS, f"{len(files)} file(s), no new kernel-doc warnings")


CHECK = KernelDoc()
