"""Kernel modules in load order: each after the modules it depends on."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from ..errors import UsageError


def canonical(name: str) -> str:
    """Module names treat '-' and '_' alike (kvm-amd is kvm_amd)."""
    return name.replace("-", "_")


def index(moddir: Path) -> dict[str, Path]:
    """Every module file under ``moddir`` by canonical name."""
    found: dict[str, Path] = {}
    for path in sorted(moddir.rglob("*.ko*")):
        name = path.name.split(".ko")[0]
        found.setdefault(canonical(name), path)
    return found


def modinfo_depends(path: Path) -> list[str]:
    """The module's "depends" field, as kmod's modinfo reads it from the file."""
    proc = subprocess.run(["modinfo", "-F", "depends", str(path)], capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        raise UsageError(f"modinfo cannot read {path}: {proc.stderr.strip()}",
                         "install kmod (Debian package kmod)")
    return [canonical(d) for d in proc.stdout.strip().split(",") if d]


def load_order(wanted: list[str] | tuple[str, ...], available: dict[str, Path],
               depends: Callable[[Path], list[str]] = modinfo_depends) -> list[str]:
    """``wanted`` and everything they depend on, dependencies first, each once."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str, needed_by: str) -> None:
        name = canonical(name)
        if name in order:
            return
        if name in visiting:
            raise UsageError(f"modules depend on each other in a cycle through {name}",
                             "check the kernel package's modules")
        if name not in available:
            raise UsageError(f"the kernel package has no module {name} ({needed_by})",
                             "check the module names in l2-guest/manifest.toml against the "
                             "package's lib/modules")
        visiting.add(name)
        for dep in depends(available[name]):
            visit(dep, f"needed by {name}")
        visiting.discard(name)
        order.append(name)

    for name in wanted:
        visit(name, "named in the manifest")
    return order
