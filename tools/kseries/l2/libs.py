"""The shared libraries a program loads, as ldd names them."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from ..errors import UsageError

# "\tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x...)" and
# "\t/lib64/ld-linux-x86-64.so.2 (0x...)"; "linux-vdso.so.1 (0x...)" has
# no file.
_ARROW = re.compile(r"^\s*(\S+) => (\S+) \(0x[0-9a-f]+\)$")
_PLAIN = re.compile(r"^\s*(/\S+) \(0x[0-9a-f]+\)$")
_MISSING = re.compile(r"^\s*(\S+) => not found$")


def parse_ldd(output: str, program: Path) -> list[Path]:
    libs: list[Path] = []
    for line in output.splitlines():
        if m := _MISSING.match(line):
            raise UsageError(f"{program} needs {m.group(1)}, which is not installed",
                             "install the Debian package that provides it")
        if m := _ARROW.match(line):
            libs.append(Path(m.group(2)))
        elif m := _PLAIN.match(line):
            libs.append(Path(m.group(1)))
    return libs


def shared_libs(program: Path) -> list[Path]:
    """Libraries ``program`` needs; [] for a static program."""
    if not program.is_file():
        raise UsageError(f"{program} does not exist",
                         "install the Debian package that provides it (tools/run does)")
    proc = subprocess.run(["ldd", str(program)], capture_output=True, text=True, check=False,
                          env={"LC_ALL": "C"})
    if "not a dynamic executable" in proc.stdout + proc.stderr:
        return []
    if proc.returncode != 0:
        raise UsageError(f"ldd {program} failed: {proc.stderr.strip()}",
                         "check that it is an executable of this machine")
    return parse_ldd(proc.stdout, program)
