"""Run a kseries entry point from a checkout in the project's environment.

tools/check-series, tools/submit-series and tools/bin/kseries start with
whatever python3 comes first on PATH, which lacks the project's
dependencies (jinja2, b4, ...).  They call run() with the entry
point's module: it re-executes the script with .venv/bin/python (and
.venv/bin first on PATH, for the helpers tools look up there), or, before
the environment is set up, says in one line what to run.  Standard
library only: it runs before anything is installed.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
# A dependency of the project that a bare python3 lacks.  The entry points
# import their commands' modules only when a command runs (so that --help
# is fast), so importing the entry point no longer proves the environment
# is there: look for it first.
ENV_MODULE = "jinja2"


def run(module: str, prog: str) -> None:
    venv_python = VENV / "bin" / "python"
    in_venv = Path(sys.prefix).resolve() == VENV.resolve()
    if not in_venv and venv_python.exists() and not os.environ.get("KSERIES_NO_REEXEC"):
        env = dict(os.environ, KSERIES_NO_REEXEC="1",
                   PATH=os.pathsep.join([str(VENV / "bin"), os.environ.get("PATH", "")]))
        os.execve(venv_python, [str(venv_python), sys.argv[0], *sys.argv[1:]], env)
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        if importlib.util.find_spec(ENV_MODULE) is None:
            raise ModuleNotFoundError(f"No module named {ENV_MODULE!r}", name=ENV_MODULE)
        entry = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        print(f"{prog}: error: the project's environment is not set up ({exc})", file=sys.stderr)
        print(f"{prog}: hint: run `tools/run unit` once in {ROOT} (it installs the Debian "
              "packages and .venv), then run this again", file=sys.stderr)
        sys.exit(2)
    sys.exit(entry.main())
