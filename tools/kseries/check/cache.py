"""Resume cache: results of unchanged patches, keyed by what they depend on.

A key hashes the check (name and version), the project config's
fingerprint, the patch (patch-id and commit message) and, for checks
whose result depends on the tree, the keys of every patch before it and
the base commit.  Editing patch 3 therefore reruns patch 3 only, and
editing patch 2 reruns the tree checks of patches 2 and 3.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .model import Result, State, Subtest


def make_key(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


class Cache:
    def __init__(self, directory: Path, read: bool) -> None:
        self.directory = directory
        self.read = read

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def get(self, key: str) -> tuple[Result, str] | None:
        """A cached result and its log text (when reading is on)."""
        if not self.read:
            return None
        try:
            data = json.loads(self._path(key).read_text())
            result = Result(check=data["check"], state=State(data["state"]),
                            description=data["description"], seconds=float(data["seconds"]),
                            cached=True,
                            subtests=[Subtest(s["name"], State(s["state"]), s.get("detail", ""))
                                      for s in data.get("subtests", [])])
            return result, str(data.get("log_text", ""))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, key: str, result: Result, log_text: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        data = {"check": result.check, "state": result.state.value,
                "description": result.description, "seconds": result.seconds,
                "subtests": [{"name": s.name, "state": s.state.value, "detail": s.detail}
                             for s in result.subtests],
                "log_text": log_text}
        tmp = self._path(key).with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self._path(key))
