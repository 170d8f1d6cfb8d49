"""kseries.bench.matrix: planning the cases and their command lines."""

from __future__ import annotations

import pytest

from kseries.bench import matrix
from kseries.bench.matrix import BenchCase, PlanError, Settings


def test_plan_has_every_back_end_per_group() -> None:
    p = matrix.plan(["null_blk"], ["randread"], [1, 32], [1, 2], list(matrix.BACKENDS))
    keys = [c.key for c in p.cases]
    assert len(keys) == len(set(keys))
    q1 = [c.label for c in p.cases if c.group == ("null_blk", "randread", 1, 1)]
    assert q1 == ["direct fio io_uring", "direct fio libaio", "direct vblk-load aio",
                  "vhost-blk 1q/1w", "vhost-user-blk 1q"]
    q2 = [c.label for c in p.cases if c.group == ("null_blk", "randread", 32, 2)]
    assert q2 == ["direct fio io_uring", "direct fio libaio", "direct vblk-load aio",
                  "vhost-blk 2q/1w", "vhost-blk 2q/2w", "vhost-user-blk 2q"]
    assert len(p.cases) == 2 * 5 + 2 * 6


def test_plan_orders_queues_then_iodepth_and_dedups() -> None:
    p = matrix.plan(["brd", "brd"], ["randwrite"], [32, 1, 32], [2, 1], ["vhost-blk"])
    assert [(c.queues, c.iodepth, c.workers) for c in p.cases] == [
        (1, 1, 1), (1, 32, 1), (2, 1, 1), (2, 1, 2), (2, 32, 1), (2, 32, 2)]


@pytest.mark.parametrize(("args", "message"), [
    ((["nvme"], ["randread"], [1], [1], ["vhost-blk"]), "unknown device 'nvme'"),
    ((["brd"], ["seqread"], [1], [1], ["vhost-blk"]), "unknown access pattern 'seqread'"),
    ((["brd"], ["randread"], [1], [1], ["spdk"]), "unknown back end 'spdk'"),
    ((["brd"], ["randread"], [0], [1], ["vhost-blk"]), "iodepth 0 is out of range"),
    ((["brd"], ["randread"], [1], [17], ["vhost-blk"]), "queue count 17 is out of range"),
    ((["brd"], ["randread"], [], [1], ["vhost-blk"]), "no iodepth given"),
])
def test_plan_rejects_bad_input_naming_it(args: tuple[list[str], list[str], list[int],
                                                      list[int], list[str]],
                                          message: str) -> None:
    with pytest.raises(PlanError, match=message):
        matrix.plan(*args)


def test_plan_rejects_bad_settings() -> None:
    with pytest.raises(PlanError, match="block size 1000"):
        matrix.plan(["brd"], ["randread"], [1], [1], ["vhost-blk"], Settings(bs=1000))
    with pytest.raises(PlanError, match="runtime 0s"):
        matrix.plan(["brd"], ["randread"], [1], [1], ["vhost-blk"], Settings(runtime=0))


def test_parse_lists() -> None:
    assert matrix.parse_ints("1, 32,128", "iodepth") == [1, 32, 128]
    assert matrix.parse_list("brd,,null_blk", "devices") == ["brd", "null_blk"]
    with pytest.raises(PlanError, match="'x' is not a whole number"):
        matrix.parse_ints("1,x", "iodepth")
    with pytest.raises(PlanError, match="--devices is empty"):
        matrix.parse_list(" , ", "devices")


def test_plan_json_round_trip() -> None:
    p = matrix.plan(["brd"], ["randread"], [1], [1, 2], ["vhost-blk", "fio-libaio"],
                    Settings(runtime=3, ramp=0))
    p.tool, p.out = "/x/vblk-load", "/x/out"
    again = matrix.BenchPlan.from_json(p.to_json())
    assert again.cases == p.cases and again.settings == p.settings
    assert (again.tool, again.out) == ("/x/vblk-load", "/x/out")
    with pytest.raises(PlanError, match="version"):
        matrix.BenchPlan.from_json({"version": 7})


def test_commands() -> None:
    s = Settings(bs=4096, runtime=5, ramp=1)
    fio = matrix.fio_command(BenchCase("brd", "randwrite", 32, 2, "fio-io_uring"), s, "/dev/ram0")
    assert "--ioengine=io_uring" in fio and "--direct=1" in fio and "--numjobs=2" in fio
    assert "--iodepth=32" in fio and "--rw=randwrite" in fio and "--filename=/dev/ram0" in fio
    blk = matrix.load_command(BenchCase("brd", "randread", 1, 2, "vhost-blk", 2), s, "/t",
                              dev="/dev/ram0")
    assert blk[:7] == ["/t", "--backend", "vhost-blk", "--dev", "/dev/ram0", "--workers", "2"]
    assert blk[blk.index("--queues") + 1] == "2"
    user = matrix.load_command(BenchCase("brd", "randread", 1, 1, "vhost-user"), s, "/t",
                               socket="/tmp/s")
    assert user[:5] == ["/t", "--backend", "vhost-user", "--socket", "/tmp/s"]
    aio = matrix.load_command(BenchCase("brd", "randread", 4, 2, "vblk-aio"), s, "/t", dev="/dev/x")
    assert aio[:5] == ["/t", "--backend", "aio", "--dev", "/dev/x"]
    with pytest.raises(PlanError):
        matrix.load_command(BenchCase("brd", "randread", 1, 1, "fio-libaio"), s, "/t")
    qsd = " ".join(matrix.qsd_command("/dev/ram0", "/tmp/s", 2))
    assert "num-queues=2" in qsd and "filename=/dev/ram0" in qsd and "cache.direct=on" in qsd
