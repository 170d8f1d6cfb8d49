"""Ask a running QEMU, over QMP, what its vCPUs are doing.

For reports on the way to a failure (a guest that timed out): every
function here is best effort and returns text.  A QEMU whose main loop
is stuck does not answer, and the text says so.  Uses QEMU's own
``qemu.qmp`` library.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

from qemu.qmp import QMPClient

# How long to wait for QEMU's greeting and for each answer.
TIMEOUT = 10.0


def option(sock: str) -> list[str]:
    """QEMU options for a QMP socket that report() can connect to later."""
    return ["-qmp", f"unix:{sock},server=on,wait=off"]


async def ask(qmp: QMPClient, cmd: str, **args: Any) -> Any:
    return await asyncio.wait_for(qmp.execute(cmd, args), TIMEOUT)


async def hmp(qmp: QMPClient, line: str, cpu: int | None = None) -> str:
    """A human monitor command's output, on vCPU ``cpu`` when given."""
    args: dict[str, Any] = {"command-line": line}
    if cpu is not None:
        args["cpu-index"] = cpu
    return str(await ask(qmp, "human-monitor-command", **args))


_HLT = re.compile(r"\bHLT=(\d)")
# RIP in long mode, EIP before it (target/i386/cpu-dump.c).
_IP = re.compile(r"\b[RE]IP=([0-9a-f]+)")
_APIC = re.compile(r"^(IRR|ISR)\s+(.*)$", re.M)


def cpu_line(index: int, registers: str, lapic: str) -> str:
    """One line per vCPU from HMP's `info registers` and `info lapic`."""
    ip = _IP.search(registers)
    hlt = _HLT.search(registers)
    apic = {m.group(1): m.group(2).strip() or "(none)" for m in _APIC.finditer(lapic)}
    return (f"  cpu {index}: IP {ip.group(1) if ip else '?'}, "
            f"{'halted' if hlt and hlt.group(1) == '1' else 'running'}; "
            f"IRR {apic.get('IRR', '?')}, ISR {apic.get('ISR', '?')}")


async def vcpus(qmp: QMPClient) -> list[str]:
    """The run state, then a cpu_line() per vCPU."""
    out = [f"run state: {(await ask(qmp, 'query-status'))['status']}"]
    for cpu in await ask(qmp, "query-cpus-fast"):
        i = cpu["cpu-index"]
        out.append(cpu_line(i, await hmp(qmp, "info registers", i),
                            await hmp(qmp, "info lapic", i)))
    return out


async def sysrq(qmp: QMPClient, key: str) -> None:
    """Alt+SysRq+key on the machine's PS/2 keyboard (the guest's console
    then gets, for "l", every CPU's backtrace and for "w" the blocked
    tasks, if the guest still takes interrupts)."""
    keys = [{"type": "qcode", "data": k} for k in ("alt", "sysrq", key)]
    await ask(qmp, "send-key", keys=keys)


def report(sock: str, body: Callable[[QMPClient], Awaitable[list[str]]]) -> str:
    """body()'s lines, from the QEMU listening on ``sock``, as text."""
    async def session() -> list[str]:
        qmp = QMPClient("kseries")
        await asyncio.wait_for(qmp.connect(sock), TIMEOUT)
        try:
            return await body(qmp)
        finally:
            await qmp.disconnect()

    try:
        return "\n".join(asyncio.run(session()))
    except TimeoutError:
        return f"(QMP at {sock}: no answer in {TIMEOUT:.0f} s: QEMU's main loop is stuck)"
    except Exception as exc:  # a report on the way to a failure
        return f"(QMP at {sock}: {type(exc).__name__}: {exc})"
