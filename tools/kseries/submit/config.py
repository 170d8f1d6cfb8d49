"""The ``[submit]`` section of ``submit.toml``: extra recipients, prefixes, paths."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .. import tomlconfig
from ..tomlconfig import NonEmptyStr

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


Strings = str | tuple[str, ...]  # one string is a list of one


@dataclass(frozen=True)
class _Submit:
    """[submit] as written in the file."""

    to: Strings = ()
    cc: Strings = ()
    lists: Strings = ()
    exclude: Strings = ()
    prefixes: Strings = ()
    check_json: NonEmptyStr | None = None
    bench_results: NonEmptyStr | None = None
    output: NonEmptyStr | None = None
    get_maintainer_args: Strings = ()
    changes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _File:
    submit: _Submit = field(default_factory=_Submit)


def _tuple(value: Strings) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else value


def load(path: Path) -> SubmitConfig:
    """Parse ``path``; a missing file gives the defaults."""
    if not path.exists():
        return SubmitConfig()
    s = tomlconfig.load(_File, path, what="submit config",
                        hint="see Documentation/submitting.md").submit
    default = SubmitConfig()
    return SubmitConfig(
        path=path,
        to=_tuple(s.to),
        cc=_tuple(s.cc),
        lists=_tuple(s.lists),
        exclude=_tuple(s.exclude),
        prefixes=_tuple(s.prefixes),
        get_maintainer_args=_tuple(s.get_maintainer_args) or default.get_maintainer_args,
        check_json=s.check_json,
        bench_results=s.bench_results,
        output=s.output,
        changes={k.lower().lstrip("v"): v.strip() for k, v in s.changes.items()},
    )
