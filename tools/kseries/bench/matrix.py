"""The benchmark matrix: which cases run, and the command line of each.

A case is one back end measured on one device with one access pattern,
iodepth (per queue) and queue count.  Cases with the same device,
pattern, iodepth and queue count form a group; ratios compare members
of a group only, so every figure is relative to the direct block device
measured in the same VM a few seconds earlier.

This module is imported inside the guest too: standard library only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

DEVICES = ("null_blk", "brd")
RWS = ("randread", "randwrite")
BACKENDS = ("fio-io_uring", "fio-libaio", "vblk-aio", "vhost-blk", "vhost-user")
# The block device itself: fio, and the load generator with Linux AIO (the
# same light client as the vhost cases, without a virtqueue).
DIRECT = ("fio-io_uring", "fio-libaio", "vblk-aio")
FIO = ("fio-io_uring", "fio-libaio")
MAX_QUEUES = 16
MAX_IODEPTH = 341  # three descriptors a request in a ring of at most 1024


class PlanError(ValueError):
    """A matrix option names something that cannot run; the message says what can."""


@dataclass(frozen=True)
class BenchCase:
    device: str
    rw: str
    iodepth: int
    queues: int
    backend: str
    workers: int = 0  # vhost workers (vhost-blk only)

    @property
    def group(self) -> tuple[str, str, int, int]:
        return (self.device, self.rw, self.iodepth, self.queues)

    @property
    def label(self) -> str:
        """The back end as the table and plot name it."""
        if self.backend in FIO:
            return "direct fio " + self.backend.removeprefix("fio-")
        if self.backend == "vblk-aio":
            return "direct vblk-load aio"
        if self.backend == "vhost-blk":
            return f"vhost-blk {self.queues}q/{self.workers}w"
        return f"vhost-user-blk {self.queues}q"

    @property
    def key(self) -> str:
        variant = f"-{self.workers}w" if self.backend == "vhost-blk" else ""
        return (f"{self.device}/{self.rw}/qd{self.iodepth}/q{self.queues}/"
                f"{self.backend}{variant}")


@dataclass(frozen=True)
class Settings:
    bs: int = 4096
    runtime: int = 5
    ramp: int = 1
    # null_blk: capacity in MiB (memory_backed=0 stores nothing).
    null_blk_mb: int = 4096


@dataclass
class BenchPlan:
    settings: Settings
    cases: list[BenchCase]
    tool: str = ""  # path of the built load generator
    out: str = ""  # directory the guest writes results.jsonl into
    notes: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"version": 1, "settings": asdict(self.settings),
                "cases": [asdict(c) for c in self.cases], "tool": self.tool, "out": self.out,
                "notes": self.notes}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BenchPlan:
        if data.get("version") != 1:
            raise PlanError(f"plan version {data.get('version')!r} is not 1")
        return cls(settings=Settings(**data["settings"]),
                   cases=[BenchCase(**c) for c in data["cases"]], tool=data.get("tool", ""),
                   out=data.get("out", ""), notes=data.get("notes", {}))

    def seconds(self) -> int:
        """A rough upper bound of the time the cases take (for the boot timeout)."""
        return sum(self.settings.runtime + self.settings.ramp + 30 for _ in self.cases)


def _check(kind: str, values: list[str], allowed: tuple[str, ...]) -> None:
    for v in values:
        if v not in allowed:
            raise PlanError(f"unknown {kind} {v!r}: choose from {', '.join(allowed)}")


def plan(devices: list[str], rws: list[str], iodepths: list[int], queues: list[int],
         backends: list[str], settings: Settings | None = None) -> BenchPlan:
    """Every combination; vhost-blk runs with 1 worker and, with several queues, one each."""
    settings = settings or Settings()
    _check("device", devices, DEVICES)
    _check("access pattern", rws, RWS)
    _check("back end", backends, BACKENDS)
    for what, values in (("device", devices), ("access pattern", rws),
                         ("iodepth", iodepths), ("queue count", queues),
                         ("back end", backends)):
        if not values:
            raise PlanError(f"no {what} given")
    for d in iodepths:
        if not 1 <= d <= MAX_IODEPTH:
            raise PlanError(f"iodepth {d} is out of range: 1 to {MAX_IODEPTH}")
    for q in queues:
        if not 1 <= q <= MAX_QUEUES:
            raise PlanError(f"queue count {q} is out of range: 1 to {MAX_QUEUES}")
    if settings.bs % 512 or not 512 <= settings.bs <= 1 << 20:
        raise PlanError(f"block size {settings.bs} is not a multiple of 512 from 512 to 1M")
    if settings.runtime < 1 or settings.ramp < 0:
        raise PlanError(f"runtime {settings.runtime}s / ramp {settings.ramp}s: "
                        "runtime must be at least 1s and ramp not negative")
    cases: list[BenchCase] = []
    for dev in _unique(devices):
        for rw in _unique(rws):
            for q in sorted(set(queues)):
                for d in sorted(set(iodepths)):
                    for be in BACKENDS:
                        if be not in backends:
                            continue
                        if be == "vhost-blk":
                            cases += [BenchCase(dev, rw, d, q, be, w) for w in sorted({1, q})]
                        else:
                            cases.append(BenchCase(dev, rw, d, q, be))
    return BenchPlan(settings, cases)


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def parse_list(text: str, what: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise PlanError(f"--{what} is empty: give a comma-separated list")
    return items


def parse_ints(text: str, what: str) -> list[int]:
    out = []
    for item in parse_list(text, what):
        try:
            out.append(int(item))
        except ValueError:
            raise PlanError(f"--{what}: {item!r} is not a whole number "
                            f"(give a comma-separated list such as 1,32,128)") from None
    return out


def fio_command(case: BenchCase, settings: Settings, dev: str) -> list[str]:
    """fio on the block device, O_DIRECT, one job (thread) per queue."""
    engine = case.backend.removeprefix("fio-")
    return ["fio", "--name=bench", f"--filename={dev}", "--direct=1", f"--ioengine={engine}",
            f"--rw={case.rw}", f"--bs={settings.bs}", f"--iodepth={case.iodepth}",
            f"--numjobs={case.queues}", "--thread", "--group_reporting", "--time_based",
            f"--runtime={settings.runtime}", f"--ramp_time={settings.ramp}",
            "--norandommap", "--randrepeat=0", "--lat_percentiles=1",
            "--output-format=json"]


def load_command(case: BenchCase, settings: Settings, tool: str, dev: str = "",
                 socket: str = "") -> list[str]:
    """The load generator for vhost-blk or AIO (on ``dev``) or vhost-user (on ``socket``)."""
    cmd = [tool]
    if case.backend == "vblk-aio":
        cmd += ["--backend", "aio", "--dev", dev]
    elif case.backend == "vhost-blk":
        cmd += ["--backend", "vhost-blk", "--dev", dev, "--workers", str(case.workers)]
    elif case.backend == "vhost-user":
        cmd += ["--backend", "vhost-user", "--socket", socket]
    else:
        raise PlanError(f"{case.backend} is not driven by the load generator")
    return [*cmd, "--bs", str(settings.bs), "--iodepth", str(case.iodepth),
                  "--queues", str(case.queues), "--rw", case.rw,
                  "--runtime", str(settings.runtime), "--ramp", str(settings.ramp)]


def qsd_command(dev: str, socket: str, queues: int,
                binary: str = "qemu-storage-daemon") -> list[str]:
    """qemu-storage-daemon exporting ``dev`` as vhost-user-blk (O_DIRECT, io_uring)."""
    return [binary,
            "--blockdev", f"driver=host_device,filename={dev},node-name=b,cache.direct=on,"
                          "aio=io_uring",
            "--export", f"type=vhost-user-blk,id=e,node-name=b,addr.type=unix,"
                        f"addr.path={socket},num-queues={queues},writable=on"]
