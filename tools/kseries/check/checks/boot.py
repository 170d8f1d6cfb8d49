"""boot: build the whole kernel, boot it under virtme-ng and run the configured
command (the smoke command per patch, the in-guest suite on the tip)."""

from __future__ import annotations

import shutil

from ... import boot, build
from ...errors import KseriesError
from .. import kbuild
from ..context import Check, CheckContext
from ..model import Outcome, State


class Boot(Check):
    name = "boot"
    description = "full build, boot under virtme-ng, run the configured in-guest command"

    def run(self, ctx: CheckContext) -> Outcome:
        cfg = ctx.config.boot
        if not ctx.config.build.fragments:
            return Outcome.cannot_run("no config fragments in check-series.toml [build]")
        if shutil.which("vng", path=build.venv_path()) is None:
            return Outcome.cannot_run("virtme-ng (vng) is not installed (pip install virtme-ng)")
        if shutil.which("qemu-system-x86_64") is None:
            return Outcome.cannot_run("QEMU is not installed (apt-get install qemu-system-x86)")
        kbuild.ensure_config(ctx, force=True)
        try:
            res = build.build(ctx.tree, ctx.build_dir, list(ctx.config.build.fragments),
                              ctx.progress, strict_config=False)
        except KseriesError as err:
            return Outcome(State.FAIL, f"the kernel did not build: {err.message}")
        full = ctx.is_tip and not ctx.options.smoke_tip
        command = cfg.tip_command if full else cfg.smoke_command
        spec = boot.GuestSpec(outdir=res.outdir, cpus=cfg.cpus, memory=cfg.memory,
                              timeout=cfg.timeout, cwd=ctx.config.root)
        console = ctx.log.with_suffix(".console.log")
        result = boot.run(spec, command, console, ctx.progress)
        ctx.write_log(f"kernel {res.release}; command: {command}\nconsole: {console}\n"
                      f"exit {result.returncode}, {len(result.splats)} splats\n{result.output}")
        try:
            result.raise_for_failure()
        except KseriesError as err:
            return Outcome(State.FAIL, err.message)
        how = "KVM" if result.kvm else "TCG"
        return Outcome(State.SUCCESS, f"{res.release} booted ({how}, {result.seconds:.0f}s); "
                                      f"`{command[:40]}` passed")


CHECK = Boot()
