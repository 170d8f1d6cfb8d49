"""kunit: the project's kunitconfig through the tree's kunit.py, when the patch
touches a file under the configured test paths."""

from __future__ import annotations

from ... import kconfig, kunit_run
from ...errors import KseriesError
from ...git import git
from ..context import Check, CheckContext
from ..model import Outcome, State, Subtest

_STATES = {"PASS": State.SUCCESS, "SKIP": State.SKIP, "FAIL": State.FAIL, "ERROR": State.FAIL}


def undefined_options(ctx: CheckContext, options: list[str]) -> list[str]:
    """kunitconfig options no Kconfig file of the tree defines (yet)."""
    missing = []
    for option in options:
        name = option.removeprefix("CONFIG_")
        proc = git(ctx.tree, "grep", "-q", "-E", rf"^\s*(menu)?config {name}\s*$",
                          "HEAD", "--", "*Kconfig*", check=False)
        if proc.returncode != 0:
            missing.append(option)
    return missing


class Kunit(Check):
    name = "kunit"
    description = "KUnit (kunit.py --json) when the patch touches the configured test paths"

    def run(self, ctx: CheckContext) -> Outcome:
        cfg = ctx.config.kunit
        if cfg.kunitconfig is None:
            return Outcome.cannot_run("no kunitconfig in check-series.toml [kunit]")
        if not cfg.kunitconfig.is_file():
            return Outcome.cannot_run(f"kunitconfig {cfg.kunitconfig} does not exist "
                                      "(fix [kunit] kunitconfig)")
        touched = [p for _, p in ctx.changed_files()
                   if not cfg.test_paths or any(p.startswith(t) for t in cfg.test_paths)]
        if not touched:
            return Outcome.skip("no change under the test paths "
                                f"({', '.join(cfg.test_paths)})")
        options = [o for o, v in kconfig.parse(cfg.kunitconfig.read_text()).items() if v != "n"]
        missing = undefined_options(ctx, options)
        if missing:
            return Outcome.skip(f"the tests are not in the tree yet: {', '.join(missing[:3])} "
                                "not defined by any Kconfig")
        try:
            res = kunit_run.run(ctx.tree, cfg.kunitconfig, ctx.kunit_dir,
                                ctx.progress, arch=cfg.arch, timeout=cfg.timeout)
        except KseriesError as err:
            log = ctx.kunit_dir / "kunit.log"
            if log.exists():
                ctx.write_log(log.read_text(errors="replace"))
            return Outcome(State.FAIL, err.message)
        ctx.write_log(res.log.read_text(errors="replace"))
        subtests = tuple(Subtest(c.full_name, _STATES[c.status]) for c in res.cases)
        if not res.ok:
            failed = [c.full_name for c in res.cases if c.status in ("FAIL", "ERROR")]
            return Outcome(State.FAIL, f"{res.summary()}; failed: {', '.join(failed[:3])}",
                           subtests)
        return Outcome(State.SUCCESS, res.summary(), subtests)


CHECK = Kunit()
