"""The ``[submit]`` section of ``submit.toml``: extra recipients, prefixes, paths."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UsageError

CONFIG_NAME = "submit.toml"


@dataclass(frozen=True)
class SubmitConfig:
    """What the project adds to b4 and get_maintainer.pl."""

    path: Path | None = None
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    lists: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    # Unset: the layout's (``paths.Places``), under $KSERIES_WORK or build/.
    check_json: str | None = None
    bench_results: str | None = None
    output: str | None = None
    get_maintainer_args: tuple[str, ...] = ("--no-git", "--no-git-fallback", "--rolestats")
    changes: dict[str, str] = field(default_factory=dict)

    def resolve(self, root: Path, value: str | None, default: Path) -> Path:
        """A path from the file, relative to the project root; ``default`` if unset."""
        if value is None:
            return default
        path = Path(value)
        return path if path.is_absolute() else root / path


def _strings(data: dict[str, object], key: str, where: Path) -> tuple[str, ...] | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(str(v) for v in value)
    raise UsageError(f"{where}: [submit] {key} must be a string or a list of strings",
                     f'write e.g. {key} = ["a@example.org"]')


def load(path: Path) -> SubmitConfig:
    """Parse ``path``; a missing file gives the defaults."""
    if not path.exists():
        return SubmitConfig()
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path} is not valid TOML: {exc}", "fix the file") from None
    section = data.get("submit", {})
    if not isinstance(section, dict):
        raise UsageError(f"{path}: [submit] must be a table", "see Documentation/submitting.md")
    known = {"to", "cc", "lists", "exclude", "prefixes", "check_json", "bench_results",
             "output", "get_maintainer_args", "changes"}
    unknown = sorted(set(section) - known)
    if unknown:
        raise UsageError(f"{path}: unknown key(s) in [submit]: {', '.join(unknown)}",
                         f"known keys: {', '.join(sorted(known))}")
    lists = {key: _strings(section, key, path) for key in
             ("to", "cc", "lists", "exclude", "prefixes", "get_maintainer_args")}
    texts: dict[str, str | None] = {}
    for key in ("check_json", "bench_results", "output"):
        value = section.get(key)
        if value is None:
            texts[key] = None
            continue
        if not isinstance(value, str) or not value:
            raise UsageError(f"{path}: [submit] {key} must be a non-empty string",
                             "give a path relative to the project root")
        texts[key] = value
    changes = section.get("changes", {})
    if not isinstance(changes, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in changes.items()):
        raise UsageError(f"{path}: [submit.changes] must map versions to text",
                         'write e.g. v2 = """- fixed the flush path"""')
    default = SubmitConfig()
    return SubmitConfig(
        path=path,
        to=lists["to"] or default.to,
        cc=lists["cc"] or default.cc,
        lists=lists["lists"] or default.lists,
        exclude=lists["exclude"] or default.exclude,
        prefixes=lists["prefixes"] or default.prefixes,
        get_maintainer_args=lists["get_maintainer_args"] or default.get_maintainer_args,
        check_json=texts["check_json"],
        bench_results=texts["bench_results"],
        output=texts["output"],
        changes={k.lower().lstrip("v"): v.strip() for k, v in changes.items()},
    )
