"""fio inside one L2 guest against four virtio-blk back ends, side by side.

Run inside the project's VM (a kernel with KVM, see tests/guest/test_l2.py):

  python -m kseries.bench.l2 --out DIR [--runtime 5] [--queues 1]

The L2 guest (``kseries l2 build``) boots once with one disk per back
end and runs fio 4 KiB randread and randwrite at iodepth 1, 32 and 128
(l2-guest/init, mode "bench"), each cell on every disk in turn, so a
change in the host's speed during the run falls on all back ends alike.
Every back end serves the same null_blk (memory_backed=0: the figures
are the cost of the path):

- virtio-blk: QEMU's userspace device, aio=io_uring, cache=none, an iothread;
- virtio-blk vq-mapping: the same with iothread-vq-mapping, an iothread a queue;
- vhost-user-blk: qemu-storage-daemon (the same QEMU build) over a unix socket;
- vhost-blk: vhost-blk-pci, the kernel serving the virtqueues, a worker a queue.

It prints the IOPS table and vhost-blk's ratio to each other back end,
and writes results.json and table.md (and plot.png with matplotlib) to
DIR.  Under TCG, and L2 under nested SVM on TCG, only ratios within one
run mean anything.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import paths
from .. import table as text_table
from ..l2 import guest
from ..l2.image import outputs
from ..qemu.build import binaries
from .guest import SOCKET, null_blk, storage_daemon

BENCH = re.compile(r"L2: bench ([0-9a-f]{2}) (\S+) (\d+) ([\d.]+) ([\d.]+)")
BACKENDS = ("virtio-blk", "virtio-blk vq-mapping", "vhost-user-blk", "vhost-blk")


@dataclass(frozen=True)
class Point:
    backend: str
    rw: str
    iodepth: int
    iops: float
    lat_us: float


def _say(msg: str) -> None:
    print(f"[bench-l2 {time.monotonic():8.1f}] {msg}", flush=True)


# The back ends' PCI slots in the L2 guest, which finds each disk by its
# slot (l2-guest/init): the first back end at FIRST_SLOT, and so on.
FIRST_SLOT = 4


def _slot(i: int) -> str:
    """Back end number ``i``'s PCI slot, two hex digits."""
    return f"{FIRST_SLOT + i:02x}"


def _qemu_args(backend: str, dev: str, queues: int, i: int) -> tuple[list[str], list[str]]:
    """(extra QEMU options, -device values) for back end number ``i``.

    Every back end opens the same null_blk; the userspace ones with
    locking=off, because two QEMU block nodes (and qemu-storage-daemon)
    on one file would otherwise refuse each other's write locks.
    """
    addr = f"0x{_slot(i)}"
    blockdev = ["-blockdev", f"driver=host_device,node-name=d{i},filename={dev},"
                "cache.direct=on,aio=io_uring,locking=off"]
    if backend == "virtio-blk":
        return ([*blockdev, "-object", f"iothread,id=io{i}"],
                [f"virtio-blk-pci,drive=d{i},iothread=io{i},num-queues={queues},addr={addr}"])
    if backend == "virtio-blk vq-mapping":
        threads = [f"io{i}q{q}" for q in range(queues)]
        extra = list(blockdev)
        for t in threads:
            extra += ["-object", f"iothread,id={t}"]
        mapping = ",".join(f'{{"iothread":"{t}"}}' for t in threads)
        return (extra, [f'{{"driver":"virtio-blk-pci","drive":"d{i}","num-queues":{queues},'
                        f'"iothread-vq-mapping":[{mapping}],"addr":"{addr}"}}'])
    if backend == "vhost-user-blk":
        # vhost-user needs all guest memory shareable: the other back ends
        # then run on the same memfd memory.
        return (["-object", "memory-backend-memfd,id=mem,size=512M,share=on",
                 "-machine", "memory-backend=mem", "-chardev", f"socket,id=c{i},path={SOCKET}"],
                [f"vhost-user-blk-pci,chardev=c{i},num-queues={queues},addr={addr}"])
    return ([], [f"vhost-blk-pci,path={dev},num-queues={queues},worker-per-virtqueue=on,"
                 f"addr={addr}"])


def allowance(line: str, runtime: int) -> float | None:
    """Seconds the L2 guest gets, from this console line, to print the
    next step's line; None when the line starts no step."""
    if "L2: up " in line:
        # Find the disks and read the first one's reboot-marker block.
        return 300.0
    if "L2: bench start " in line:
        # The guest's init gives fio timeout(1) of runtime * 10 + 120 s.
        return runtime * 10 + 120 + 60.0
    return None


def run_all(img: guest.Images, qsd: Path, backends: list[str], dev: str, queues: int,
            runtime: int, iodepths: list[int], record: Callable[[Point], None]) -> None:
    """One L2 boot with every back end's disk; fio on each in turn for
    each pattern and iodepth, so drift in the host's speed during the
    run falls on every back end alike.  Each result goes to record() as
    it comes."""
    extra: list[str] = []
    devices: list[str] = []
    for i, backend in enumerate(backends):
        e, d = _qemu_args(backend, dev, queues, i)
        extra += e
        devices += d
    slots = {_slot(i): b for i, b in enumerate(backends)}
    append = (f"l2.mode=bench l2.slots={','.join(slots)} l2.runtime={runtime} "
              f"l2.numjobs={queues} l2.iodepths={','.join(map(str, iodepths))} "
              "l2.rws=randread,randwrite")
    # One vCPU a queue: fewer L2 vCPUs, fewer of the resets nested SVM on
    # TCG has (Documentation/l2-guests.md).
    cmd = guest.command(img, append, devices, cpus=queues, extra=extra)
    found = 0
    with contextlib.ExitStack() as stack:
        if "vhost-user-blk" in backends:
            stack.enter_context(storage_daemon(dev, queues, str(qsd)))
        run = stack.enter_context(guest.start(cmd))
        # A deadline over the whole run would have to allow the slowest
        # boot plus every fio run; one a step catches a stall sooner.
        deadline = time.monotonic() + guest.BOOT_ALLOWANCE
        stack.callback(run.save, "bench")
        while (line := run.next_line(deadline)) is not None:
            if (step := allowance(line, runtime)) is not None:
                deadline = time.monotonic() + step
            if m := BENCH.search(line):
                slot, rw, qd, iops, lat = m.groups()
                backend = slots.get(slot, f"slot {slot}")
                record(Point(backend, rw, int(qd), float(iops), float(lat)))
                found += 1
                _say(f"{backend}: {rw} iodepth {qd}: {float(iops):,.0f} IOPS")
            elif "L2: FAIL" in line or "L2: done" in line or "L2: up " in line:
                _say(line.strip())
        rc = run.proc.wait(timeout=60)
        if rc != 0:
            raise RuntimeError(f"QEMU exited {rc}\n{run.tail(20)}")
        if not any("L2: done" in line for line in run.console):
            # A reset (QEMU exits on it with -no-reboot) in the middle of the runs.
            raise guest.GuestReset(f"the L2 guest reset after {found} fio "
                                   f"runs, {time.monotonic() - run.started:.0f} s after QEMU "
                                   f"started\n{run.tail(10)}")


def table(points: list[Point]) -> str:
    by = {(p.backend, p.rw, p.iodepth): p for p in points}
    keys = sorted({(p.rw, p.iodepth) for p in points})
    titles = ["rw", "iodepth", *BACKENDS, *(f"vhost-blk / {b}" for b in BACKENDS[:-1])]
    rows = []
    for rw, qd in keys:
        iops = [by.get((b, rw, qd)) for b in BACKENDS]
        cells = [f"{p.iops:,.0f}" if p else "FAILED" for p in iops]
        vb = iops[-1]
        ratios = [f"{vb.iops / p.iops:.2f}" if vb and p and p.iops else "-" for p in iops[:-1]]
        rows.append([rw, qd, *cells, *ratios])
    return text_table.markdown(titles, rows) + "\n"


def plot(points: list[Point], dest: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    keys = sorted({(p.rw, p.iodepth) for p in points})
    by = {(p.backend, p.rw, p.iodepth): p.iops for p in points}
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / len(BACKENDS)
    for i, backend in enumerate(BACKENDS):
        ax.bar([k + i * width for k in range(len(keys))],
               [by.get((backend, rw, qd), 0) for rw, qd in keys], width, label=backend)
    ax.set_xticks([k + 0.4 - width / 2 for k in range(len(keys))],
                  [f"{rw}\nqd {qd}" for rw, qd in keys])
    ax.set_ylabel("IOPS (fio in the L2 guest, 4 KiB)")
    ax.set_title("One L2 guest, four back ends, one null_blk (nested SVM on TCG: "
                 "ratios only)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(dest, dpi=100)
    return True


def save(out: Path, queues: int, runtime: int, points: list[Point]) -> str:
    """table.md and results.json in ``out``; the table's text."""
    text = table(points)
    (out / "table.md").write_text(text)
    (out / "results.json").write_text(json.dumps(
        {"queues": queues, "runtime": runtime, "points": [asdict(p) for p in points]},
        indent=1) + "\n")
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kseries.bench.l2", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="directory for the results")
    ap.add_argument("--runtime", type=int, default=5, help="seconds per fio run (after 1 s)")
    ap.add_argument("--queues", type=int, default=1, help="virtqueues and fio jobs")
    ap.add_argument("--iodepths", default="1,32,128")
    ap.add_argument("--backends", default=",".join(BACKENDS))
    ap.add_argument("--attempts", type=int, default=3,
                    help="boots while the L2 guest resets (nested SVM on TCG)")
    args = ap.parse_args(argv)
    if not os.path.exists("/dev/kvm"):
        print("bench-l2: no /dev/kvm: boot a kernel built with `kseries build --kvm`",
              file=sys.stderr)
        return 2
    backends = [b for b in args.backends.split(",") if b]
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        print(f"bench-l2: unknown back end {unknown[0]!r}; choose from {', '.join(BACKENDS)}",
              file=sys.stderr)
        return 2
    lay = paths.layout()
    bins = binaries(lay.qemu_build)
    vmlinuz, initrd = outputs(lay.l2_build)
    for f in (bins["qemu-system-x86_64"], bins["qemu-storage-daemon"], vmlinuz, initrd):
        if not f.is_file():
            print(f"bench-l2: {f} is missing: run `kseries qemu build` and `kseries l2 build`",
                  file=sys.stderr)
            return 2
    img = guest.Images(bins["qemu-system-x86_64"], vmlinuz, initrd)
    iodepths = [int(x) for x in args.iodepths.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    points: list[Point] = []

    def record(point: Point) -> None:
        # Written at every result: a VM that dies (L1 under nested SVM on
        # TCG has reset mid-run) keeps what was measured.
        points.append(point)
        save(args.out, args.queues, args.runtime, points)

    with guest.static_keys_held(), null_blk(4096, max(2, args.queues)) as dev:
        _say(f"null_blk {dev}; back ends: {', '.join(backends)}")
        t0 = time.monotonic()
        try:
            # A reset measures the cells again from the start, on a new boot.
            def once() -> None:
                points.clear()
                run_all(img, bins["qemu-storage-daemon"], backends, dev, args.queues,
                        args.runtime, iodepths, record)

            guest.retry_on_reset(once, _say, attempts=args.attempts)
        except (RuntimeError, AssertionError) as exc:
            lines = str(exc).splitlines()
            _say(f"FAILED: {lines[0] if lines else exc}")
            # The whole report (the L2 console's tail, QEMU's virtqueues
            # and vCPUs, its threads in L1) goes to a file and the console.
            (args.out / "failure.txt").write_text(f"{exc}\n")
            print(exc, flush=True)
        _say(f"{time.monotonic() - t0:.0f} s")
    print(save(args.out, args.queues, args.runtime, points))
    if points and plot(points, args.out / "plot.png"):
        _say(f"plot: {args.out / 'plot.png'}")
    expected = len(backends) * len(iodepths) * 2
    return 0 if len(points) == expected else 1


if __name__ == "__main__":
    sys.exit(main())
