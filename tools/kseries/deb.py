"""A pinned Debian package: ``apt-get download`` it once, check its sha256.

The kernel tree (kernel-tree/manifest.toml) and the L2 guest's kernel
(l2-guest/manifest.toml) are both pinned this way: package, exact
version, sha256.  A version Debian has dropped is a usage error that
names what the mirror offers and the file to edit.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .errors import InfraError, UsageError
from .progress import Progress


@dataclass(frozen=True)
class Pin:
    package: str
    version: str
    sha256: str
    arch: str
    pin_file: Path  # the manifest to edit when the pin moves

    @property
    def file_name(self) -> str:
        """The name apt-get download gives the package (':' escaped)."""
        return f"{self.package}_{self.version.replace(':', '%3a')}_{self.arch}.deb"

    @property
    def spec(self) -> str:
        return f"{self.package}={self.version}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def available_versions(package: str) -> list[str]:
    try:
        out = subprocess.run(["apt-cache", "madison", package], capture_output=True,
                             text=True, check=False).stdout
    except FileNotFoundError:
        return []
    return [line.split("|")[1].strip() for line in out.splitlines() if line.count("|") >= 2]


def download(pin: Pin, cache: Path, progress: Progress, move_hint: str = "") -> Path:
    """The pinned .deb from the cache, downloaded first if needed; its sha256 checked."""
    cache.mkdir(parents=True, exist_ok=True)
    deb = cache / pin.file_name
    if not (deb.exists() and sha256_file(deb) == pin.sha256):
        _apt_download(pin, cache, deb, progress, move_hint)
    else:
        progress.say(f"using cached {deb}")
    actual = sha256_file(deb)
    if actual != pin.sha256:
        raise UsageError(
            f"{deb} has sha256 {actual}, {pin.pin_file} pins {pin.sha256}",
            f"delete the file and fetch again; if Debian rebuilt the package, "
            f"move the pin in {pin.pin_file}",
        )
    return deb


def _apt_download(pin: Pin, cache: Path, deb: Path, progress: Progress,
                  move_hint: str) -> None:
    if shutil.which("apt-get") is None:
        raise UsageError("apt-get is not installed, so the pinned package cannot be downloaded",
                         f"put {pin.file_name} in {cache}")
    progress.say(f"downloading {pin.spec} with apt-get download")
    proc = subprocess.run(["apt-get", "download", pin.spec], cwd=cache, capture_output=True,
                          text=True, check=False)
    if proc.returncode == 0 and deb.exists():
        return
    versions = available_versions(pin.package)
    detail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
    if pin.version not in versions:
        offered = ", ".join(versions) if versions else "no version"
        raise UsageError(
            f"Debian no longer offers {pin.spec} (apt said: {detail[0]}); "
            f"the mirror has {offered}",
            f"move the pin in {pin.pin_file}{move_hint}",
        )
    raise InfraError(
        f"apt-get download {pin.spec} failed: {detail[0]}",
        f"run `apt-get update` (as root) and check the network; or put {pin.file_name} "
        f"in {cache}",
    )
