"""One strict reader for every TOML file the tools read, driven by dataclasses.

``load(Shape, path, what=...)`` reads ``path`` and builds ``Shape``, a
dataclass whose fields are the file's keys: nested dataclasses are
tables, and a field's type says what its value must be.

- ``str``, ``int`` (not a boolean), ``float`` (an integer too), ``bool``;
- ``Path``: a non-empty string, relative to the file's directory (made absolute);
- ``list[X]``, ``tuple[X, ...]``: an array; ``dict[str, X]``: a table;
- ``X | Y``: the first that fits (``X | None`` is an optional key);
- an ``enum.Enum``: one of its values;
- ``Annotated[X, Rule(...)]``: X, and the rule must hold (a pattern, a
  range, a set of values: ``one_of``, ``matches``, ``NON_EMPTY``...).

A field without a default is a required key.  A key the shape does not
name, a value of the wrong type, a missing file, a directory, an
unreadable file and invalid TOML are each one ``UsageError``: one line
naming the file and the key, dotted from the top (``build.make_flags``),
what was expected, and a hint how to fix it.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .errors import UsageError

T = TypeVar("T")


@dataclass(frozen=True)
class Rule:
    """A condition on a value of the right type: ``expected`` says it in words."""

    holds: Callable[[Any], bool]
    expected: str
    hint: str = ""
    example: str = ""  # a good value, as TOML


def one_of(*values: object) -> Rule:
    written = [_toml(v.value if isinstance(v, enum.Enum) else v) for v in values]
    return Rule(lambda v: v in values, " or ".join(written), example=written[0])


def matches(pattern: str, expected: str, hint: str = "") -> Rule:
    regex = re.compile(pattern)
    return Rule(lambda v: regex.fullmatch(v) is not None, expected, hint)


NON_EMPTY = Rule(lambda v: len(v) > 0, "")  # expected: "a non-empty <the type>"
POSITIVE = Rule(lambda v: v > 0, "a positive integer")
SHA256 = matches(r"[0-9a-f]{64}", "a sha256 (64 lowercase hex digits)",
                 "copy the value sha256sum prints")

NonEmptyStr = typing.Annotated[str, NON_EMPTY]


class _Problem(Exception):
    """A value does not fit: ``key`` is where, ``text`` what to say, ``hint`` the fix."""

    def __init__(self, key: str, message: str, hint: str, text: str = "") -> None:
        super().__init__(message)
        self.key, self.hint = key, hint
        self.text = text or f"{key} {message}"


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _dotted(prefix: str, name: str) -> str:
    """``prefix.name`` as TOML writes it (a key that is not bare is quoted)."""
    if not _BARE_KEY.fullmatch(name):
        name = _toml(name)
    return f"{prefix}.{name}" if prefix else name


def _how(key: str, tp: Any) -> str:
    """The hint for a bad value at ``key``."""
    if key.endswith("]"):
        return f"write each item as {_one(tp)}"
    if key.endswith('"'):
        return f"write each value as {_one(tp)}"
    return f"write {example(key.rpartition('.')[2], tp)}"


def _toml(value: object) -> str:
    """A value the way it is written in TOML, shortened to keep one line."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    elif isinstance(value, dict):
        text = "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    elif isinstance(value, list):
        text = "[" + ", ".join(_toml(v) for v in value) + "]"
    else:
        text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _args(tp: Any) -> tuple[Any, ...]:
    return typing.get_args(tp)


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _rules(tp: Any) -> tuple[Any, list[Rule]]:
    if typing.get_origin(tp) is typing.Annotated:
        base, *extra = _args(tp)
        return base, [r for r in extra if isinstance(r, Rule)]
    return tp, []


def expected(tp: Any) -> str:
    """What a value of type ``tp`` is, in words: "a list of strings"."""
    base, rules = _rules(tp)
    named = [r.expected for r in rules if r.expected]
    if named:
        return named[-1]
    words = _expected(base)
    if any(r is NON_EMPTY for r in rules):
        for article in ("a ", "an "):
            if words.startswith(article):
                return "a non-empty " + words.removeprefix(article)
    return words


def _expected(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if _is_union(tp):
        return " or ".join(expected(a) for a in _args(tp) if a is not type(None))
    if origin in (list, tuple):
        inner = expected(_args(tp)[0])
        return "a list of " + _plural(inner)
    if origin is dict:
        return "a table of " + _plural(expected(_args(tp)[1]))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return " or ".join(_toml(m.value) for m in tp)
    if dataclasses.is_dataclass(tp):
        return "a table"
    names: dict[Any, str] = {str: "a string", int: "an integer", float: "a number",
                             bool: "true or false", Path: "a path (a string)"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))


_PLURALS = {"a path (a string)": "paths (strings)", "true or false": "true or false values"}


def _plural(words: str) -> str:
    """'a string' -> 'strings', 'a list of strings' -> 'lists of strings'."""
    if words in _PLURALS:
        return _PLURALS[words]
    if words.startswith("a non-empty "):
        return "non-empty " + _plural("a " + words.removeprefix("a non-empty "))
    for article in ("a ", "an "):
        if words.startswith(article):
            head, _, rest = words[len(article):].partition(" ")
            return f"{head}s {rest}".rstrip()
    return f"values ({words})"  # one_of's '"a" or "b"'



def example(name: str, tp: Any) -> str:
    """How to write the key: ``name = "..."``."""
    base, rules = _rules(tp)
    if _is_union(base):
        base = next(a for a in _args(base) if a is not type(None))
    if not rules:
        base, rules = _rules(base)
    origin = typing.get_origin(base)
    if dataclasses.is_dataclass(base):
        return f"[{name}]"
    if origin in (list, tuple):
        return f"{name} = [{_one(_args(base)[0])}, ...]"
    if origin is dict:
        return f'{name} = {{ key = {_one(_args(base)[1])} }}'
    return f"{name} = {_one(base, rules)}"


def _one(tp: Any, rules: list[Rule] | None = None) -> str:
    """One value of ``tp`` as TOML."""
    tp, own = _rules(tp)
    rules = [*(rules or []), *own]
    given = [r.example for r in rules if r.example]
    if given:
        return given[0]
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _toml(next(iter(tp)).value)
    return {int: "1", float: "1.0", bool: "true"}.get(tp, '"..."')


def _convert(value: Any, tp: Any, key: str, base: Path) -> Any:
    """``value`` as ``tp``, or a _Problem naming ``key``."""
    inner, rules = _rules(tp)
    try:
        result = _convert_plain(value, inner, key, base)
    except _Problem as problem:
        if problem.key != key or not rules:
            raise
        result = None
        ok = False
    else:
        ok = all(rule.holds(result) for rule in rules)
    if not ok:
        hint = next((r.hint for r in rules if r.hint), "")
        raise _Problem(key, f"must be {expected(tp)}, not {_toml(value)}",
                       hint or _how(key, tp))
    return result


def _wrong(value: Any, tp: Any, key: str) -> _Problem:
    return _Problem(key, f"must be {expected(tp)}, not {_toml(value)}", _how(key, tp))


def _convert_plain(value: Any, tp: Any, key: str, base: Path) -> Any:
    origin = typing.get_origin(tp)
    if _is_union(tp):
        for option in _args(tp):
            if option is type(None):
                continue
            try:
                return _convert(value, option, key, base)
            except _Problem as problem:
                if problem.key != key:  # deeper: that option fits, its contents do not
                    raise
        raise _wrong(value, tp, key)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise _wrong(value, tp, key)
        return _build(tp, value, key, base, {})
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise _wrong(value, tp, key)
        items = [_convert(v, _args(tp)[0], f"{key}[{i}]", base) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise _wrong(value, tp, key)
        return {k: _convert(v, _args(tp)[1], _dotted(key, k), base) for k, v in value.items()}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            raise _wrong(value, tp, key) from None
    if tp is Path:
        if not isinstance(value, str) or not value:
            raise _wrong(value, tp, key)
        return (base / value).resolve()
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _wrong(value, tp, key)
        return float(value)
    if tp in (str, int, bool):
        if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
            raise _wrong(value, tp, key)
        return value
    raise TypeError(f"tomlconfig cannot read a {tp!r} ({key})")


def _build(cls: Any, table: Mapping[str, Any], prefix: str, base: Path,
           fixed: Mapping[str, Any]) -> Any:
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init and f.name not in fixed}
    where = f" in [{prefix}]" if prefix else ""
    for name in table:
        if name not in fields:
            key = _dotted(prefix, name)
            raise _Problem(key, "", f"the keys{where}: {', '.join(fields) or '(none)'}",
                           text=f"unknown key {key}")
    values: dict[str, Any] = dict(fixed)
    for name, field in fields.items():
        key = _dotted(prefix, name)
        if name in table:
            values[name] = _convert(table[name], hints[name], key, base)
        elif (field.default is dataclasses.MISSING
              and field.default_factory is dataclasses.MISSING):
            raise _Problem(key, f"is missing ({expected(hints[name])})",
                           f"add {example(name, hints[name])}{where}")
    return cls(**values)


def parse(cls: type[T], data: Mapping[str, Any], path: Path, what: str = "",
          hint: str = "", fixed: Mapping[str, Any] | None = None) -> T:
    """Build ``cls`` from parsed TOML ``data`` read from ``path``."""
    try:
        return typing.cast(T, _build(cls, data, "", path.resolve().parent, fixed or {}))
    except _Problem as problem:
        tail = f"; {hint}" if hint else ""
        raise UsageError(f"{_label(what, path)}: {problem.text}",
                         problem.hint + tail) from None


def _label(what: str, path: Path) -> str:
    return f"{what} {path}" if what else str(path)


def read(path: Path, what: str = "", missing_hint: str = "",
         file_name: str = "") -> dict[str, Any]:
    """The TOML table in ``path``; every way of failing is a one-line UsageError.

    ``file_name``: the name the file usually has, for the hint when ``path``
    is a directory.
    """
    label = _label(what, path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{label} does not exist",
                         missing_hint or "give the path of an existing file") from None
    except IsADirectoryError:
        raise UsageError(f"{label} is a directory, not a file",
                         f"give the file: {path / file_name}" if file_name
                         else "give the path of the file itself") from None
    except PermissionError:
        raise UsageError(f"{label} cannot be read (permission denied)",
                         "make it readable, or give another file") from None
    except OSError as exc:
        raise UsageError(f"{label} cannot be read: {exc.strerror}",
                         "give a readable file") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{label} is not valid TOML: {exc}",
                         "fix the syntax at the place it names") from None


def load(cls: type[T], path: Path, what: str = "", hint: str = "",
         missing_hint: str = "", fixed: Mapping[str, Any] | None = None,
         file_name: str = "") -> T:
    """Read ``path`` and build ``cls`` from it.

    ``what`` names the file in messages ("manifest"); ``hint`` is added to
    every hint about the contents (where the keys are documented);
    ``fixed`` are fields the caller fills, not read from the file.
    """
    return parse(cls, read(path, what, missing_hint, file_name), path, what, hint, fixed)
