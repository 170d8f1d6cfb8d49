"""Recipients from the tree's scripts/get_maintainer.pl, merged with submit.toml.

get_maintainer.pl runs from the top of the tree (at the series' tip, so
MAINTAINERS entries the series adds count) once per patch and once for
the cover letter (all patches at once).  With ``--rolestats`` each line
says what the address is: people (maintainers, reviewers) go to To,
mailing lists to Cc, as ``b4 prep --auto-to-cc`` does.  The lists are
merged in order and de-duplicated by address, case-insensitively; an
address in To is not repeated in Cc.  b4 sends every message of the
series to the merged lists; the per-patch lists are kept for the report.
"""

from __future__ import annotations

import email.utils
import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UsageError
from .config import SubmitConfig

_ROLE = re.compile(r"^(?P<addr>.*?)\s+\((?P<role>[^()]*(?:\([^()]*\)[^()]*)*)\)\s*$")


@dataclass(frozen=True)
class Entry:
    address: str
    role: str

    @property
    def is_list(self) -> bool:
        return "list" in self.role.lower()

    @property
    def key(self) -> str:
        return email.utils.parseaddr(self.address)[1].lower()


@dataclass
class Recipients:
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    per_patch: dict[str, list[str]] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        return {"to": self.to, "cc": self.cc, "per_patch": self.per_patch}


def parse(output: str) -> list[Entry]:
    """get_maintainer.pl lines (with or without role statistics)."""
    entries = []
    for line in output.splitlines():
        line = line.strip()
        if not line or "@" not in line:
            continue
        m = _ROLE.match(line)
        entries.append(Entry(m.group("addr").strip(), m.group("role")) if m else
                       Entry(line, ""))
    return entries


def get_maintainer(tree: Path, patches: Sequence[Path], args: Sequence[str]) -> list[Entry]:
    """Run the tree's get_maintainer.pl on ``patches`` from the tree's top."""
    script = tree / "scripts" / "get_maintainer.pl"
    if not script.is_file():
        raise UsageError(f"{script} does not exist", "pass --worktree PATH to a kernel tree")
    cmd = ["perl", str(script), *args, *(str(p.resolve()) for p in patches)]
    proc = subprocess.run(cmd, cwd=tree, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        detail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise UsageError(f"get_maintainer.pl failed: {detail}",
                         "check MAINTAINERS in the tree and the get_maintainer_args in submit.toml")
    return parse(proc.stdout)


def _add(target: list[str], seen: set[str], addresses: Iterable[str]) -> None:
    for addr in addresses:
        key = email.utils.parseaddr(addr)[1].lower()
        if key and key not in seen:
            seen.add(key)
            target.append(addr)


def merge(cover: Sequence[Entry], per_patch: dict[str, list[Entry]],
          config: SubmitConfig) -> Recipients:
    """To: config ``to`` + people; Cc: config ``lists``/``cc`` + lists; minus ``exclude``."""
    seen = {email.utils.parseaddr(a)[1].lower() for a in config.exclude}
    out = Recipients()
    everything = list(cover) + [e for entries in per_patch.values() for e in entries]
    _add(out.to, seen, config.to)
    _add(out.to, seen, (e.address for e in everything if not e.is_list))
    _add(out.cc, seen, config.lists)
    _add(out.cc, seen, (e.address for e in everything if e.is_list))
    _add(out.cc, seen, config.cc)
    out.per_patch = {name: [e.address for e in entries] for name, entries in per_patch.items()}
    return out


def collect(tree: Path, patches: Sequence[Path], config: SubmitConfig) -> Recipients:
    per_patch = {p.name: get_maintainer(tree, [p], config.get_maintainer_args) for p in patches}
    cover = get_maintainer(tree, patches, config.get_maintainer_args)
    return merge(cover, per_patch, config)
