"""Boot a built kernel with virtme-ng, run a command, check the console.

The command runs inside the guest between two unique marker lines, so
its output and exit status can be read back whether virtme-ng delivers
them on its script channel or on the console.  The whole console goes
to a log file and is scanned for kernel splats.  An infrastructure
flake (QEMU does not start, the guest dies before running the command)
is retried once, and the result records that it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import re
import shlex
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from qemu.qmp import QMPClient

from . import qmp
from . import splat as splat_mod
from .build import make_env
from .errors import InfraError, KseriesError, UsageError
from .progress import Progress

_KVM_PROBE = ["qemu-system-x86_64", "-accel", "kvm", "-cpu", "host", "-machine", "q35",
              "-display", "none", "-nodefaults", "-monitor", "none", "-S"]


@dataclass
class BootResult:
    command: str
    returncode: int | None
    output: str
    console_log: Path
    splats: list[splat_mod.Splat]
    seconds: float
    kvm: bool
    attempts: int = 1
    retry_reason: str = ""
    timed_out: bool = False
    notes: list[str] = field(default_factory=list)
    # virtme-ng's exit status (QEMU's, passed on).
    vng_exit: int | None = None

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.splats and not self.timed_out

    def raise_for_failure(self) -> None:
        if self.splats:
            first = self.splats[0]
            raise KseriesError(
                f"kernel {first.kind} splat in the guest ({len(self.splats)} in all): "
                + " | ".join(first.lines[:4]),
                f"console log: {self.console_log}")
        if self.timed_out:
            raise KseriesError(f"the guest did not finish `{self.command}` in time",
                               f"console log: {self.console_log}"
                               + "".join(f"\n{n}" for n in self.notes))
        if self.returncode is None:
            # No end marker and no timeout: the VM ended under the command.
            tail = " | ".join(self.output.strip().splitlines()[-3:])
            raise KseriesError(
                f"the guest ended before `{self.command}` finished (QEMU exited "
                f"{self.vng_exit}, no kernel panic or splat on the console; QEMU runs with "
                f"-no-reboot, so a reset or triple fault ends it so): {tail}",
                f"console log: {self.console_log}")
        if self.returncode != 0:
            tail = " | ".join(self.output.strip().splitlines()[-3:])
            raise KseriesError(f"`{self.command}` exited {self.returncode} in the guest: {tail}",
                               f"console log: {self.console_log}")


def kvm_usable(timeout: float = 3.0) -> tuple[bool, str]:
    """Whether QEMU can really use KVM here (opening /dev/kvm is not enough).

    A nested host such as kvm_pvm opens /dev/kvm but aborts QEMU's -cpu
    host on an MSR write; a usable KVM keeps QEMU paused (-S) until killed.
    """
    if os.environ.get("KSERIES_KVM") == "0":
        return False, "KSERIES_KVM=0"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False, "/dev/kvm is missing or not accessible"
    try:
        proc = subprocess.Popen(_KVM_PROBE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)
    except FileNotFoundError:
        return False, "qemu-system-x86_64 is not installed"
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return True, "QEMU started with -accel kvm -cpu host"
    reason = (err.strip().splitlines() or [f"exit {proc.returncode}"])[0]
    return False, f"QEMU with KVM failed: {reason}"


@dataclass(frozen=True)
class GuestSpec:
    """How to start the guest."""

    outdir: Path
    cpus: int = 2
    memory: str = "2G"
    append: str = ""
    rwdirs: tuple[Path, ...] = ()
    cwd: Path | None = None
    timeout: int = 900
    vng: str = "vng"
    # One host thread runs every vCPU in turn (TCG's thread=single).
    single_thread_tcg: bool = False


def _wrap(command: str, nonce: str) -> str:
    # The newline before the end marker keeps a last line without one
    # (printf foo) apart from the marker; parse_output removes it again.
    return (f"echo ==KSERIES-BEGIN-{nonce}==; ( {command} ); "
            f"printf '\\n==KSERIES-END-{nonce}== rc=%d\\n' $?")


# Under TCG a vCPU is a host thread that may not run for tens of seconds
# when the host's cores are busy, while guest time goes on: the soft
# lockup watchdog (2 * watchdog_thresh, 20 s by default) and the RCU
# stall detector (21 s) then report CPUs the host starved, not the
# kernel.  Their largest thresholds keep them for real lockups.
TCG_APPEND = "watchdog_thresh=60 rcupdate.rcu_cpu_stall_timeout=300"

# Every guest runs with 4-level paging.  With 5-level paging (QEMU's
# TCG CPU has LA57) generic KASAN reports a false "wild-memory-access"
# when an interrupt hits the boot CPU while identify_cpu() has cleared
# boot_cpu_data.x86_capability: pgtable_l5_enabled() then reads false,
# the shadow bounds are computed for 4 levels and the per-cpu data of
# the LA57 direct map (0xff11...) looks unmapped.  Measured side by side
# on the debug kernel: 3 of 6 boots with LA57, 0 of 6 with no5lvl; it
# also struck both attempts of one CI run.  Upstream
# report: "kasan: Fix false-positive wild-memory-access on x86 under
# 5-level paging" (June 2026).  The series does not depend on LA57.
#
# The root filesystem is the host's, over 9p.  virtme-ng mounts it with
# no cache= option, which is cache=none: every lookup, stat and read is a
# round trip to QEMU, and under TCG, through the debug kernel's KASAN and
# lockdep, each one costs milliseconds.  Python pays it for every module
# it imports.  Measured in one boot each of the debug kernel:
# `python -c pass` 60 s -> 8 s, `import pytest` 286 s -> 46 s, and
# virtme-ng-init's systemd-tmpfiles 65-70 s -> 16 s, with cache=loose.
# The guest only reads the root (it is mounted read-only, and the host
# does not change what the guest reads while it runs), so caching is
# safe.  The kernel keeps the last rootflags= it is given, and
# virtme-ng puts its own before --append; the other options are
# virtme-ng's own (1.42).
ROOTFLAGS = "rootflags=version=9p2000.L,trans=virtio,access=any,msize=524288,cache=loose"
GUEST_APPEND = f"no5lvl {ROOTFLAGS}"


# Multi-threaded TCG runs each vCPU on its own host thread, and a vCPU
# may go on executing code another vCPU has just rewritten: the kernel's
# text patching (static keys, alternatives) then hits a stale int3 and
# oopses ("Oops: int3" in the patched function).  A boot sees it rarely;
# KVM in the guest flips static keys every time an L2 guest starts or
# resets (apic_sw_disabled, apic_hw_disabled), and the third L2 boot of
# the first run oopsed in apic_has_pending_timer().  With thread=single
# one host thread runs the vCPUs in turn and sees every write.
def vng_command(spec: GuestSpec, script: str, kvm: bool,
                qmp_socket: str | None = None) -> list[str]:
    cmd = [spec.vng, "--verbose", "--cpus", str(spec.cpus), "--memory", spec.memory,
           "--run", str(spec.outdir / "arch" / "x86" / "boot" / "bzImage")]
    if qmp_socket:
        cmd += [f"--qemu-opt={opt}" for opt in qmp.option(qmp_socket)]
    append = f"{GUEST_APPEND} {spec.append}".strip()
    if not kvm:
        cmd.append("--disable-kvm")
        append = f"{TCG_APPEND} {append}".strip()
        if spec.single_thread_tcg:
            cmd += ["--qemu-opt=-accel", "--qemu-opt=tcg,thread=single"]
    if append:
        cmd += ["--append", append]
    for rwdir in spec.rwdirs:
        cmd += ["--rwdir", str(rwdir)]
    if spec.cwd:
        cmd += ["--cwd", str(spec.cwd)]
    cmd += ["--exec", script]
    return cmd


def parse_output(console: str, nonce: str) -> tuple[str, int | None]:
    """The command's output and exit status from between the markers."""
    # Markers count only at the start of a line: the command line that
    # carries them (in the log header, or echoed by a shell) does not.
    console = console.replace("\r\n", "\n")
    begin = re.search(rf"^==KSERIES-BEGIN-{nonce}==$", console, re.M)
    if begin is None:
        return "", None
    start = begin.end() + 1
    end = re.compile(rf"^==KSERIES-END-{nonce}== rc=(\d+)$", re.M).search(console, start)
    if end is None:
        return console[start:], None
    output = console[start:max(start, end.start())]
    return output.removesuffix("\n"), int(end.group(1))


# How long the guest gets to print each SysRq report at a timeout.
SYSRQ_WAIT = 15.0


def timeout_report(sock: str) -> str:
    """What the guest's vCPUs do, from QEMU, at a timeout; then SysRq l
    (every CPU's backtrace) and w (blocked tasks) for the console."""
    async def body(client: QMPClient) -> list[str]:
        lines = await qmp.vcpus(client)
        for key in ("l", "w"):
            await qmp.sysrq(client, key)
            await asyncio.sleep(SYSRQ_WAIT)
        return [*lines, "(SysRq l and w sent: their output, if any, ends the console log)"]

    return "the guest's vCPUs at the timeout:\n" + qmp.report(sock, body)


# How long QEMU may take to power off once the command has finished.
POWEROFF_GRACE = 60.0
# How long a splat printed during boot may take to reach the log whole
# before an attempt that will be retried anyway is stopped.
SPLAT_SETTLE = 5.0
_POLL = 1.0


def _run_once(spec: GuestSpec, command: str, log: Path, kvm: bool,
              stop_at_boot_splat: bool = False) -> tuple[str, int | None, bool, int, str]:
    """One boot: (output, exit status, timed out, vng's exit, note).

    With ``stop_at_boot_splat`` (a retry is left), a splat before the
    command starts ends the attempt at once instead of after the command,
    which for the in-guest suite is ten minutes.
    """
    with tempfile.TemporaryDirectory(prefix="kseries-boot-") as tmp:
        return _run_qemu(spec, command, log, kvm, stop_at_boot_splat,
                         os.path.join(tmp, "qmp"))


def _run_qemu(spec: GuestSpec, command: str, log: Path, kvm: bool, stop_at_boot_splat: bool,
              sock: str) -> tuple[str, int | None, bool, int, str]:
    nonce = uuid.uuid4().hex[:12]
    cmd = vng_command(spec, _wrap(command, nonce), kvm, qmp_socket=sock)
    env = make_env()
    timed_out = False
    note = ""
    # QEMU reopens its stdout (virtme-ng gives it /proc/self/fd/1), which
    # truncates the log, so the host command goes to a file of its own.
    log.with_suffix(".cmd").write_text(shlex.join(cmd) + "\n")
    end_marker = f"==KSERIES-END-{nonce}== rc="
    with log.open("w") as fh:
        try:
            proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        except FileNotFoundError:
            raise InfraError(f"virtme-ng's {spec.vng!r} is not on PATH",
                             "run `tools/run main` once to set up .venv, then use "
                             ".venv/bin/kseries (or pip install virtme-ng)") from None
        start = time.monotonic()
        finished_at: float | None = None
        splat_at: float | None = None
        started = not stop_at_boot_splat
        try:
            while True:
                try:
                    vng_rc = proc.wait(timeout=_POLL)
                    break
                except subprocess.TimeoutExpired:
                    pass
                now = time.monotonic()
                if finished_at is None:
                    text = log.read_text(errors="replace")
                    if end_marker in text:
                        finished_at = now
                    if not started:
                        started = _ANY_BEGIN.search(text) is not None
                        if not started and splat_at is None and _boot_splat(text) is not None:
                            splat_at = now
                if not started and splat_at is not None and now - splat_at >= SPLAT_SETTLE:
                    note = "stopped at a splat during boot, before the command ran"
                elif finished_at is not None and now - finished_at > POWEROFF_GRACE:
                    note = f"QEMU did not exit {POWEROFF_GRACE:.0f}s after the command finished"
                elif now - start > spec.timeout:
                    timed_out = True
                    note = timeout_report(sock)
                else:
                    continue
                os.killpg(proc.pid, signal.SIGKILL)
                vng_rc = proc.wait()
                break
        except BaseException:
            # Ctrl-C, SIGTERM (the CLI turns it into SystemExit) or a bug:
            # the guest runs in a session of its own and must not outlive us.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    console = guest_console(log)
    output, rc = parse_output(console, nonce)
    return output, rc, timed_out and rc is None, vng_rc, note


def guest_console(log: Path) -> str:
    """What QEMU and the guest printed (the host command is in log.cmd)."""
    return log.read_text(errors="replace")


# The begin marker of any run, at the start of a line.
_ANY_BEGIN = re.compile(r"^==KSERIES-BEGIN-\w+==\r?$", re.M)


def _boot_splat(console: str) -> splat_mod.Splat | None:
    """The first splat printed before the command started, if any."""
    begin = _ANY_BEGIN.search(console)
    before = console[:begin.start()] if begin else console
    splats = splat_mod.find(before)
    return splats[0] if splats else None


def _flake_reason(console: str, rc: int | None, timed_out: bool, vng_rc: int) -> str:
    """Why a run looks like an infrastructure failure, or '' if it does not.

    Besides QEMU failing and the guest dying before the command, a splat
    during boot, before the command ran, is retried once: under TCG, early
    boot has shown emulation faults (an int3 Oops in text patching, a
    KASAN wild access in rcu_is_watching).  The splat is recorded as the
    retry reason and its log is kept; a second one fails the run.
    """
    early = _boot_splat(console)
    if early is not None:
        return f"kernel {early.kind} splat during boot: {early.title}"
    if rc is not None:
        return ""
    if "Linux version" not in console:
        return f"QEMU/virtme-ng failed before the kernel started (exit {vng_rc})"
    if not _ANY_BEGIN.search(console):
        what = "timed out" if timed_out else "died"
        return f"the guest {what} before running the command"
    return ""


def run(spec: GuestSpec, command: str, console_log: Path, progress: Progress,
        kvm: bool | None = None, retries: int = 1) -> BootResult:
    """Boot, run ``command`` in the guest, and collect what happened."""
    image = spec.outdir / "arch" / "x86" / "boot" / "bzImage"
    if not image.exists():
        raise UsageError(f"no kernel image at {image}", "build the kernel first (`kseries build`)")
    if kvm is None:
        kvm, why = kvm_usable()
        progress.say(f"boot: {'KVM' if kvm else 'TCG (no KVM: ' + why + ')'}")
    console_log.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(console_log):
        return _run(spec, command, console_log, progress, kvm, retries)


@contextlib.contextmanager
def _exclusive(console_log: Path) -> Iterator[None]:
    """Refuse a second boot writing the same console log at the same time.

    QEMU truncates the file it is given, so two guests sharing a log
    garble each other's output and markers.
    """
    with console_log.with_suffix(".lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"another boot is writing {console_log}",
                             "wait for it, or give this one its own --console-log") from None
        yield


def _run(spec: GuestSpec, command: str, console_log: Path, progress: Progress,
         kvm: bool, retries: int) -> BootResult:
    t0 = time.monotonic()
    attempts = 0
    reason = ""
    while True:
        attempts += 1
        log = console_log if attempts == 1 else console_log.with_suffix(f".try{attempts}.log")
        progress.say(f"boot: attempt {attempts}: {command!r} (console: {log})")
        output, rc, timed_out, vng_rc, note = _run_once(spec, command, log, kvm,
                                                        stop_at_boot_splat=attempts <= retries)
        console = guest_console(log)
        flake = _flake_reason(console, rc, timed_out, vng_rc)
        if flake and attempts <= retries:
            reason = flake
            stopped = f"{note}; " if note else ""
            progress.say(f"boot: flake ({flake}); {stopped}retrying once, first log kept in {log}")
            continue
        break
    if attempts > 1 and console_log != log:
        # Keep the first attempt's log for the record; report the last one.
        console_log = log
    splats = splat_mod.find(console)
    if flake and not timed_out and rc is None and not splats:
        raise InfraError(f"{flake}, also after {attempts} attempts",
                         f"see {console_log}; is qemu-system-x86 installed?")
    result = BootResult(command=command, returncode=rc, output=output,
                        console_log=console_log, splats=splats,
                        seconds=time.monotonic() - t0, kvm=kvm, attempts=attempts,
                        retry_reason=reason, timed_out=timed_out,
                        notes=[note] if note else [], vng_exit=vng_rc)
    progress.say(f"boot: exit {rc}, {len(result.splats)} splats, {result.seconds:.0f}s"
                 + (f", retried once ({reason})" if attempts > 1 else ""))
    return result
