"""The project's check-series.toml: what to build, test and boot, per patch.

Every key has a default, so a series without a config file still gets
the cheap checks.  Paths are relative to the directory of the file.
Unknown keys are errors, so a typo does not silently change nothing.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ..errors import UsageError
from .model import State

FILE_NAME = "check-series.toml"
DEFAULT_PER_PATCH = ("apply", "checkpatch", "hygiene", "build", "sparse", "kerneldoc", "kunit")
DEFAULT_TIP = ("boot", "diffstat", "range-diff")

T = TypeVar("T")


@dataclass(frozen=True)
class BuildConfig:
    fragments: tuple[Path, ...] = ()
    make_flags: tuple[str, ...] = ("W=1",)
    severity: State = State.FAIL
    sparse_severity: State = State.WARNING
    header_object_limit: int = 40


@dataclass(frozen=True)
class KunitConfig:
    kunitconfig: Path | None = None
    arch: str = "um"
    test_paths: tuple[str, ...] = ()
    timeout: int = 1800


@dataclass(frozen=True)
class BootConfig:
    smoke_command: str = "uname -r"
    tip_command: str = "uname -r"
    timeout: int = 900
    memory: str = "2G"
    cpus: int = 2


@dataclass(frozen=True)
class HygieneConfig:
    subject_max: int = 75
    require_prefix: bool = True


@dataclass(frozen=True)
class ProjectConfig:
    path: Path | None
    root: Path
    patches: Path
    per_patch: tuple[str, ...] = DEFAULT_PER_PATCH
    tip: tuple[str, ...] = DEFAULT_TIP
    checkpatch_args: tuple[str, ...] = ("--strict",)
    kerneldoc_severity: State = State.WARNING
    build: BuildConfig = field(default_factory=BuildConfig)
    kunit: KunitConfig = field(default_factory=KunitConfig)
    boot: BootConfig = field(default_factory=BootConfig)
    hygiene: HygieneConfig = field(default_factory=HygieneConfig)

    def fingerprint(self) -> str:
        """Changes when the config or a file it names changes (resume cache)."""
        digest = hashlib.sha256(json.dumps(asdict(self), default=str, sort_keys=True).encode())
        files = [*self.build.fragments]
        if self.kunit.kunitconfig:
            files.append(self.kunit.kunitconfig)
        for path in files:
            digest.update(path.read_bytes() if path.is_file() else b"<missing>")
        return digest.hexdigest()


def _take(table: dict[str, Any], key: str, kind: type[T], default: T, where: str) -> T:
    value = table.pop(key, default)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise UsageError(f"{where}: {key} must be a {kind.__name__}, not {value!r}",
                         "fix check-series.toml")
    return value


def _strings(table: dict[str, Any], key: str, default: tuple[str, ...],
             where: str) -> tuple[str, ...]:
    value = table.pop(key, list(default))
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{where}: {key} must be a list of strings", "fix check-series.toml")
    return tuple(value)


def _state(table: dict[str, Any], key: str, default: State, where: str) -> State:
    value = _take(table, key, str, default.value, where)
    if value not in ("warning", "fail"):
        raise UsageError(f"{where}: {key} must be \"warning\" or \"fail\", not {value!r}",
                         "fix check-series.toml")
    return State(value)


def _section(data: dict[str, Any], name: str, where: str) -> dict[str, Any]:
    table = data.pop(name, {})
    if not isinstance(table, dict):
        raise UsageError(f"{where}: [{name}] must be a table", "fix check-series.toml")
    return dict(table)


def _no_leftovers(table: dict[str, Any], where: str) -> None:
    if table:
        raise UsageError(f"{where}: unknown key(s) {', '.join(sorted(table))}",
                         "see Documentation/check-series.md for the keys")


def load(path: Path | None, root: Path) -> ProjectConfig:
    """Read ``path`` (or use the defaults when it is None)."""
    if path is None:
        return ProjectConfig(path=None, root=root, patches=root / "patches")
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"config file {path} does not exist",
                         "create it (see Documentation/check-series.md) or drop --config"
                         ) from None
    except IsADirectoryError:
        raise UsageError(f"config {path} is a directory, not a file",
                         f"give the file: --config {path / FILE_NAME}") from None
    except PermissionError:
        raise UsageError(f"config file {path} cannot be read (permission denied)",
                         "make it readable, or give another file with --config") from None
    except OSError as exc:
        raise UsageError(f"config file {path} cannot be read: {exc.strerror}",
                         "give a readable file with --config") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path} is not valid TOML: {exc}", "fix the file") from None
    base = path.resolve().parent
    where = str(path)

    def rel(value: str) -> Path:
        return (base / value).resolve()

    series = _section(data, "series", where)
    patches = rel(_take(series, "patches", str, "patches", f"{where} [series]"))
    _no_leftovers(series, f"{where} [series]")

    checks = _section(data, "checks", where)
    per_patch = _strings(checks, "per_patch", DEFAULT_PER_PATCH, f"{where} [checks]")
    tip = _strings(checks, "tip", DEFAULT_TIP, f"{where} [checks]")
    _no_leftovers(checks, f"{where} [checks]")

    cp = _section(data, "checkpatch", where)
    checkpatch_args = _strings(cp, "args", ("--strict",), f"{where} [checkpatch]")
    _no_leftovers(cp, f"{where} [checkpatch]")

    kd = _section(data, "kerneldoc", where)
    kd_sev = _state(kd, "severity", State.WARNING, f"{where} [kerneldoc]")
    _no_leftovers(kd, f"{where} [kerneldoc]")

    b = _section(data, "build", where)
    w = f"{where} [build]"
    build = BuildConfig(
        fragments=tuple(rel(f) for f in _strings(b, "fragments", (), w)),
        make_flags=_strings(b, "make_flags", ("W=1",), w),
        severity=_state(b, "severity", State.FAIL, w),
        sparse_severity=_state(b, "sparse_severity", State.WARNING, w),
        header_object_limit=_take(b, "header_object_limit", int, 40, w))
    _no_leftovers(b, w)

    k = _section(data, "kunit", where)
    w = f"{where} [kunit]"
    kunitconfig = _take(k, "kunitconfig", str, "", w)
    kunit = KunitConfig(kunitconfig=rel(kunitconfig) if kunitconfig else None,
                        arch=_take(k, "arch", str, "um", w),
                        test_paths=_strings(k, "test_paths", (), w),
                        timeout=_take(k, "timeout", int, 1800, w))
    _no_leftovers(k, w)
    if kunit.arch not in ("um", "x86_64"):
        raise UsageError(f"{w}: arch must be \"um\" or \"x86_64\"", "fix check-series.toml")

    bt = _section(data, "boot", where)
    w = f"{where} [boot]"
    boot = BootConfig(smoke_command=_take(bt, "smoke_command", str, "uname -r", w),
                      tip_command=_take(bt, "tip_command", str, "uname -r", w),
                      timeout=_take(bt, "timeout", int, 900, w),
                      memory=_take(bt, "memory", str, "2G", w),
                      cpus=_take(bt, "cpus", int, 2, w))
    _no_leftovers(bt, w)

    h = _section(data, "hygiene", where)
    w = f"{where} [hygiene]"
    hygiene = HygieneConfig(subject_max=_take(h, "subject_max", int, 75, w),
                            require_prefix=_take(h, "require_prefix", bool, True, w))
    _no_leftovers(h, w)
    _no_leftovers(data, where)
    return ProjectConfig(path=path.resolve(), root=base, patches=patches, per_patch=per_patch,
                         tip=tip, checkpatch_args=checkpatch_args, kerneldoc_severity=kd_sev,
                         build=build, kunit=kunit, boot=boot, hygiene=hygiene)
