"""Kernel config fragments: parse them, and check what a .config got."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError

_SET = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_UNSET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")


@dataclass(frozen=True)
class Mismatch:
    option: str
    wanted: str
    got: str

    def __str__(self) -> str:
        return f"{self.option}: wanted {self.wanted}, got {self.got}"


def parse(text: str, origin: str = "<config>") -> dict[str, str]:
    """Map CONFIG_ names to values ('n' for "is not set")."""
    options: dict[str, str] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if m := _SET.match(line):
            options[m.group(1)] = m.group(2)
        elif m := _UNSET.match(line):
            options[m.group(1)] = "n"
        elif not line.startswith("#"):
            raise UsageError(f"{origin}:{lineno}: not a config line: {line!r}",
                             "write CONFIG_FOO=y or '# CONFIG_FOO is not set'")
    return options


def load_fragments(paths: list[Path]) -> dict[str, str]:
    merged: dict[str, str] = {}
    for path in paths:
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise UsageError(f"config fragment {path} does not exist",
                             "check the path given with --config") from None
        merged.update(parse(text, str(path)))
    return merged


def fingerprint(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def mismatches(wanted: dict[str, str], dot_config: str) -> list[Mismatch]:
    """Options a fragment asked for that the final .config does not have."""
    got = parse(dot_config, ".config")
    result = []
    for option, value in wanted.items():
        actual = got.get(option, "n")
        if actual != value:
            result.append(Mismatch(option, value, "unset" if option not in got else actual))
    return result
