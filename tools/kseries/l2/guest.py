"""Start an L2 guest with the project's QEMU under KVM and read its console.

Runs inside the project's VM (L1), where /dev/kvm comes from kvm_amd on
the SVM that QEMU's TCG emulates.  Used by tests/guest/test_l2.py and
``python -m kseries.bench.l2``.  l2-guest/init prints "L2: ..." lines.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import queue
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from kseries.l2 import qmp

T = TypeVar("T")

# Debian's seabios and qemu-system-data (installed with qemu-system-x86):
# bios-256k.bin, linuxboot_dma.bin, kvmvapic.bin.
FIRMWARE = ("/usr/share/seabios", "/usr/share/qemu")


# <linux/kvm.h>
KVM_CREATE_VM = 0xAE01
KVM_CREATE_VCPU = 0xAE41
KVM_CREATE_IRQCHIP = 0xAE60
KVM_SET_MSRS = 0x4008AE89
MSR_IA32_APICBASE = 0x1B
APIC_DEFAULT_PHYS_BASE = 0xFEE00000


@contextlib.contextmanager
def static_keys_held() -> Iterator[None]:
    """Keep KVM's APIC static keys on while L2 guests come and go.

    The VM runs under multi-threaded TCG, where a vCPU may execute code
    that another vCPU has just patched and trap on a stale int3 (the
    kernel oopses in the patched function).  KVM patches code whenever
    apic_sw_disabled or apic_hw_disabled goes from 0 to 1 or back: when a
    guest's vCPU is created with its APIC software-disabled, and again
    when the guest enables it.  The first run of the L2 tests oopsed in
    apic_has_pending_timer() on the third L2 boot.  A VM that is never
    run, with one vCPU whose APIC is both software- and hardware-disabled,
    keeps both counts above zero, so the L2 guests flip no key at all.
    Running every vCPU on one host thread (`kseries run
    --tcg-single-thread`) also avoids the race but halves the speed.
    """
    kvm = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    fds = [kvm]
    try:
        vm = fcntl.ioctl(kvm, KVM_CREATE_VM, 0)
        fds.append(vm)
        fcntl.ioctl(vm, KVM_CREATE_IRQCHIP, 0)
        vcpu = fcntl.ioctl(vm, KVM_CREATE_VCPU, 0)  # apic_sw_disabled + 1
        fds.append(vcpu)
        # struct kvm_msrs with one struct kvm_msr_entry: APIC base, enable bit clear.
        msrs = bytearray(struct.pack("=IIIIQ", 1, 0, MSR_IA32_APICBASE, 0,
                                     APIC_DEFAULT_PHYS_BASE))
        if fcntl.ioctl(vcpu, KVM_SET_MSRS, msrs, True) != 1:  # apic_hw_disabled + 1
            raise OSError("KVM_SET_MSRS did not take the APIC base")
        yield
    finally:
        for fd in reversed(fds):
            os.close(fd)


class GuestTimeout(AssertionError):
    """The guest printed nothing more before the deadline, or panicked."""


class GuestReset(AssertionError):
    """QEMU exited 0 before the L2 init printed "L2: up".

    With -no-reboot, QEMU exits when the guest resets; before init the
    guest has not loaded virtio_blk, and vhost-blk has served nothing (QEMU
    starts the vhost device when the driver sets DRIVER_OK).  Under nested
    SVM on TCG, about one L2 boot in ten ended so, with nothing on the
    console: a triple fault in the L2 kernel's early boot.
    """


@dataclass(frozen=True)
class Images:
    qemu: Path
    vmlinuz: Path
    initrd: Path


def command(img: Images, append: str, devices: list[str], cpus: int = 2,
            memory: str = "512", reboot: bool = False, extra: list[str] | None = None,
            quiet: bool = True) -> list[str]:
    """The QEMU command line: the L2 kernel, its serial console on stdout."""
    cmd = [str(img.qemu)]
    for fw in FIRMWARE:
        cmd += ["-L", fw]
    cmd += ["-accel", "kvm", "-cpu", "host", "-smp", str(cpus), "-m", memory,
            "-nodefaults", "-nographic", "-serial", "stdio", "-monitor", "none",
            "-kernel", str(img.vmlinuz), "-initrd", str(img.initrd),
            "-append", f"console=ttyS0 {'quiet ' if quiet else ''}panic=-1 {append}".strip()]
    if not reboot:
        cmd.append("-no-reboot")
    cmd += extra or []
    for dev in devices:
        cmd += ["-device", dev]
    return cmd


# How long an L2 guest may take from QEMU's start to "L2: up": 81 s to
# about 780 s in the runs so far (Debian's kernel under nested SVM on
# TCG; the slowest while the host's cores were shared with other work).
BOOT_ALLOWANCE = 1500.0

# How long threads() watches a process's threads use CPU.
THREAD_SAMPLE = 5.0


def _cpu_ticks(task: Path) -> int:
    # /proc/PID/task/TID/stat: utime and stime are fields 14 and 15,
    # counted after the ")" that ends the command name.
    fields = task.joinpath("stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def threads(pid: int, sample: float = THREAD_SAMPLE) -> str:
    """One paragraph per thread of ``pid``: its name, the CPU it used over
    ``sample`` seconds, its state and its kernel stack (for a timeout: a
    vCPU thread spinning, a vhost worker blocked, or everything idle)."""
    tasks = sorted(Path(f"/proc/{pid}/task").glob("*"), key=lambda t: int(t.name))
    before: dict[Path, int] = {}
    for task in tasks:
        with contextlib.suppress(OSError, ValueError, IndexError):
            before[task] = _cpu_ticks(task)
    time.sleep(sample)
    hz = os.sysconf("SC_CLK_TCK")
    out = []
    for task in tasks:
        try:
            comm = task.joinpath("comm").read_text().strip()
            state = next((line.split(":", 1)[1].strip()
                          for line in task.joinpath("status").read_text().splitlines()
                          if line.startswith("State:")), "?")
            used = (_cpu_ticks(task) - before[task]) / hz if task in before else 0.0
        except (OSError, ValueError, IndexError):
            continue
        try:
            stack = task.joinpath("stack").read_text().rstrip()
        except OSError as exc:
            stack = f"(no stack: {exc.strerror})"
        out.append(f"{task.name} {comm}: {used:.2f} s CPU, {state}\n{stack}")
    return "\n".join(out) or f"(process {pid} has no threads left)"


@dataclass
class L2Run:
    """One QEMU process and what its L2 guest printed."""

    proc: subprocess.Popen[str]
    qmp_socket: str  # for state()
    lines: queue.Queue[str | None] = field(default_factory=queue.Queue)
    console: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\r\n"))
        self.lines.put(None)

    def next_line(self, deadline: float) -> str | None:
        """The next console line; None at EOF; GuestTimeout at the deadline;
        GuestReset when QEMU ends (exit 0) before the guest's init ran."""
        left = deadline - time.monotonic()
        try:
            line = self.lines.get(timeout=max(left, 0.001))
        except queue.Empty:
            raise GuestTimeout(f"the L2 guest timed out\n{self.tail()}\n"
                               f"{self.state()}\n"
                               f"QEMU's threads in L1 (CPU in {THREAD_SAMPLE:.0f} s, state, "
                               f"kernel stack):\n{threads(self.proc.pid, THREAD_SAMPLE)}") from None
        if line is None:
            if not self.reached_init() and self.proc.wait(timeout=60) == 0:
                raise GuestReset(f"the L2 guest reset before its init ran, "
                                 f"{time.monotonic() - self.started:.0f} s after QEMU "
                                 f"started\n{self.tail(10)}")
        else:
            self.console.append(line)
            if "Kernel panic" in line:
                self.proc.kill()
                raise GuestTimeout(f"the L2 kernel panicked\n{self.tail()}")
        return line

    def state(self) -> str:
        """QEMU's view of the virtqueues and vCPUs (kseries.l2.qmp)."""
        return f"QEMU's virtqueues and vCPUs:\n{qmp.report(self.qmp_socket)}"

    def reached_init(self) -> bool:
        return any("L2: up " in line for line in self.console)

    def tail(self, n: int = 60) -> str:
        return "\n".join(self.console[-n:])

    def save(self, name: str) -> None:
        """The whole console into $KSERIES_L2_LOGS/NAME.log, when that is set."""
        logs = os.environ.get("KSERIES_L2_LOGS")
        if logs:
            Path(logs, f"{name}.log").write_text("\n".join(self.console) + "\n")


def retry_on_reset(run_once: Callable[[], T], note: Callable[[str], None],
                   attempts: int = 2) -> T:
    """run_once(), booting again while its guest resets (GuestReset), at most
    ``attempts`` boots in all.

    Each retry is reported through note(); the last reset fails the caller.
    """
    for attempt in range(1, attempts):
        try:
            return run_once()
        except GuestReset as exc:
            note(f"{str(exc).splitlines()[0]}; boot {attempt + 1} of {attempts}")
    return run_once()


def vhost_workers(pid: int) -> list[str]:
    """vhost worker tasks ("vhost-<owner pid>") still alive for that owner."""
    found = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        with contextlib.suppress(OSError):
            if comm.read_text().strip() == f"vhost-{pid}":
                found.append(comm.parent.name)
    return found


@contextlib.contextmanager
def start(cmd: list[str]) -> Iterator[L2Run]:
    """QEMU running ``cmd`` with a QMP socket for the timeout report; killed
    on the way out if still running, and its vhost workers must be gone
    within 30 s of its exit."""
    with tempfile.TemporaryDirectory(prefix="kseries-l2-") as tmp:
        sock = os.path.join(tmp, "qmp")
        proc = subprocess.Popen([*cmd, *qmp.option(sock)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace")
        run = L2Run(proc, sock)
        threading.Thread(target=run.read, daemon=True).start()
        try:
            yield run
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=60)
            deadline = time.monotonic() + 30
            while vhost_workers(proc.pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            left = vhost_workers(proc.pid)
            if left:
                raise AssertionError(f"vhost workers {left} of QEMU {proc.pid} outlive it")
