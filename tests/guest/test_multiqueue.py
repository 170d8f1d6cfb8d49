"""Multiqueue: several virtqueues, each on its own worker, driven from threads."""

from __future__ import annotations

import os
import random
import threading

import pytest
from vblk_env import Backend, Blk, start

from vblk import request as rq


def _worker_io(q: rq.BlkQueue, base: int, seed: int, rounds: int,
               errors: list[str]) -> None:
    rnd = random.Random(seed)
    try:
        for r in range(rounds):
            blocks = {base + 8 * i: rnd.randbytes(4096) for i in range(32)}
            done = q.run_many([rq.write(s, d, rq.DescLayout(indirect=bool(r % 2)))
                               for s, d in blocks.items()], timeout=60)
            if not all(c.ok for c in done):
                errors.append(f"write failed on vq {q.vq.index}")
            done = q.run_many([rq.read(s, 4096) for s in blocks], timeout=60)
            if [c.data for c in done] != list(blocks.values()):
                errors.append(f"mismatch on vq {q.vq.index} round {r}")
    except Exception as exc:  # reported by the main thread
        errors.append(f"vq {q.vq.index}: {exc!r}")


def _run_threads(b: Blk, rounds: int = 4) -> None:
    errors: list[str] = []
    threads = [threading.Thread(target=_worker_io, args=(q, 4096 * i, i, rounds, errors))
               for i, q in enumerate(b.queues)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not any(t.is_alive() for t in threads), "a queue hung"
    assert not errors


@pytest.mark.parametrize("nq", [2, 4, 16])
def test_queues_on_own_workers(ram: Backend, nq: int) -> None:
    with start(None, num_queues=nq, mem_size=64 << 20) as b:
        workers = []
        for vq in b.dev.vqs.values():
            wid = b.dev.new_worker()
            b.dev.attach_vring_worker(vq.index, wid)
            assert b.dev.get_vring_worker(vq.index) == wid
            workers.append(wid)
        assert len(set(workers)) == nq
        b.dev.set_backend(ram.fd)
        # The VMM owns num_queues; the device reports its maximum.
        assert b.dev.get_config().num_queues == 16
        _run_threads(b)


def test_queues_sharing_the_default_worker(ram: Backend) -> None:
    with start(ram, num_queues=4) as b:
        assert len({b.dev.get_vring_worker(i) for i in range(4)}) == 1
        _run_threads(b, rounds=2)


def test_queue_set_up_after_backend_is_served_after_set_again(ram: Backend) -> None:
    with start(ram, num_queues=1) as b:
        vq = b.dev.setup_vq(1, 64)
        q1 = rq.BlkQueue(vq, b.dev.mem)
        b.dev.set_backend(ram.fd)
        data = os.urandom(4096)
        assert q1.run(rq.write(0, data)).ok
        assert b.read(0, 4096) == data


def test_free_worker(ram: Backend) -> None:
    with start(ram, num_queues=2) as b:
        wid = b.dev.new_worker()
        b.dev.attach_vring_worker(1, wid)
        with pytest.raises(OSError):
            b.dev.free_worker(wid)  # still attached
        default = b.dev.get_vring_worker(0)
        b.dev.attach_vring_worker(1, default)
        b.dev.free_worker(wid)
        b.still_serves()
