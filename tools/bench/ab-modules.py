#!/usr/bin/env python3
"""Compare two builds of the vhost_blk module side by side in one guest.

A change to the driver cannot be measured by comparing two benchmark runs
under TCG: two runs of the same kernel differ by ~30 %.  This script runs
in one guest, loads each variant of ``vhost_blk.ko`` in turn (ABAB... with
the order swapped every round), runs the same vblk-load cases on each and
reports, per case and variant, the median IOPS and the context switches
and kicks per request (``/proc/stat`` ctxt, which does not depend on how
fast the host is).  Standard library only; run it with ``kseries run
--outdir`` on a kernel built with ``CONFIG_VHOST_BLK=m``::

    kseries run --outdir build/x86_64-ab -- python3 tools/bench/ab-modules.py \
        --core build/x86_64-ab/drivers/vhost old=/tmp/ab/old.ko new=/tmp/ab/new.ko
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kseries.bench.guest import null_blk, prepare_brd
from kseries.bench.matrix import BenchCase, Settings, load_command
from kseries.bench.results import parse_load

CASES = [  # device, rw, iodepth, queues, workers
    ("null_blk", "randread", 1, 1, 1),
    ("null_blk", "randread", 32, 1, 1),
    ("null_blk", "randread", 128, 1, 1),
    ("null_blk", "randwrite", 32, 1, 1),
    ("null_blk", "randread", 32, 2, 2),
    ("brd", "randread", 32, 1, 1),
    ("brd", "randwrite", 32, 2, 2),
]


def ctxt() -> int:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("ctxt "):
            return int(line.split()[1])
    raise RuntimeError("/proc/stat has no ctxt line")


def run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)}: {proc.stderr.strip() or proc.returncode}")


def one(tool: str, dev: str, case: BenchCase, runtime: int) -> dict[str, float]:
    cmd = load_command(case, Settings(runtime=runtime, ramp=1), tool, dev=dev)
    before = ctxt()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=runtime + 60, check=False)
    switches = ctxt() - before
    res = parse_load(case.key, proc.stdout)
    if not res.ok:
        raise RuntimeError(f"vblk-load failed: {res.error or proc.stderr.strip()}")
    ios = res.extra["ios"]
    # ctxt covers the ramp and the measured part; ios only the latter.
    total = ios * (runtime + 1) / runtime
    return {"iops": res.iops, "ctxt_per_io": switches / total,
            "kicks_per_io": res.extra["kicks"] / ios,
            "waits_per_io": res.extra["waits"] / ios}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("variants", nargs="+", metavar="NAME=KO")
    ap.add_argument("--core", required=True, help="directory with vhost.ko and vhost_iotlb.ko")
    ap.add_argument("--tool", default="build/bench/vblk-load")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runtime", type=int, default=3)
    args = ap.parse_args()
    variants = [v.split("=", 1) for v in args.variants]
    core = Path(args.core)
    for ko in ("vhost_iotlb.ko", "vhost.ko"):
        run(["insmod", str(core / ko)])
    results: dict[tuple[str, int], list[dict[str, float]]] = {}
    with contextlib.ExitStack() as stack:
        devs = {"null_blk": stack.enter_context(null_blk(4096, 2)), "brd": prepare_brd()}
        for rnd in range(args.rounds):
            order = variants if rnd % 2 == 0 else variants[::-1]
            for name, ko in order:
                run(["insmod", ko])
                try:
                    for i, (dev, rw, qd, q, w) in enumerate(CASES):
                        case = BenchCase(dev, rw, qd, q, "vhost-blk", w)
                        r = one(args.tool, devs[dev], case, args.runtime)
                        results.setdefault((name, i), []).append(r)
                        print(f"[ab {time.monotonic():7.1f}] round {rnd} {name:>4} {dev} {rw} "
                              f"qd{qd} {q}q/{w}w: {r['iops']:.0f} IOPS "
                              f"{r['ctxt_per_io']:.2f} ctxt/io", flush=True)
                finally:
                    run(["rmmod", "vhost_blk"])
    names = [n for n, _ in variants]
    print("\n| case | " + " | ".join(f"{n} IOPS | {n} ctxt/io | {n} kicks/io" for n in names)
          + f" | {names[-1]}/{names[0]} IOPS |")
    print("|---" * (2 + 3 * len(names)) + "|")
    for i, (dev, rw, qd, q, w) in enumerate(CASES):
        cells, iops = [], []
        for n in names:
            rs = results[(n, i)]
            med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
            iops.append(med["iops"])
            cells += [f"{med['iops']:,.0f}", f"{med['ctxt_per_io']:.2f}",
                      f"{med['kicks_per_io']:.3f}"]
        print(f"| {dev} {rw} qd{qd} {q}q/{w}w | " + " | ".join(cells)
              + f" | {iops[-1] / iops[0]:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
