"""kseries.l2.qmp: the report on a stalled L2 guest's virtqueues and vCPUs.

The verdicts follow the split virtqueue's indexes (virtio 1.2, 2.7.6 and
2.7.8): avail->idx counts what the driver made available, the device's
last_avail_idx what it took, used->idx what it completed; all wrap at
2**16.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from kseries.l2 import qmp
from kseries.qmp import cpu_line


def test_a_request_not_taken_is_a_kick_the_device_did_not_see() -> None:
    assert qmp.Queue(avail=12, taken=10, used=10).verdict().startswith(
        "2 made available but not taken")


def test_a_request_taken_and_not_completed_is_held_by_the_device() -> None:
    assert qmp.Queue(avail=12, taken=12, used=9).verdict().startswith(
        "3 taken by the device and not completed")


def test_everything_completed_means_the_guest_missed_the_interrupt() -> None:
    assert "missed the interrupt" in qmp.Queue(avail=7, taken=7, used=7).verdict()


def test_a_completion_not_signalled_is_an_interrupt_not_sent() -> None:
    assert "not signalled" in qmp.Queue(avail=7, taken=7, used=7, signalled=6).verdict()


def test_the_indexes_wrap_at_2_to_the_16() -> None:
    assert qmp.Queue(avail=1, taken=65535, used=65535).verdict().startswith("2 made available")
    assert qmp.Queue(avail=3, taken=3, used=65534).verdict().startswith("5 taken")


def test_a_vhost_queue_is_judged_by_the_rings_alone() -> None:
    # QEMU cannot say what a vhost device took: avail against used only.
    line = qmp.describe(1, qmp.Queue(avail=4, taken=None, used=4))
    assert line == ("  queue 1: avail 4, taken ?, used 4: all completed: if the guest "
                    "still waits, it missed the interrupt")
    assert qmp.Queue(avail=2, taken=None, used=65534).verdict() == (
        "4 not completed (whether the device took them is unknown)")


# As QEMU 10.0's target/i386/cpu-dump.c and x86_cpu_dump_local_apic_state() print them.
REGISTERS = (
    "RAX=0000000000000000 RBX=0000000000000000 RCX=0000000000000001 RDX=0000000000000000\r\n"
    "RIP=ffffffff81c2d1ef RFL=00000246 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=1\r\n"
)
LAPIC = (
    "dumping local APIC state for CPU 0 \r\n\r\n"
    "ESR\t 0x00000000\r\n"
    "ISR\t (none)\r\n"
    "IRR\t 34 236 \r\n"
)


def test_a_vcpu_line_has_ip_halt_and_pending_vectors() -> None:
    assert cpu_line(0, REGISTERS, LAPIC) == (
        "  cpu 0: IP ffffffff81c2d1ef, halted; IRR 34 236, ISR (none)")


def test_a_vcpu_line_survives_output_it_does_not_know() -> None:
    assert cpu_line(3, "no registers", "local apic state not available") == (
        "  cpu 3: IP ?, running; IRR ?, ISR ?")


def test_no_qemu_on_the_socket_is_a_line_not_an_exception(tmp_path: Path) -> None:
    text = qmp.report(str(tmp_path / "none"))
    assert text.startswith(f"(QMP at {tmp_path / 'none'}: ") and "\n" not in text


QEMU = shutil.which("qemu-system-x86_64")


@pytest.mark.skipif(QEMU is None, reason="no qemu-system-x86_64 (apt install qemu-system-x86)")
def test_a_real_qemu_reports_its_virtio_device_and_vcpus(tmp_path: Path) -> None:
    # A paused machine: the driver has not set DRIVER_OK, so no queue lines.
    assert QEMU is not None
    sock = str(tmp_path / "qmp")
    proc = subprocess.Popen(
        [QEMU, "-accel", "tcg", "-S", "-nodefaults", "-display", "none", "-smp", "2",
         "-blockdev", "driver=null-co,node-name=n0", "-device", "virtio-blk-pci,drive=n0,addr=0x4",
         *qmp.option(sock)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not Path(sock).exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        text = qmp.report(sock)
    finally:
        proc.kill()
        proc.wait()
    lines = text.splitlines()
    assert lines[0] == "run state: prelaunch", text
    assert lines[1] == ("virtio-blk-pci at PCI slot 04 (/machine/peripheral-anon/device[0]/"
                        "virtio-backend): status 0, isr 0x0, vhost started False"), text
    assert [line.split(":")[0] for line in lines[2:]] == ["  cpu 0", "  cpu 1"], text
    # Before long mode QEMU prints EIP; the reset vector.
    assert "IP 0000fff0, running" in lines[2], text
