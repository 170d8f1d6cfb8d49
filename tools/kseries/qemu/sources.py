"""Look the pinned QEMU up in Debian's Sources index, without touching apt's config.

The machine's apt configuration has no deb-src line for the suite, and
must not be edited.  A private sources list, lists directory and cache
under ``qemu-tree/cache/apt/`` give ``apt-get update`` and ``apt-cache
showsrc`` a view of that one suite: apt checks the index's signature,
and the index gives the pool directory and the files' sizes and sums.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import InfraError, UsageError
from ..progress import Progress
from .manifest import QemuManifest


@dataclass(frozen=True)
class SourceEntry:
    """One version of a source package in the index."""

    package: str
    version: str
    directory: str
    files: dict[str, tuple[int, str]]  # name -> (size, sha256)

    def orig_tarballs(self) -> list[str]:
        return [name for name in self.files if ".orig.tar." in name]


def parse_showsrc(text: str) -> list[SourceEntry]:
    """The stanzas of ``apt-cache showsrc`` (or a Sources file)."""
    entries = []
    for stanza in text.split("\n\n"):
        fields: dict[str, list[str]] = {}
        key = ""
        for line in stanza.splitlines():
            if line[:1] in (" ", "\t"):
                if key:
                    fields[key].append(line.strip())
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = [value.strip()] if value.strip() else []
        if "Package" not in fields or "Version" not in fields:
            continue
        files = {}
        for line in fields.get("Checksums-Sha256", []):
            parts = line.split()
            if len(parts) == 3 and parts[1].isdigit():
                files[parts[2]] = (int(parts[1]), parts[0])
        entries.append(SourceEntry(package=fields["Package"][0], version=fields["Version"][0],
                                   directory=(fields.get("Directory") or [""])[0], files=files))
    return entries


def _describe(entry: SourceEntry) -> str:
    tarballs = [f"{name}, {entry.files[name][0]} bytes, sha256 {entry.files[name][1]}"
                for name in entry.orig_tarballs()]
    return f"{entry.version} ({'; '.join(tarballs) or 'no orig tarball'})"


def choose(man: QemuManifest, entries: list[SourceEntry]) -> SourceEntry:
    """The pinned version's entry; its tarball must match the pin exactly."""
    offered = [e for e in entries if e.package == man.package]
    where = f"{man.mirror} {man.suite}"
    pinned = [e for e in offered if e.version == man.debian_version]
    if not pinned:
        others = "; ".join(_describe(e) for e in offered) or "no version at all"
        raise UsageError(
            f"Debian no longer offers {man.spec} in {where}; it offers {others}",
            f"move the pin: copy one version's debian_version, tarball, tarball_size and "
            f"tarball_sha256 (and version, topdir, tags) into {man.path}, move "
            f"{man.tree_dir} away, then `kseries qemu build` shows whether "
            f"{man.patches} still applies")
    entry = pinned[0]
    listed = entry.files.get(man.tarball)
    if listed is None:
        raise UsageError(f"{man.spec} in {where} has no file {man.tarball} "
                         f"(it has: {', '.join(sorted(entry.files)) or 'none'})",
                         f"fix tarball in {man.path}")
    if listed != (man.tarball_size, man.tarball_sha256):
        raise UsageError(
            f"the index lists {man.tarball} with {listed[0]} bytes, sha256 {listed[1]}; "
            f"{man.path.name} pins {man.tarball_size} bytes, sha256 {man.tarball_sha256}",
            f"the index and the pin disagree: if Debian re-uploaded the file, move the pin "
            f"in {man.path}")
    return entry


def apt_dir(man: QemuManifest) -> Path:
    return man.cache_dir / "apt"


def apt_options(base: Path) -> list[str]:
    """apt-get/apt-cache options for a private sources list and index."""
    return ["-o", f"Dir::Etc::sourcelist={base / 'sources.list'}",
            "-o", "Dir::Etc::sourceparts=-",
            "-o", f"Dir::State::Lists={base / 'lists'}",
            "-o", f"Dir::Cache={base / 'cache'}"]


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, errors="replace", check=False)


def lookup(man: QemuManifest, progress: Progress) -> SourceEntry:
    """Refresh the private index of the pinned suite and find the pinned version."""
    base = apt_dir(man)
    for sub in ("lists/partial", "cache/archives/partial"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    (base / "sources.list").write_text(f"deb-src {man.mirror} {man.suite} {man.component}\n")
    if shutil.which("apt-get") is None or shutil.which("apt-cache") is None:
        raise UsageError("apt-get is not installed, so the Sources index cannot be read",
                         "run on Debian, or pass --tarball PATH to a downloaded tarball")
    progress.say(f"qemu: reading the Sources index of {man.suite} (private apt lists in {base})")
    # Error-Mode=any: without it, apt-get update exits 0 when the index
    # could not be fetched, and the pinned version would look vanished.
    proc = _run(["apt-get", *apt_options(base), "-o", "APT::Update::Error-Mode=any", "update"])
    if proc.returncode != 0:
        errors = [line[3:] for line in proc.stderr.splitlines() if line.startswith(("E: ", "W: "))]
        detail = (errors or proc.stderr.strip().splitlines() or ["no message"])[0]
        raise InfraError(f"apt-get update of {man.mirror} {man.suite} failed: {detail}",
                         "check the network and `mirror` in qemu-tree/manifest.toml, or pass "
                         "--tarball PATH to a downloaded tarball")
    proc = _run(["apt-cache", *apt_options(base), "showsrc", man.package])
    return choose(man, parse_showsrc(proc.stdout if proc.returncode == 0 else ""))
