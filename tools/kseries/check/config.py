"""The project's check-series.toml: what to build, test and boot, per patch.

Every key has a default, so a series without a config file still gets
the cheap checks.  Paths are relative to the directory of the file.
Unknown keys are errors, so a typo does not silently change nothing
(``tomlconfig`` reads the file into ``_File``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated

from .. import tomlconfig
from .model import State

FILE_NAME = "check-series.toml"
DEFAULT_PER_PATCH = ("apply", "checkpatch", "hygiene", "build", "sparse", "kerneldoc", "kunit")
DEFAULT_TIP = ("boot", "diffstat", "range-diff")

# A new problem of this kind fails the patch or only warns.
Severity = Annotated[State, tomlconfig.one_of(State.WARNING, State.FAIL)]


@dataclass(frozen=True)
class BuildConfig:
    fragments: tuple[Path, ...] = ()
    make_flags: tuple[str, ...] = ("W=1",)
    severity: Severity = State.FAIL
    sparse_severity: Severity = State.WARNING
    header_object_limit: int = 40


@dataclass(frozen=True)
class VariantsConfig:
    """The opt-in build variants (build-y, build-m, build-n, build-i386, build-clang)."""

    # Over virtme-configkernel --defconfig of the variant's architecture;
    # None: [build] fragments.
    fragments: tuple[Path, ...] | None = None
    severity: Severity = State.FAIL


@dataclass(frozen=True)
class CoccinelleConfig:
    severity: Severity = State.WARNING


@dataclass(frozen=True)
class KunitConfig:
    kunitconfig: Path | None = None
    arch: Annotated[str, tomlconfig.one_of("um", "x86_64")] = "um"
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
    kerneldoc_severity: Severity = State.WARNING
    build: BuildConfig = field(default_factory=BuildConfig)
    kunit: KunitConfig = field(default_factory=KunitConfig)
    boot: BootConfig = field(default_factory=BootConfig)
    hygiene: HygieneConfig = field(default_factory=HygieneConfig)
    variants: VariantsConfig = field(default_factory=VariantsConfig)
    coccinelle: CoccinelleConfig = field(default_factory=CoccinelleConfig)

    @property
    def variant_fragments(self) -> tuple[Path, ...]:
        """The fragments of the variant builds: [variants] fragments, else [build]'s."""
        if self.variants.fragments is None:
            return self.build.fragments
        return self.variants.fragments

    def fingerprint(self) -> str:
        """Changes when the config or a file it names changes (resume cache)."""
        digest = hashlib.sha256(json.dumps(asdict(self), default=str, sort_keys=True).encode())
        files = [*self.build.fragments, *self.variant_fragments]
        if self.kunit.kunitconfig:
            files.append(self.kunit.kunitconfig)
        for path in files:
            digest.update(path.read_bytes() if path.is_file() else b"<missing>")
        return digest.hexdigest()


@dataclass(frozen=True)
class _Series:
    patches: Path | None = None  # default: patches/ beside the file


@dataclass(frozen=True)
class _Checks:
    per_patch: tuple[str, ...] = DEFAULT_PER_PATCH
    tip: tuple[str, ...] = DEFAULT_TIP


@dataclass(frozen=True)
class _Checkpatch:
    args: tuple[str, ...] = ("--strict",)


@dataclass(frozen=True)
class _Kerneldoc:
    severity: Severity = State.WARNING


@dataclass(frozen=True)
class _File:
    """check-series.toml, table by table."""

    series: _Series = field(default_factory=_Series)
    checks: _Checks = field(default_factory=_Checks)
    checkpatch: _Checkpatch = field(default_factory=_Checkpatch)
    kerneldoc: _Kerneldoc = field(default_factory=_Kerneldoc)
    build: BuildConfig = field(default_factory=BuildConfig)
    kunit: KunitConfig = field(default_factory=KunitConfig)
    boot: BootConfig = field(default_factory=BootConfig)
    hygiene: HygieneConfig = field(default_factory=HygieneConfig)
    variants: VariantsConfig = field(default_factory=VariantsConfig)
    coccinelle: CoccinelleConfig = field(default_factory=CoccinelleConfig)


def load(path: Path | None, root: Path) -> ProjectConfig:
    """Read ``path`` (or use the defaults when it is None)."""
    if path is None:
        return ProjectConfig(path=None, root=root, patches=root / "patches")
    data = tomlconfig.load(
        _File, path, what="config", file_name=FILE_NAME,
        missing_hint="create it (see Documentation/check-series.md) or drop --config",
        hint="the keys are in Documentation/check-series.md")
    base = path.resolve().parent
    return ProjectConfig(path=path.resolve(), root=base,
                         patches=data.series.patches or base / "patches",
                         per_patch=data.checks.per_patch, tip=data.checks.tip,
                         checkpatch_args=data.checkpatch.args,
                         kerneldoc_severity=data.kerneldoc.severity, build=data.build,
                         kunit=data.kunit, boot=data.boot, hygiene=data.hygiene,
                         variants=data.variants, coccinelle=data.coccinelle)
