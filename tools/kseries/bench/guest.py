"""Run a benchmark plan inside the guest: ``python -m kseries.bench.guest PLAN.json``.

Sets up the devices (a null_blk made through configfs with
memory_backed=0, brd's /dev/ram0 filled once so reads hit real pages),
then runs every case in turn: fio for the direct device, the load
generator for vhost-blk, and the load generator against a
qemu-storage-daemon started for the case for vhost-user-blk.  Each
result is appended as one JSON line to OUT/results.jsonl as soon as it
is known (the host follows that file for progress) and a progress line
goes to stdout.  A case that fails is recorded with its reason and the
run goes on.  Standard library only: it runs with the host's Python
from the shared, read-only filesystem.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from .matrix import FIO, BenchCase, BenchPlan, fio_command, load_command, qsd_command
from .results import Measurement, ResultError, failed, parse_fio, parse_load, to_line

CONFIGFS = Path("/sys/kernel/config")
NULLB_NAME = "kbench0"
SOCKET = "/tmp/kseries-bench-vub.sock"
QSD_START_TIMEOUT = 90.0


def say(msg: str) -> None:
    print(f"[bench-guest {time.monotonic():8.1f}] {msg}", flush=True)


@contextlib.contextmanager
def null_blk(size_mb: int, queues: int) -> Iterator[str]:
    """A null_blk disk that stores nothing: the cost of the path, not of the medium."""
    root = CONFIGFS / "nullb"
    if not root.is_dir():
        CONFIGFS.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "configfs", "configfs", str(CONFIGFS)], check=False,
                       capture_output=True)
    if not root.is_dir():
        raise RuntimeError("no null_blk configfs directory (CONFIG_BLK_DEV_NULL_BLK, "
                           "CONFIG_CONFIGFS_FS)")
    node = root / NULLB_NAME
    node.mkdir()
    try:
        for attr, value in (("size", size_mb), ("blocksize", 512), ("memory_backed", 0),
                            ("submit_queues", queues), ("hw_queue_depth", 1024),
                            ("power", 1)):
            (node / attr).write_text(f"{value}\n")
        index = int((node / "index").read_text())
        for _ in range(200):
            for path in (f"/dev/{NULLB_NAME}", f"/dev/nullb{index}"):
                if os.path.exists(path):
                    yield path
                    return
            time.sleep(0.05)
        raise RuntimeError(f"null_blk {NULLB_NAME} is powered on but has no device node")
    finally:
        with contextlib.suppress(OSError):
            (node / "power").write_text("0\n")
        with contextlib.suppress(OSError):
            node.rmdir()


def prepare_brd(path: str = "/dev/ram0") -> str:
    if not os.path.exists(path):
        raise RuntimeError(f"{path} is missing (CONFIG_BLK_DEV_RAM=y expected)")
    # brd allocates a page on first write; fill it so reads are not of holes.
    subprocess.run(["dd", "if=/dev/zero", f"of={path}", "bs=1M", "oflag=direct"],
                   check=False, capture_output=True)
    return path


def _run(cmd: list[str], timeout: float) -> tuple[int, str, str]:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else ""
        return -1, out, f"timed out after {timeout:.0f}s"
    except FileNotFoundError as exc:
        return -1, "", f"{cmd[0]} is not installed ({exc.strerror})"
    return proc.returncode, proc.stdout, proc.stderr


def _tail(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return " | ".join(lines[-2:])[:300]


@contextlib.contextmanager
def storage_daemon(dev: str, queues: int, binary: str = "qemu-storage-daemon"
                   ) -> Iterator[subprocess.Popen[bytes]]:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(SOCKET)
    log = open(f"/tmp/kseries-bench-qsd-{queues}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(qsd_command(dev, SOCKET, queues, binary), stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        # Under TCG the daemon's start (libraries over 9p) takes seconds.
        deadline = time.monotonic() + QSD_START_TIMEOUT
        while time.monotonic() < deadline:
            if os.path.exists(SOCKET) or proc.poll() is not None:
                break
            time.sleep(0.1)
        if proc.poll() is not None or not os.path.exists(SOCKET):
            log.flush()
            text = Path(log.name).read_text(errors="replace")
            state = (f"exited {proc.returncode}" if proc.poll() is not None
                     else f"made no socket in {QSD_START_TIMEOUT:.0f}s")
            raise RuntimeError(f"qemu-storage-daemon {state}: {_tail(text) or 'no output'}")
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def run_case(case: BenchCase, plan: BenchPlan, devs: dict[str, str]) -> Measurement:
    s = plan.settings
    timeout = s.runtime + s.ramp + 60
    dev = devs.get(case.device)
    if dev is None:
        return failed(case.key, f"device {case.device} could not be set up")
    try:
        if case.backend in FIO:
            rc, out, err = _run(fio_command(case, s, dev), timeout)
            if rc != 0 and "{" not in out:
                return failed(case.key, f"fio exited {rc}: {_tail(err or out)}")
            return parse_fio(case.key, out, case.rw)
        if case.backend in ("vhost-blk", "vblk-aio"):
            rc, out, err = _run(load_command(case, s, plan.tool, dev=dev), timeout)
        else:
            with storage_daemon(dev, case.queues):
                rc, out, err = _run(load_command(case, s, plan.tool, socket=SOCKET), timeout)
        if "{" not in out:
            return failed(case.key, f"vblk-load exited {rc}: {_tail(err or out)}")
        res = parse_load(case.key, out)
        if not res.ok and case.backend == "vhost-user":
            qsd_log = Path(f"/tmp/kseries-bench-qsd-{case.queues}.log")
            if qsd_log.exists() and qsd_log.read_text(errors="replace").strip():
                res.error += f" (qemu-storage-daemon: {_tail(qsd_log.read_text())})"
        return res
    except (ResultError, RuntimeError, OSError) as exc:
        return failed(case.key, str(exc))


def machine() -> dict[str, object]:
    def version(cmd: list[str]) -> str:
        rc, out, err = _run(cmd, 20)
        return (out or err).strip().splitlines()[0] if (out or err).strip() else f"rc {rc}"

    return {"kernel": platform.release(), "cpus": os.cpu_count(),
            "mem_kib": next((int(line.split()[1]) for line in
                             Path("/proc/meminfo").read_text().splitlines()
                             if line.startswith("MemTotal:")), 0),
            "cpu_model": next((line.split(":", 1)[1].strip() for line in
                               Path("/proc/cpuinfo").read_text().splitlines()
                               if line.startswith("model name")), ""),
            "fio": version(["fio", "--version"]),
            "qemu_storage_daemon": version(["qemu-storage-daemon", "--version"]),
            "vhost_blk": os.path.exists("/dev/vhost-blk")}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m kseries.bench.guest PLAN.json", file=sys.stderr)
        return 2
    plan = BenchPlan.from_json(json.loads(Path(argv[0]).read_text()))
    out = Path(plan.out)
    results = out / "results.jsonl"
    info = machine()
    (out / "guest.json").write_text(json.dumps(info, indent=2) + "\n")
    say(f"guest: {info}")
    if shutil.which("fio") is None:
        say("fio is missing: the direct cases will fail")
    devs: dict[str, str] = {}
    max_q = max((c.queues for c in plan.cases), default=1)
    with contextlib.ExitStack() as stack:
        needed = {c.device for c in plan.cases}
        if "null_blk" in needed:
            try:
                devs["null_blk"] = stack.enter_context(
                    null_blk(plan.settings.null_blk_mb, max(max_q, os.cpu_count() or 1)))
            except (RuntimeError, OSError) as exc:
                say(f"null_blk: {exc}")
        if "brd" in needed:
            try:
                devs["brd"] = prepare_brd()
            except (RuntimeError, OSError) as exc:
                say(f"brd: {exc}")
        say(f"devices: {devs}")
        with results.open("a") as fh:
            for i, case in enumerate(plan.cases, 1):
                t0 = time.monotonic()
                res = run_case(case, plan, devs)
                res.extra["wall_s"] = round(time.monotonic() - t0, 1)
                fh.write(to_line(res))
                fh.flush()
                what = f"{res.iops:,.0f} IOPS" if res.ok else f"FAILED: {res.error}"
                say(f"[{i}/{len(plan.cases)}] {case.key}: {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
