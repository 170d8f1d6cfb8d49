"""checkpatch.pl's helpers can run with the project's interpreter.

check-series puts the project's Python first on PATH when it runs the
tree's scripts/checkpatch.pl (so a crash of a helper is not a false
green, see Documentation/check-series.md).  checkpatch's SPDX check runs
the tree's scripts/spdxcheck.py, which imports ``ply`` and ``git``
(GitPython).  Without them every patch that adds a file fails checkpatch
with "a helper of checkpatch.pl crashed": the clean-clone CI run of
09f55f9, after GitPython was dropped from the dependencies, found that
only 80 minutes in.  This finds it in the unit tier of a fresh .venv.
"""

from __future__ import annotations

import importlib.util

import pytest


@pytest.mark.parametrize("module", ["ply", "git"])
def test_spdxcheck_imports_are_installed(module: str) -> None:
    assert importlib.util.find_spec(module) is not None, (
        f"{module} is not installed: the kernel's scripts/spdxcheck.py (checkpatch.pl's "
        "SPDX check) imports it; pyproject.toml must depend on it")
