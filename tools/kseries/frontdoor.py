"""The one main() wrapper of the front doors: error class to exit status.

``kseries`` and its aliases ``check-series`` (``kseries check``) and
``submit-series`` (``kseries submit``) parse their arguments and hand
the command function to ``run()``, which turns what ends a command into
one exit status, the same way for all of them:

- the function's return value (0, or 1 when a check failed);
- a ``KseriesError``: its one line and hint (``errors.report``), and the
  exit status its class names (``errors.py``: 1 a failure, 2 usage or
  environment);
- Ctrl-C or SIGTERM (turned into ``KeyboardInterrupt`` while the command
  runs, so that ``finally`` blocks stop guests and builds): 130;
- the reader of stdout gone (``... | head -1``): 141, no traceback.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType

from .errors import EXIT_BROKEN_PIPE, EXIT_INTERRUPTED, KseriesError, report

Command = Callable[[argparse.Namespace], int]


def _terminated(signum: int, frame: FrameType | None) -> None:
    # Unwind like Ctrl-C, so that a guest being booted is killed (boot.py).
    raise KeyboardInterrupt


def run(prog: str, func: Command, args: argparse.Namespace) -> int:
    """Run one command of ``prog``; its exit status, never a traceback for a known end."""
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        return int(func(args))
    except KseriesError as err:
        report(prog, err)
        return err.exit_code
    except BrokenPipeError:
        # Nothing more can reach the reader; keep the interpreter's final
        # flush of stdout from raising again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)
