"""In-guest tests of /dev/vhost-blk, run inside the VM started by `kseries run`.

  kseries run --timeout 900 -- python -m pytest -q -p no:cacheprovider tests/guest

The host filesystem is shared read-only; /tmp is writable.  Every test
is skipped, with the reason, when /dev/vhost-blk is missing or the
tests do not run as root.  The backends and the device fixtures are in
vblk_env.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from vblk_env import backend, blk, ram, ramblk

from kseries.vblk.device import DEVICE_PATH

__all__ = ["backend", "blk", "ram", "ramblk"]

def _skip_reason() -> str | None:
    if not os.path.exists(DEVICE_PATH):
        return (f"{DEVICE_PATH} is missing: not running in a guest with CONFIG_VHOST_BLK "
                "(run through `kseries run`)")
    if os.geteuid() != 0:
        return "the in-guest tests need root"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _skip_reason()
    if reason is None:
        return
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.skip(reason=reason))
