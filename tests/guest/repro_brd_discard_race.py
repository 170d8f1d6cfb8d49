"""Concurrent BLKDISCARD and O_DIRECT writes on /dev/ram1, no vhost-blk involved.

Not a test: the reproducer behind the note in test_fuzz.py.  On the
pinned 6.12 kernel it ends in "kernel BUG at drivers/block/brd.c:136"
(copy_to_brd: a page freed by a concurrent discard) within seconds:

  kseries run -- .venv/bin/python tests/guest/repro_brd_discard_race.py 90
"""

import fcntl
import mmap
import os
import struct
import sys
import threading
import time

BLKDISCARD = 0x1277
DEV = "/dev/ram1"
stop = time.monotonic() + float(sys.argv[1] if len(sys.argv) > 1 else 60)
counts = {"discard": 0, "write": 0}


def discarder() -> None:
    fd = os.open(DEV, os.O_RDWR)
    while time.monotonic() < stop:
        fcntl.ioctl(fd, BLKDISCARD, struct.pack("QQ", 0, 64 << 10))
        counts["discard"] += 1


def writer() -> None:
    fd = os.open(DEV, os.O_RDWR | os.O_DIRECT)
    buf = mmap.mmap(-1, 4096)
    i = 0
    while time.monotonic() < stop:
        os.pwritev(fd, [buf], (i % 16) * 4096)
        i += 1
        counts["write"] += 1


ts = [threading.Thread(target=discarder), threading.Thread(target=writer)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print("brd race reproducer: no crash", counts)
