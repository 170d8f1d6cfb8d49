"""Download one file over HTTP and check it against a pinned size and sha256.

The file goes to ``NAME.part`` first and is renamed only when its size
and sum match, so the cache never holds a wrong or partial tarball.
"""

from __future__ import annotations

import hashlib
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..deb import sha256_file
from ..errors import InfraError, UsageError
from ..progress import Progress

_CHUNK = 1 << 20
_EVERY = 10.0  # seconds between progress lines


def check(path: Path, size: int, sha256: str, what: str, hint: str) -> None:
    """Raise a UsageError naming the mismatch when ``path`` is not the pinned file."""
    actual_size = path.stat().st_size
    if actual_size != size:
        raise UsageError(f"{what} {path} has {actual_size} bytes, the manifest pins {size}", hint)
    actual = sha256_file(path)
    if actual != sha256:
        raise UsageError(f"{what} {path} has sha256 {actual}, the manifest pins {sha256}", hint)


def matches(path: Path, size: int, sha256: str) -> bool:
    return path.is_file() and path.stat().st_size == size and sha256_file(path) == sha256


def fetch(url: str, dest: Path, size: int, sha256: str, progress: Progress,
          timeout: float = 60.0) -> None:
    """Download ``url`` to ``dest``; a mismatch or an HTTP error is one line."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    digest = hashlib.sha256()
    got = 0
    mib = size / (1 << 20)
    progress.say(f"qemu: downloading {url} ({mib:.1f} MiB)")
    last = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, part.open("wb") as out:
            for chunk in iter(lambda: resp.read(_CHUNK), b""):
                out.write(chunk)
                digest.update(chunk)
                got += len(chunk)
                now = time.monotonic()
                if now - last >= _EVERY:
                    last = now
                    progress.say(f"qemu: downloaded {got / (1 << 20):.1f}/{mib:.1f} MiB")
    except urllib.error.HTTPError as exc:
        part.unlink(missing_ok=True)
        if exc.code == 404:
            raise InfraError(f"the mirror has no {url} (HTTP 404) although its index lists it",
                             "the mirror may be syncing: try again later, or set `mirror` in "
                             "qemu-tree/manifest.toml to another Debian mirror") from None
        raise InfraError(f"downloading {url} failed: HTTP {exc.code} {exc.reason}",
                         "try again later or set `mirror` in qemu-tree/manifest.toml") from None
    except (urllib.error.URLError, OSError) as exc:
        part.unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or exc
        raise InfraError(f"downloading {url} failed: {reason}",
                         "check the network, or pass --tarball PATH to a downloaded copy"
                         ) from None
    if got != size or digest.hexdigest() != sha256:
        part.unlink(missing_ok=True)
        raise UsageError(
            f"the download of {url} has {got} bytes, sha256 {digest.hexdigest()}; the manifest "
            f"pins {size} bytes, sha256 {sha256}",
            "try again; if Debian re-uploaded the file, move the pin in qemu-tree/manifest.toml")
    part.rename(dest)
