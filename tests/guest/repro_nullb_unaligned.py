"""One O_DIRECT write to a 4096-byte-block null_blk from a buffer at page offset 512,
no vhost-blk involved.

Not a test: the reproducer behind the note in test_cfuzz.py.  null_blk
keeps the block layer's default DMA alignment (512 bytes), so O_DIRECT
takes a buffer that starts 512 bytes into a page, and the bio's segments
then start inside a logical block.  Memory-backed null_blk copies each
segment in pieces of up to one logical block at the offset of its first
sector inside the storage page (copy_to_nullb(), copy_from_nullb()), and
a 4096-byte piece that starts 3584 bytes into a page runs 3584 bytes past
it: the data lands in whatever page follows, and the sectors in between
are never written.  The read-back below shows the lost sectors; the
write into the next page corrupts kernel memory (on the debug kernel:
list corruption, kmemleak or KASAN reports, an oops):

  kseries run -- .venv/bin/python tests/guest/repro_nullb_unaligned.py
"""

import mmap
import os
import subprocess
import sys
import time
from pathlib import Path

NODE = Path("/sys/kernel/config/nullb/repro4k")
OFFSET = 512  # into the page: 512-byte aligned, what null_blk's DMA alignment allows
LENGTH = 8192  # two logical blocks

if not NODE.parent.is_dir():
    subprocess.run(["mount", "-t", "configfs", "configfs", "/sys/kernel/config"], check=False)
NODE.mkdir()
for attr, value in [("size", 16), ("blocksize", 4096), ("memory_backed", 1), ("power", 1)]:
    (NODE / attr).write_text(f"{value}\n")
dev = f"/dev/{NODE.name}"
for _ in range(100):
    if os.path.exists(dev):
        break
    time.sleep(0.05)
try:
    fd = os.open(dev, os.O_RDWR | os.O_DIRECT)
    src = mmap.mmap(-1, 3 * 4096)
    pattern = bytes(range(256)) * (LENGTH // 256)
    src[OFFSET:OFFSET + LENGTH] = pattern
    written = os.pwritev(fd, [memoryview(src)[OFFSET:OFFSET + LENGTH]], 0)
    back = mmap.mmap(-1, LENGTH)
    os.preadv(fd, [back], 0)
    bad = [s for s in range(LENGTH // 512)
           if back[s * 512:(s + 1) * 512] != pattern[s * 512:(s + 1) * 512]]
    os.close(fd)
    print(f"null_blk 4096-byte blocks, O_DIRECT write of {written} bytes from page offset "
          f"{OFFSET}: sectors that read back wrong: {bad or 'none'}")
    sys.stdout.flush()
finally:
    (NODE / "power").write_text("0\n")
    NODE.rmdir()
