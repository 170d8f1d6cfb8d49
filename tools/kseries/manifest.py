"""The pinned base tree and series location, read from manifest.toml."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_FIELDS_BASE = (
    "kernel_version",
    "package",
    "debian_version",
    "deb_sha256",
    "tarball",
    "tarball_sha256",
    "topdir",
    "tag",
)


@dataclass(frozen=True)
class Manifest:
    """What ``kernel-tree/manifest.toml`` pins."""

    path: Path
    kernel_version: str
    package: str
    debian_version: str
    deb_sha256: str
    tarball: str
    tarball_sha256: str
    topdir: str
    tag: str
    branch: str
    patches: str

    @property
    def deb_name(self) -> str:
        """File name apt-get download gives the package (':' escaped)."""
        version = self.debian_version.replace(":", "%3a")
        return f"{self.package}_{version}_all.deb"


def load(path: Path) -> Manifest:
    """Parse and validate a manifest; raise UsageError naming the problem."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(
            f"manifest {path} does not exist",
            "run from the project checkout or pass --manifest PATH",
        ) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"manifest {path} is not valid TOML: {exc}", "fix the file") from None
    base = data.get("base")
    if not isinstance(base, dict):
        raise UsageError(f"manifest {path} has no [base] table", "add [base] with the pin")
    values: dict[str, str] = {}
    for key in _FIELDS_BASE:
        value = base.get(key)
        if not isinstance(value, str) or not value:
            raise UsageError(
                f"manifest {path}: [base] {key} is missing or not a string",
                f'set {key} = "..." in [base]',
            )
        values[key] = value
    for key in ("deb_sha256", "tarball_sha256"):
        if not _SHA256.match(values[key]):
            raise UsageError(
                f"manifest {path}: [base] {key} is not a sha256 (64 lowercase hex digits)",
                "copy the value printed by sha256sum",
            )
    series = data.get("series", {})
    if not isinstance(series, dict):
        raise UsageError(f"manifest {path}: [series] must be a table", "see README.md")
    branch = series.get("branch", "vhost-blk")
    patches = series.get("patches", "patches")
    if not isinstance(branch, str) or not isinstance(patches, str):
        raise UsageError(f"manifest {path}: [series] branch/patches must be strings",
                         "fix the file")
    return Manifest(path=path.resolve(), branch=branch, patches=patches, **values)
