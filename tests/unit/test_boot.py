"""boot: markers, the vng command line, and boot.run with a fake vng."""

from __future__ import annotations

import functools
import os
import shlex
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from helpers import quiet_progress
from hypothesis import given, settings
from hypothesis import strategies as st

from kseries import boot
from kseries.boot import BootResult, GuestSpec
from kseries.errors import InfraError, KseriesError, UsageError
from kseries.splat import Splat

CONSOLES = Path(__file__).resolve().parent.parent / "fixtures" / "consoles"


# --- parse_output / _wrap / vng_command -------------------------------------------
#
# The consoles are made by running the real wrapper (boot._wrap) with sh, as
# the guest does, so these tests pin the contract "parse_output gives back
# exactly what the command printed, and its exit status", not a marker format.

def guest(command: str, nonce: str = "abc") -> str:
    """What the guest prints for ``command`` wrapped by boot._wrap."""
    return subprocess.run(["sh", "-c", boot._wrap(command, nonce)], capture_output=True,
                          text=True, check=True).stdout


def begin_line(nonce: str = "abc") -> str:
    return guest("true", nonce).splitlines(keepends=True)[0]


def test_parse_output_between_markers() -> None:
    console = ("[    1.000000] random: crng init done\n"
               + guest("echo 'line 1'; echo 'line 2'")
               + "[    2.000000] reboot: Restarting system\n")
    assert boot.parse_output(console, "abc") == ("line 1\nline 2\n", 0)


def test_parse_output_exit_status() -> None:
    assert boot.parse_output(guest("echo failed; exit 3"), "abc") == ("failed\n", 3)


def test_parse_output_empty_output() -> None:
    assert boot.parse_output(guest("true"), "abc") == ("", 0)


def test_parse_output_missing_end_marker() -> None:
    console = begin_line() + "started\n[   60.000000] reboot: Power down\n"
    assert boot.parse_output(console, "abc") == (
        "started\n[   60.000000] reboot: Power down\n", None)


def test_parse_output_missing_begin_marker() -> None:
    assert boot.parse_output("[    0.000000] Linux version 6.12.117\n", "abc") == ("", None)


def test_parse_output_other_nonce() -> None:
    assert boot.parse_output(guest("echo x", "old"), "new") == ("", None)


def test_parse_output_keeps_a_last_line_without_newline() -> None:
    """`printf hello` prints no final newline; its output must not be lost."""
    assert boot.parse_output(guest("printf hello"), "abc") == ("hello", 0)
    assert boot.parse_output(guest("printf 'a\\nb'"), "abc") == ("a\nb", 0)


def logged_run(command: str, nonce: str, tmp_path: Path) -> str:
    """A console log as _run_once writes it: the vng command line, then the console."""
    spec = GuestSpec(outdir=tmp_path, cwd=tmp_path)
    header = "# " + shlex.join(boot.vng_command(spec, boot._wrap(command, nonce), False))
    kernel = kernel_lines("clean_boot.log", "virtme-ng-init: initialization")
    return f"{header}\n{kernel}{guest(command, nonce)}[    2.871004] reboot: Restarting system\n"


def test_parse_output_ignores_the_command_line_in_the_log_header(tmp_path: Path) -> None:
    """The log starts with the vng command line, which carries both markers."""
    log = logged_run('echo "uname -r: $(uname -r)"', "3f9c2a7b1e04", tmp_path)
    assert log.splitlines()[0].count("==KSERIES-BEGIN-3f9c2a7b1e04==") == 1
    output, rc = boot.parse_output(log, "3f9c2a7b1e04")
    assert rc == 0
    assert output == f"uname -r: {os.uname().release}\n"


@settings(max_examples=40, deadline=None, database=None)
@given(text=st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\r=\x00"),
                    max_size=40),
       rc=st.integers(min_value=0, max_value=255))
def test_parse_output_gives_back_what_the_command_printed(text: str, rc: int) -> None:
    console = guest(f"printf %s {shlex.quote(text)}; exit {rc}", "n")
    assert boot.parse_output(console, "n") == (text, rc)


@pytest.mark.parametrize("command, rc", [("true", 0), ("exit 3", 3), ("false; true", 0),
                                         ("echo x && (exit 7)", 7)])
def test_wrapped_command_reports_its_status(command: str, rc: int) -> None:
    assert boot.parse_output(guest(command, "n0"), "n0")[1] == rc


def test_vng_command(tmp_path: Path) -> None:
    spec = GuestSpec(outdir=tmp_path, cpus=4, memory="1G", append="quiet loglevel=3",
                     rwdirs=(tmp_path / "a", tmp_path / "b"), cwd=tmp_path / "src",
                     vng="/opt/vng")
    cmd = boot.vng_command(spec, "echo hi", kvm=True)
    assert cmd == ["/opt/vng", "--verbose", "--cpus", "4", "--memory", "1G",
                   "--run", str(tmp_path / "arch/x86/boot/bzImage"),
                   "--append", f"{boot.GUEST_APPEND} quiet loglevel=3",
                   "--rwdir", str(tmp_path / "a"), "--rwdir", str(tmp_path / "b"),
                   "--cwd", str(tmp_path / "src"), "--exec", "echo hi"]
    assert "--disable-kvm" not in cmd
    tcg = boot.vng_command(spec, "echo hi", kvm=False)
    assert tcg.count("--disable-kvm") == 1
    # Under TCG the lockup detectors get their largest thresholds.
    tcg_append = f"{boot.TCG_APPEND} {boot.GUEST_APPEND} quiet loglevel=3"
    assert sorted(tcg) == sorted([tcg_append if x.endswith("quiet loglevel=3") else x
                                  for x in [*cmd, "--disable-kvm"]])
    assert tcg[-2:] == ["--exec", "echo hi"]


def test_vng_command_minimal(tmp_path: Path) -> None:
    cmd = boot.vng_command(GuestSpec(outdir=tmp_path), "x", kvm=False)
    assert cmd == ["vng", "--verbose", "--cpus", "2", "--memory", "2G", "--run",
                   str(tmp_path / "arch/x86/boot/bzImage"), "--disable-kvm",
                   "--append", f"{boot.TCG_APPEND} {boot.GUEST_APPEND}", "--exec", "x"]


def test_single_thread_tcg_only_under_tcg(tmp_path: Path) -> None:
    # A guest that runs KVM guests flips static keys: one TCG thread sees every write.
    spec = GuestSpec(outdir=tmp_path, single_thread_tcg=True)
    tcg = boot.vng_command(spec, "x", kvm=False)
    i = tcg.index("--qemu-opt=-accel")
    assert tcg[i + 1] == "--qemu-opt=tcg,thread=single"
    assert tcg[-2:] == ["--exec", "x"]
    assert not any(a.startswith("--qemu-opt") for a in boot.vng_command(spec, "x", kvm=True))
    assert not any(a.startswith("--qemu-opt")
                   for a in boot.vng_command(GuestSpec(outdir=tmp_path), "x", kvm=False))


def test_every_guest_runs_with_four_level_paging(tmp_path: Path) -> None:
    # 5-level paging makes KASAN report a false wild access at boot.
    for kvm in (True, False):
        cmd = boot.vng_command(GuestSpec(outdir=tmp_path), "x", kvm=kvm)
        assert "no5lvl" in cmd[cmd.index("--append") + 1].split()


def test_every_guest_caches_its_root_filesystem(tmp_path: Path) -> None:
    """cache=loose on the 9p root: Python's imports were minutes without it."""
    for kvm in (True, False):
        cmd = boot.vng_command(GuestSpec(outdir=tmp_path, append="x=1"), "x", kvm=kvm)
        append = cmd[cmd.index("--append") + 1].split()
        flags = [a for a in append if a.startswith("rootflags=")]
        assert len(flags) == 1 and "cache=loose" in flags[0].split(",")
        assert "trans=virtio" in flags[0] and "version=9p2000.L" in flags[0]


def test_kvm_can_be_disabled_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KSERIES_KVM", "0")
    assert boot.kvm_usable() == (False, "KSERIES_KVM=0")


# --- BootResult --------------------------------------------------------------------

def result(**kwargs: object) -> BootResult:
    fields: dict[str, object] = dict(command="cmd", returncode=0, output="a\nb\nc\nd\n",
                                     console_log=Path("/logs/c.log"), splats=[], seconds=1.0,
                                     kvm=False)
    fields.update(kwargs)
    return BootResult(**fields)  # type: ignore[arg-type]


def test_result_ok() -> None:
    result().raise_for_failure()
    assert result().ok


def test_result_exit_status() -> None:
    res = result(returncode=3)
    assert not res.ok
    with pytest.raises(KseriesError) as err:
        res.raise_for_failure()
    assert err.value.message == "`cmd` exited 3 in the guest: b | c | d"
    assert err.value.hint == "console log: /logs/c.log"


def test_result_splat_comes_first() -> None:
    warn = Splat("warning", 7, ("WARNING: CPU: 0 PID: 1 at x.c:1 f", "Modules linked in:"))
    res = result(returncode=3, timed_out=True, splats=[warn, warn])
    with pytest.raises(KseriesError) as err:
        res.raise_for_failure()
    assert err.value.message == ("kernel warning splat in the guest (2 in all): "
                                 "WARNING: CPU: 0 PID: 1 at x.c:1 f | Modules linked in:")


def test_vng_command_gives_qemu_a_qmp_socket(tmp_path: Path) -> None:
    cmd = boot.vng_command(GuestSpec(outdir=tmp_path), "x", kvm=False,
                           qmp_socket="/tmp/k/qmp")
    assert cmd[cmd.index("--qemu-opt=-qmp") + 1] == (
        "--qemu-opt=unix:/tmp/k/qmp,server=on,wait=off")


def test_result_timeout() -> None:
    res = result(returncode=None, timed_out=True)
    assert not res.ok
    with pytest.raises(KseriesError, match="the guest did not finish `cmd` in time"):
        res.raise_for_failure()


# --- boot.run with a fake vng ------------------------------------------------------

VNG = """\
#!/bin/sh
# A stand-in for virtme-ng: prints a console and runs --exec with sh.
printf '%s\\n' "$@" > "$0.args"
script=
while [ $# -gt 0 ]; do
    [ "$1" = --exec ] && script=$2
    shift
done
here=$(dirname "$0")
{body}
"""

BOOTS = """\
cat "$here/prelude.log"
sh -c "$script"
echo '[    2.871004] reboot: Restarting system'
"""


def kernel_lines(name: str, stop: str = "") -> str:
    """The kernel's part of a fixture console log (no vng header, no output)."""
    lines = []
    for line in (CONSOLES / name).read_text().splitlines(keepends=True):
        if stop and stop in line:
            break
        if line.startswith("["):
            lines.append(line)
    return "".join(lines)


def fake_vng(tmp_path: Path, body: str = BOOTS) -> Path:
    (tmp_path / "prelude.log").write_text(kernel_lines("clean_boot.log", "virtme-ng-init: "
                                                                         "initialization"))
    (tmp_path / "oops.log").write_text(kernel_lines("oops_int3_tcg.log"))
    vng = tmp_path / "vng"
    vng.write_text(VNG.format(body=body))
    vng.chmod(0o755)
    return vng


def outdir(tmp_path: Path) -> Path:
    image = tmp_path / "out" / "arch" / "x86" / "boot" / "bzImage"
    image.parent.mkdir(parents=True)
    image.write_bytes(b"MZ fake bzImage")
    return tmp_path / "out"


def run(tmp_path: Path, command: str, body: str = BOOTS, timeout: int = 60
        ) -> tuple[BootResult, str]:
    spec = GuestSpec(outdir=outdir(tmp_path), vng=str(fake_vng(tmp_path, body)),
                     timeout=timeout)
    progress, stream = quiet_progress()
    res = boot.run(spec, command, tmp_path / "logs" / "console.log", progress, kvm=False)
    return res, stream.getvalue()


def test_run_success(tmp_path: Path) -> None:
    res, progress = run(tmp_path, 'echo "hello from the guest"')
    assert res.returncode == 0
    assert res.ok
    assert res.attempts == 1
    assert res.retry_reason == ""
    assert not res.timed_out
    assert not res.kvm
    assert res.splats == []
    assert "hello from the guest\n" in res.output
    res.raise_for_failure()
    assert res.console_log == tmp_path / "logs" / "console.log"
    log = res.console_log.read_text()
    assert "Linux version 6.12.117" in log
    assert "--exec" in res.console_log.with_suffix(".cmd").read_text()
    args = (tmp_path / "vng.args").read_text().splitlines()
    assert "--disable-kvm" in args
    assert args[args.index("--run") + 1] == str(tmp_path / "out/arch/x86/boot/bzImage")
    assert "boot: exit 0, 0 splats" in progress


def test_run_output_is_only_the_commands_output(tmp_path: Path) -> None:
    res, _ = run(tmp_path, 'echo "hello from the guest"')
    assert res.output == "hello from the guest\n"


def test_run_command_fails(tmp_path: Path) -> None:
    res, _ = run(tmp_path, "echo 'vhost-blk: no such device'; exit 3")
    assert res.returncode == 3
    assert not res.ok
    assert res.attempts == 1
    with pytest.raises(KseriesError) as err:
        res.raise_for_failure()
    assert "exited 3 in the guest" in err.value.message
    assert "vhost-blk: no such device" in err.value.message
    assert str(res.console_log) in err.value.hint


FLAKY = """\
if [ ! -e "$here/attempted" ]; then
    : > "$here/attempted"
    cat "$here/oops.log"
    exit 0
fi
cat "$here/prelude.log"
sh -c "$script"
"""


def test_run_retries_an_early_boot_oops(tmp_path: Path) -> None:
    res, progress = run(tmp_path, "echo ok", body=FLAKY)
    assert res.attempts == 2
    assert res.retry_reason == ("kernel oops splat during boot: "
                                "Oops: int3: 0000 [#1] PREEMPT SMP KASAN NOPTI")
    assert res.returncode == 0
    assert res.ok
    assert res.splats == []
    assert res.console_log == tmp_path / "logs" / "console.try2.log"
    # The first attempt's log is kept for the record.
    assert "Oops: int3: 0000 [#1]" in (tmp_path / "logs" / "console.log").read_text()
    assert "retrying once" in progress
    assert "retried once (kernel oops splat during boot" in progress


SPLAT_THEN_RUNS = """if [ ! -e "$here/attempted" ]; then
    : > "$here/attempted"
    cat "$here/prelude.log"
    echo '[    1.100000] BUG: KASAN: wild-memory-access in rcu_is_watching+0x20/0x50'
    echo '[    1.100001] Read of size 8 at addr 1fffffff8a6b1e40 by task swapper/0'
    sh -c "$script"
    exit 0
fi
cat "$here/prelude.log"
sh -c "$script"
"""


def test_run_retries_a_boot_splat_even_if_the_command_ran(tmp_path: Path) -> None:
    res, _ = run(tmp_path, "echo ok", body=SPLAT_THEN_RUNS)
    assert res.attempts == 2
    assert res.retry_reason.startswith("kernel kasan splat during boot: BUG: KASAN: "
                                       "wild-memory-access in rcu_is_watching")
    assert res.ok
    assert "BUG: KASAN" in (tmp_path / "logs" / "console.log").read_text()


SPLAT_THEN_SLOW_COMMAND = """if [ ! -e "$here/attempted" ]; then
    : > "$here/attempted"
    cat "$here/prelude.log"
    echo '[    1.100000] BUG: KASAN: wild-memory-access in rcu_is_watching+0x20/0x50'
    echo $$ > "$here/first.pid"
    sleep 60
    sh -c "$script"
    exit 0
fi
cat "$here/prelude.log"
sh -c "$script"
"""


def test_run_stops_an_attempt_at_a_boot_splat(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # The attempt will be retried anyway: it is not left to run its command.
    monkeypatch.setattr(boot, "SPLAT_SETTLE", 1.0)
    t0 = time.monotonic()
    res, progress = run(tmp_path, "echo ok", body=SPLAT_THEN_SLOW_COMMAND)
    assert time.monotonic() - t0 < 30
    assert res.attempts == 2
    assert res.ok
    assert "stopped at a splat during boot, before the command ran; retrying once" in progress
    assert res.retry_reason.startswith("kernel kasan splat during boot")
    assert_guest_gone(tmp_path / "first.pid", "the stopped attempt")


ALWAYS_BOOT_SPLAT = """cat "$here/prelude.log"
echo '[    1.100000] BUG: KASAN: wild-memory-access in rcu_is_watching+0x20/0x50'
sh -c "$script"
"""


def test_run_a_boot_splat_twice_fails(tmp_path: Path) -> None:
    res, _ = run(tmp_path, "echo ok", body=ALWAYS_BOOT_SPLAT)
    assert res.attempts == 2
    assert [s.kind for s in res.splats] == ["kasan"]
    assert not res.ok
    with pytest.raises(KseriesError, match="kernel kasan splat in the guest"):
        res.raise_for_failure()


HANGS_AT_POWEROFF = """cat "$here/prelude.log"
sh -c "$script"
sleep 30
"""


def test_run_qemu_that_hangs_after_the_command_is_killed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(boot, "POWEROFF_GRACE", 1.0)
    t0 = time.monotonic()
    res, _ = run(tmp_path, "echo done", body=HANGS_AT_POWEROFF, timeout=20)
    assert time.monotonic() - t0 < 15
    assert res.returncode == 0
    assert not res.timed_out
    assert res.ok
    assert res.notes == ["QEMU did not exit 1s after the command finished"]


ALWAYS_OOPS = """\
cat "$here/oops.log"
"""


def test_run_oops_twice_is_reported_as_splats(tmp_path: Path) -> None:
    res, _ = run(tmp_path, "echo ok", body=ALWAYS_OOPS)
    assert res.attempts == 2
    assert res.returncode is None
    assert [s.kind for s in res.splats] == ["oops", "panic"]
    with pytest.raises(KseriesError, match="kernel oops splat in the guest"):
        res.raise_for_failure()


def test_run_qemu_never_starts(tmp_path: Path) -> None:
    with pytest.raises(InfraError) as err:
        run(tmp_path, "echo ok", body="exit 1")
    assert err.value.message == ("QEMU/virtme-ng failed before the kernel started (exit 1), "
                                 "also after 2 attempts")
    assert "console.try2.log" in err.value.hint
    assert (tmp_path / "logs" / "console.log").exists()
    assert (tmp_path / "logs" / "console.try2.log").exists()


def test_run_splat_during_the_command(tmp_path: Path) -> None:
    res, _ = run(tmp_path, f"echo start; cat {CONSOLES / 'warning_vhost.log'}; echo done")
    assert res.returncode == 0
    assert not res.ok
    assert [s.kind for s in res.splats] == ["warning"]
    with pytest.raises(KseriesError) as err:
        res.raise_for_failure()
    assert err.value.message.startswith("kernel warning splat in the guest (1 in all): "
                                        "WARNING: CPU: 1 PID: 42 at drivers/vhost/vhost.c:123")


def test_run_command_that_mentions_a_splat_is_not_a_splat(tmp_path: Path) -> None:
    """Only the kernel's console counts, not the command line in the log header."""
    res, _ = run(tmp_path, "grep -c 'BUG: KASAN: ' /proc/version || true")
    assert res.returncode == 0
    assert res.splats == []
    assert res.ok


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def assert_guest_gone(pidfile: Path, what: str, seconds: float = 5.0) -> None:
    """The process whose pid the guest's command wrote is gone (or a zombie)."""
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + seconds
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive(pid):
        pytest.fail(f"the guest's command (pid {pid}) outlived {what}")


def test_run_timeout(tmp_path: Path) -> None:
    pidfile = tmp_path / "sleep.pid"
    t0 = time.monotonic()
    res, _ = run(tmp_path, f"echo started; sleep 60 & echo $! > {pidfile}; wait", timeout=2)
    took = time.monotonic() - t0
    assert res.timed_out
    assert res.returncode is None
    assert res.attempts == 1
    assert not res.ok
    assert 2 <= took < 10
    assert "started\n" in res.output
    with pytest.raises(KseriesError, match="did not finish"):
        res.raise_for_failure()
    assert_guest_gone(pidfile, "the timeout", seconds=2)


# The fake vng starts Debian's QEMU, paused, with the QMP options it was given.
WITH_QEMU = """\
cat "$here/prelude.log"
set -- $(sed -n 's/^--qemu-opt=//p' "$0.args")
qemu-system-x86_64 -accel tcg -machine q35 -smp 2 -display none -S "$@" &
sh -c "$script"
"""


@pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None,
                    reason="no qemu-system-x86_64 (apt install qemu-system-x86)")
def test_run_timeout_reports_the_vcpus_and_asks_for_sysrq(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(boot, "SYSRQ_WAIT", 0.1)
    res, _ = run(tmp_path, "echo started; sleep 60", body=WITH_QEMU, timeout=5)
    assert res.timed_out
    report = res.notes[0].splitlines()
    assert report[:2] == ["the guest's vCPUs at the timeout:", "run state: prelaunch"], report
    assert [line.split(":")[0] for line in report[2:4]] == ["  cpu 0", "  cpu 1"], report
    # send-key was accepted for both keys, or the report would be an error line.
    assert report[4] == "(SysRq l and w sent: their output, if any, ends the console log)"
    with pytest.raises(KseriesError, match="cpu 0: IP 0000fff0, running"):
        res.raise_for_failure()


# The VM ends in the middle of the command, as QEMU does with -no-reboot
# when the guest resets: no end marker, no panic, QEMU exits 0.
ENDS_EARLY = """\
cat "$here/prelude.log"
sh -c "$script" &
sleep 2
kill -9 $!
exit 0
"""


def test_run_a_vm_that_ends_under_the_command_says_so(tmp_path: Path) -> None:
    res, _ = run(tmp_path, "echo 'fio: cell 17'; sleep 60", body=ENDS_EARLY)
    assert res.returncode is None and not res.timed_out and res.attempts == 1
    with pytest.raises(KseriesError) as err:
        res.raise_for_failure()
    assert err.value.message.startswith(
        "the guest ended before `echo 'fio: cell 17'; sleep 60` finished (QEMU exited 0,")
    assert err.value.message.endswith("ends it so): fio: cell 17")


def test_run_without_kernel_image(tmp_path: Path) -> None:
    progress, _ = quiet_progress()
    with pytest.raises(UsageError) as err:
        boot.run(GuestSpec(outdir=tmp_path, vng="/nonexistent/vng"), "true",
                 tmp_path / "c.log", progress, kvm=False)
    assert err.value.message == f"no kernel image at {tmp_path / 'arch/x86/boot/bzImage'}"
    assert "kseries build" in err.value.hint
    assert not (tmp_path / "c.log").exists()


def test_flake_reason() -> None:
    header = "# vng --exec 'echo ==KSERIES-BEGIN-n==; ( x ); echo ==KSERIES-END-n== rc=$?'\n"
    assert boot._flake_reason(header, 0, False, 0) == ""
    assert boot._flake_reason(header, None, False, 1) == (
        "QEMU/virtme-ng failed before the kernel started (exit 1)")
    booted = header + "[    0.000000] Linux version 6.12.117\n"
    assert boot._flake_reason(booted, None, False, 0) == (
        "the guest died before running the command")
    assert boot._flake_reason(booted, None, True, -9) == (
        "the guest timed out before running the command")
    assert boot._flake_reason(booted + "==KSERIES-BEGIN-n==\nx\n", None, True, -9) == ""


def test_alive_helper() -> None:
    assert alive(os.getpid())
    assert not alive(2**22 + 12345)


def test_run_refuses_a_second_boot_on_the_same_log(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "console.log"
    log.parent.mkdir()
    spec = GuestSpec(outdir=outdir(tmp_path), vng=str(fake_vng(tmp_path)))
    progress, _ = quiet_progress()
    with boot._exclusive(log), pytest.raises(UsageError, match="another boot is writing"):
        boot.run(spec, "true", log, progress, kvm=False)
    # Once the first one is done, the log is free again.
    assert boot.run(spec, "true", log, progress, kvm=False).ok


def signal_when_started(pidfile: Path, sig: int, limit: float = 60.0) -> threading.Event:
    """Send ``sig`` to this process once the guest's command has written its
    pid (not after a fixed delay, which a loaded machine can outrun); set the
    returned event to call it off."""
    stop = threading.Event()

    def wait_then_signal() -> None:
        deadline = time.monotonic() + limit
        while not stop.is_set() and time.monotonic() < deadline:
            if pidfile.exists() and pidfile.read_text().strip():
                os.kill(os.getpid(), sig)
                return
            time.sleep(0.05)

    threading.Thread(target=wait_then_signal, daemon=True).start()
    return stop


def test_interrupted_boot_kills_the_guest(tmp_path: Path) -> None:
    """Ctrl-C (or SIGTERM, which the CLI turns into the same) while a guest
    runs: the guest, in a session of its own, goes too."""
    pidfile = tmp_path / "guest.pid"
    command = f"echo $$ > {pidfile}; sleep 300"
    # Ctrl-C as in a terminal: a job started in the background by a
    # non-interactive shell (as CI may start this) inherits SIGINT ignored,
    # and Python then installs no KeyboardInterrupt handler.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    stop = signal_when_started(pidfile, signal.SIGINT)
    try:
        res, progress = run(tmp_path, command)
    except KeyboardInterrupt:
        pass
    else:
        pytest.fail("boot.run returned instead of raising KeyboardInterrupt: "
                    f"rc={res.returncode} timed_out={res.timed_out} output={res.output!r} "
                    f"progress={progress!r}")
    finally:
        stop.set()
        signal.signal(signal.SIGINT, previous)
    assert_guest_gone(pidfile, "the interrupted boot")


def test_sigterm_to_kseries_run_kills_the_guest(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """`kseries run` stopped with SIGTERM (a CI job cancelled) exits 130,
    leaves no guest behind and puts the SIGTERM handler back."""
    from kseries import cli

    monkeypatch.setattr(boot, "GuestSpec",
                        functools.partial(GuestSpec, vng=str(fake_vng(tmp_path))))
    monkeypatch.setenv("KSERIES_KVM", "0")
    pidfile = tmp_path / "guest.pid"
    before = signal.getsignal(signal.SIGTERM)
    stop = signal_when_started(pidfile, signal.SIGTERM)
    try:
        rc = cli.main(["run", "--outdir", str(outdir(tmp_path)), "--console-log",
                       str(tmp_path / "c.log"), "--", f"echo $$ > {pidfile}; sleep 300"])
    finally:
        stop.set()
    assert rc == 130
    assert signal.getsignal(signal.SIGTERM) is before
    assert_guest_gone(pidfile, "kseries run")


def test_missing_vng_is_one_line_error(tmp_path: Path) -> None:
    spec = GuestSpec(outdir=outdir(tmp_path), vng="vng-not-installed-anywhere")
    progress, _ = quiet_progress()
    with pytest.raises(InfraError) as err:
        boot.run(spec, "true", tmp_path / "c.log", progress, kvm=False)
    assert "'vng-not-installed-anywhere' is not on PATH" in err.value.message
    assert ".venv/bin/kseries" in err.value.hint
