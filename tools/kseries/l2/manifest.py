"""What l2-guest/manifest.toml pins: the guest kernel package and the tools."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..deb import Pin
from ..errors import UsageError

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class L2Manifest:
    path: Path
    pin: Pin
    release: str
    modules: tuple[str, ...]
    busybox: Path
    programs: tuple[Path, ...]
    links: dict[str, str]

    @property
    def init(self) -> Path:
        """The guest's init (its checks), next to the manifest."""
        return self.path.parent / "init"

    @property
    def cache(self) -> Path:
        return self.path.parent / "cache"


def _str(table: dict[str, object], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise UsageError(f"{where}: {key} is missing or not a string", f'set {key} = "..."')
    return value


def _strings(table: dict[str, object], key: str, where: str) -> tuple[str, ...]:
    value = table.get(key)
    if not isinstance(value, list) or not value or not all(
            isinstance(v, str) and v for v in value):
        raise UsageError(f"{where}: {key} is missing or not a list of strings",
                         f'set {key} = ["...", ...]')
    return tuple(value)


def load(path: Path) -> L2Manifest:
    """Parse and check the manifest; a UsageError names what is wrong."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"{path} does not exist", "run from the project checkout") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path} is not valid TOML: {exc}", "fix the file") from None
    kernel, initramfs = data.get("kernel"), data.get("initramfs")
    if not isinstance(kernel, dict) or not isinstance(initramfs, dict):
        raise UsageError(f"{path} needs a [kernel] and an [initramfs] table",
                         "see the comments in l2-guest/manifest.toml")
    where = f"{path} [kernel]"
    sha = _str(kernel, "sha256", where)
    if not _SHA256.match(sha):
        raise UsageError(f"{where}: sha256 is not 64 lowercase hex digits",
                         "copy it from `sha256sum` of the .deb")
    pin = Pin(_str(kernel, "package", where), _str(kernel, "debian_version", where), sha,
              "amd64", path)
    where = f"{path} [initramfs]"
    links = initramfs.get("links", {})
    if not isinstance(links, dict) or not all(
            isinstance(k, str) and k.startswith("/") and isinstance(v, str) and "/" not in v
            for k, v in links.items()):
        raise UsageError(f"{where}: links must map absolute paths to file names",
                         'write links = { "/usr/sbin/mkfs.ext4" = "mke2fs" }')
    programs = tuple(Path(p) for p in _strings(initramfs, "programs", where))
    busybox = Path(_str(initramfs, "busybox", where))
    for program in (busybox, *programs):
        if not program.is_absolute():
            raise UsageError(f"{where}: {program} is not an absolute path",
                             "name programs by their full path on the host")
    return L2Manifest(path=path, pin=pin, release=_str(kernel, "release", f"{path} [kernel]"),
                      modules=_strings(kernel, "modules", f"{path} [kernel]"),
                      busybox=busybox, programs=programs, links=dict(links))
