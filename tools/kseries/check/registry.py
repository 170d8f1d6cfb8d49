"""Find the check plug-ins: every module in kseries.check.checks with a CHECK
(or a tuple of them, CHECKS)."""

from __future__ import annotations

import importlib
import pkgutil

from ..errors import UsageError
from . import checks as checks_pkg
from .context import Check


def discover() -> dict[str, Check]:
    found: dict[str, Check] = {}
    for info in sorted(pkgutil.iter_modules(checks_pkg.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{checks_pkg.__name__}.{info.name}")
        single = getattr(module, "CHECK", None)
        for check in getattr(module, "CHECKS", None) or [single]:
            if not isinstance(check, Check):
                continue
            if check.name in found:
                raise UsageError(f"two check plug-ins are named {check.name!r}",
                                 f"rename the one in {module.__name__}")
            found[check.name] = check
    return found


def select(available: dict[str, Check], wanted: tuple[str, ...], only: list[str],
           skip: list[str], where: str) -> list[Check]:
    """``wanted`` (from the config) narrowed by --only/--skip, in order."""
    for name in [*wanted, *only, *skip]:
        if name not in available:
            raise UsageError(f"unknown check {name!r} ({where})",
                             f"known checks: {', '.join(sorted(available))} (--list-checks)")
    names = [n for n in wanted if (not only or n in only) and n not in skip]
    return [available[n] for n in names]
