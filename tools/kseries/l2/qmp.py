"""What a stalled L2 guest's QEMU says about its virtqueues and vCPUs.

An L2 run that stops printing can be stuck in three places: the device
never took the requests the guest made available (a lost kick), the
device holds them (the back end or the completion path), or the device
completed them and the guest did not notice (a lost interrupt).  The
rings in the guest's memory tell which: QEMU reads them for us through
its QMP commands x-query-virtio-queue-element (the guest's avail and
used indexes) and, for a userspace device, x-query-virtio-queue-status
(what it took and the last used index it signalled; for a vhost device
QEMU 10.0 cannot say, see _queue()).  The vCPUs' instruction pointers,
halt state and local APIC (IRR, ISR) say whether the guest waits for an
interrupt that is pending but not delivered.

Everything here is best effort: a QEMU whose main loop is stuck does not
answer, and the report says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from qemu.qmp import QMPClient

from kseries import qmp
from kseries.qmp import option

__all__ = ["Queue", "describe", "option", "report"]


@dataclass(frozen=True)
class Queue:
    """One virtqueue, as its indexes stand (all modulo 2**16)."""

    avail: int    # avail->idx in guest memory: requests the guest made available
    taken: int | None  # the device's last_avail_idx: requests it has taken
    used: int     # used->idx in guest memory: requests completed into the ring
    signalled: int | None = None  # userspace devices: the last used idx signalled

    def verdict(self) -> str:
        if self.taken is None:
            if self.avail != self.used:
                return (f"{(self.avail - self.used) & 0xFFFF} not completed "
                        "(whether the device took them is unknown)")
        elif waiting := (self.avail - self.taken) & 0xFFFF:
            return f"{waiting} made available but not taken by the device (a kick not seen?)"
        elif held := (self.taken - self.used) & 0xFFFF:
            return f"{held} taken by the device and not completed (back end or completion)"
        if self.signalled is not None and self.signalled != self.used:
            return "all completed, the last completions not signalled (an interrupt not sent)"
        return "all completed: if the guest still waits, it missed the interrupt"


def describe(vq: int, q: Queue) -> str:
    taken = "?" if q.taken is None else str(q.taken)
    signalled = "" if q.signalled is None else f", signalled {q.signalled}"
    return (f"  queue {vq}: avail {q.avail}, taken {taken}, used {q.used}{signalled}: "
            f"{q.verdict()}")


async def _queue(client: QMPClient, path: str, vq: int, vhost: bool) -> Queue:
    element = await qmp.ask(client, "x-query-virtio-queue-element", path=path, queue=vq)
    if vhost:
        # QEMU 10.0's x-query-virtio-queue-status reports, for a started
        # vhost device, vhost_get_vring_base()'s return value (0 on
        # success) as last-avail-idx, not the index VHOST_GET_VRING_BASE
        # returned; and QEMU's own copy is not kept while vhost runs.
        return Queue(avail=element["avail"]["idx"], taken=None, used=element["used"]["idx"])
    status = await qmp.ask(client, "x-query-virtio-queue-status", path=path, queue=vq)
    signalled = status["signalled-used"] if status.get("signalled-used-valid") else None
    return Queue(avail=element["avail"]["idx"], taken=status.get("last-avail-idx"),
                 used=element["used"]["idx"], signalled=signalled)


async def _device(client: QMPClient, path: str) -> str:
    """"TYPE at PCI slot NN" for a virtio device's QOM path."""
    proxy = path.removesuffix("/virtio-backend")
    kind = await qmp.ask(client, "qom-get", path=proxy, property="type")
    try:
        devfn = await qmp.ask(client, "qom-get", path=proxy, property="addr")
    except Exception:  # not a PCI device
        return str(kind)
    return f"{kind} at PCI slot {int(devfn) >> 3:02x}"


async def _virtio(client: QMPClient) -> list[str]:
    out = []
    for dev in await qmp.ask(client, "x-query-virtio"):
        status = await qmp.ask(client, "x-query-virtio-status", path=dev["path"])
        # "VIRTIO_CONFIG_S_DRIVER_OK: Driver setup and ready" -> "DRIVER_OK"
        states = [s.split(":")[0].removeprefix("VIRTIO_CONFIG_S_")
                  for s in status["status"]["statuses"]]
        vhost = bool(status["vhost-started"])
        out.append(f"{await _device(client, dev['path'])} ({dev['path']}): status "
                   f"{','.join(states) or '0'}, isr {status['isr']:#x}, vhost started {vhost}")
        if "DRIVER_OK" not in states:
            continue
        for vq in range(status["num-vqs"]):
            try:
                out.append(describe(vq, await _queue(client, dev["path"], vq, vhost)))
            except Exception as exc:  # a report, not a check
                out.append(f"  queue {vq}: {exc}")
    return out


async def _everything(client: QMPClient) -> list[str]:
    cpus = await qmp.vcpus(client)
    return [cpus[0], *await _virtio(client), *cpus[1:]]


def report(sock: str) -> str:
    """The virtqueues and vCPUs of the QEMU listening on ``sock``, as text."""
    return qmp.report(sock, _everything)
