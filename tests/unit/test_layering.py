"""The layering of tools/: vblk is the in-guest test driver, kseries the tooling.

vblk runs inside the test VM, so it may import only the standard library
and itself; kseries never imports vblk.  Both are checked on the source
(every import statement, wherever it is, found with ast), so an import
inside a function counts too.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[2] / "tools"


def imported(path: Path) -> set[str]:
    """Top-level names of the modules a file imports (relative imports excluded)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def sources(package: str) -> list[Path]:
    files = sorted((TOOLS / package).rglob("*.py"))
    assert files, f"no sources under tools/{package}"
    return files


@pytest.mark.parametrize("path", sources("vblk"), ids=lambda p: p.name)
def test_vblk_needs_only_the_standard_library(path: Path) -> None:
    outside = {n for n in imported(path)
               if n != "vblk" and n != "__future__" and n not in sys.stdlib_module_names}
    assert not outside, f"{path.relative_to(TOOLS)} imports {sorted(outside)}"


def test_kseries_does_not_import_vblk() -> None:
    users = [str(p.relative_to(TOOLS)) for p in sources("kseries") if "vblk" in imported(p)]
    assert users == []


def test_the_scan_sees_third_party_and_nested_imports(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text("import os\nfrom . import uapi\n\ndef f():\n    import jinja2.sandbox\n"
                   "    from vblk.device import VhostBlk\n")
    assert imported(src) == {"os", "jinja2", "vblk"}


def test_the_guest_suite_imports_this_checkouts_vblk() -> None:
    """As in the VM: pytest from the checkout, no PYTHONPATH; tests/conftest.py puts
    tools/ on sys.path, so the suite collects and uses tools/vblk of this checkout."""
    root = TOOLS.parent
    script = ("import sys, pytest\n"
              "rc = pytest.main(['-q', '--collect-only', '-p', 'no:cacheprovider',"
              " 'tests/guest/test_io.py', 'tests/guest/vduse_driver.py'])\n"
              "print('VBLK=' + sys.modules['vblk'].__file__)\n"
              "sys.exit(rc)\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", script], cwd=root, env=env,
                          capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"VBLK={TOOLS / 'vblk' / '__init__.py'}" in proc.stdout.splitlines()
