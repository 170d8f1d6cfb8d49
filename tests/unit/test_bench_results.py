"""kseries.bench.results and report: parsing tool output, ratios, targets, tables."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kseries.bench import matrix, report, results, runner
from kseries.bench.matrix import BenchCase
from kseries.bench.results import Measurement, ResultError
from kseries.errors import KseriesError, ReportError

LOAD_OK = json.dumps({
    "tool": "vblk-load", "ok": True, "error": "", "backend": "vhost-blk", "iops": 1234.5,
    "bw_bytes": 5056512.0, "seconds": 5.001, "ios": 6173, "kicks": 10, "waits": 3,
    "wakeups": 3, "ring_size": 16, "features": 1,
    "lat_ns": {"mean": 800.0, "p50": 700, "p99": 2000, "p99.9": 9000, "max": 12000}})


def fio_json(iops: float, side: str = "read", error: int = 0) -> str:
    other = "write" if side == "read" else "read"
    job = {"jobname": "bench", "error": error, "usr_cpu": 1.0, "sys_cpu": 2.0,
           side: {"iops": iops, "bw_bytes": iops * 4096, "runtime": 5000, "total_ios": 10,
                  "lat_ns": {"mean": 1500.0, "percentile": {"50.000000": 1000,
                                                            "99.000000": 3000,
                                                            "99.900000": 5000}}},
           other: {"iops": 0, "bw_bytes": 0}}
    return "fio: some warning\n" + json.dumps({"fio version": "fio-3.33", "jobs": [job]})


def test_parse_load() -> None:
    r = results.parse_load("k", LOAD_OK + "\n")
    assert r.ok and r.iops == 1234.5 and r.lat_us["p99.9"] == 9.0 and r.extra["kicks"] == 10


def test_parse_load_failure_keeps_the_reason() -> None:
    r = results.parse_load("k", '{"tool": "vblk-load", "ok": false, '
                                '"error": "VHOST_SET_OWNER on /dev/vhost-blk: Busy"}')
    assert not r.ok and "VHOST_SET_OWNER" in r.error


@pytest.mark.parametrize(("text", "message"), [
    ("", "printed no JSON"),
    ("segfault", "printed no JSON .it printed: segfault"),
    ('{"ok": true, "iops": ', "malformed JSON"),
    ('{"ok": true, "iops": 1}', "lacks"),
])
def test_parse_load_bad_output(text: str, message: str) -> None:
    with pytest.raises(ResultError, match=message):
        results.parse_load("k", text)


def test_parse_fio_read_and_write() -> None:
    r = results.parse_fio("k", fio_json(5000.0), "randread")
    assert r.ok and r.iops == 5000.0 and r.lat_us == {"p50": 1.0, "p99": 3.0, "p99.9": 5.0,
                                                        "mean": 1.5}
    w = results.parse_fio("k", fio_json(700.0, side="write"), "randwrite")
    assert w.ok and w.iops == 700.0
    assert not results.parse_fio("k", fio_json(0.0), "randread").ok
    assert "error 5" in results.parse_fio("k", fio_json(1.0, error=5), "randread").error
    with pytest.raises(ResultError, match="no jobs"):
        results.parse_fio("k", '{"jobs": []}', "randread")


def _group(iops: dict[str, float | None]) -> tuple[list[BenchCase], dict[str, Measurement]]:
    p = matrix.plan(["null_blk"], ["randread"], [32], [2], list(matrix.BACKENDS))
    res: dict[str, Measurement] = {}
    for c in p.cases:
        v = iops.get(c.label)
        if v is None:
            res[c.key] = results.failed(c.key, "boom")
        else:
            res[c.key] = Measurement(key=c.key, ok=True, iops=v)
    return p.cases, res


def test_ratios_use_the_best_direct_engine() -> None:
    cases, res = _group({"direct fio io_uring": 1000.0, "direct fio libaio": 800.0,
                         "vhost-blk 2q/1w": 500.0, "vhost-blk 2q/2w": 950.0,
                         "vhost-user-blk 2q": 400.0})
    table = results.rows(cases, res)
    ratio = {r.case.label: r.ratio_direct for r in table}
    assert ratio["direct fio io_uring"] == 1.0
    assert ratio["direct fio libaio"] == pytest.approx(0.8)
    assert ratio["vhost-blk 2q/2w"] == pytest.approx(0.95)
    got = {c.name: (c.value, c.met) for c in results.checks(table)}
    assert got["vhost-blk / direct"] == (pytest.approx(0.95), False)
    assert got["vhost-blk / vhost-user-blk"] == (pytest.approx(950 / 400), True)
    assert got["2 workers / 1 worker"] == (pytest.approx(1.9), True)


def test_failed_cases_have_no_ratio_and_are_not_hidden() -> None:
    cases, res = _group({"direct fio io_uring": None, "direct fio libaio": None,
                         "vhost-blk 2q/1w": 500.0, "vhost-blk 2q/2w": None,
                         "vhost-user-blk 2q": 400.0})
    del res[cases[-1].key]  # the guest died before the last case
    table = results.rows(cases, res)
    assert all(r.ratio_direct is None for r in table)
    missing = table[-1]
    assert not missing.result.ok and "guest stopped" in missing.result.error
    names = {c.name for c in results.checks(table)}
    assert names == set()  # vhost-user failed and there is no direct ceiling
    text = report.table(table)
    assert text.count("FAILED") == 5
    assert "1 of 6 cases measured; 5 FAILED" in report.summary(table)


def test_table_and_checks_render() -> None:
    cases, res = _group({"direct fio io_uring": 1000.0, "direct fio libaio": 800.0,
                         "vhost-blk 2q/1w": 500.0, "vhost-blk 2q/2w": 990.0,
                         "vhost-user-blk 2q": 400.0})
    table = results.rows(cases, res)
    text = report.table(table)
    assert "| null_blk | randread | 32 | 2 | vhost-blk 2q/2w | 990 | 0.99 |" in text
    checks = report.checks_table(results.checks(table))
    assert "| vhost-blk / direct | null_blk randread qd32 2q | 0.99 | >= 0.97 | yes |" in checks


def test_plot_writes_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    cases, res = _group({"direct fio io_uring": 1000.0, "direct fio libaio": 800.0,
                         "vhost-blk 2q/1w": 500.0, "vhost-blk 2q/2w": None,
                         "vhost-user-blk 2q": 400.0})
    out = tmp_path / "plot.png"
    report.plot(results.rows(cases, res), out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_results_load_names_a_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    good = Measurement(key="a", ok=True, iops=1.0).to_json()
    path.write_text(json.dumps(good) + "\nnot json\n")
    with pytest.raises(KseriesError, match=r"results.jsonl:2: not a result line"):
        results.load(path)
    path.write_text(json.dumps(good) + "\n\n")
    assert results.load(path)["a"].iops == 1.0
    assert results.load(tmp_path / "missing.jsonl") == {}


def test_render_writes_the_table_and_json_with_failures_counted(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from kseries.progress import Progress

    p = matrix.plan(["brd"], ["randread"], [1], [1], ["fio-libaio", "vhost-blk"])
    lines = [Measurement(key=p.cases[0].key, ok=True, iops=100.0).to_json(),
             results.failed(p.cases[1].key, "VHOST_SET_OWNER: busy").to_json()]
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    text, failures = runner.render(p, tmp_path, {"command": "test"}, Progress(quiet=True))
    assert failures == 1
    assert "FAILED: VHOST_SET_OWNER: busy" in text
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["meta"] == {"command": "test"}
    assert [c["result"]["ok"] for c in doc["cases"]] == [True, False]
    assert (tmp_path / "table.md").read_text() == text
    assert (tmp_path / "plot.png").exists()


# -- readers beside the writers: results.jsonl and results.json -----------------------------


def _run() -> report.BenchRun:
    cases, res = _group({"direct fio io_uring": 1000.0, "direct fio libaio": 800.0,
                         "vhost-blk 2q/1w": 500.0, "vhost-blk 2q/2w": None,
                         "vhost-user-blk 2q": 400.0})
    res[cases[0].key].lat_us = {"p50": 12.5, "p99": 40.0, "p99.9": 71.25, "mean": 13.0}
    res[cases[0].key].extra = {"ios": 5000, "usr_cpu": 1.5, "sys_cpu": None}
    rows = results.rows(cases, res)
    return report.BenchRun(matrix.Settings(runtime=7), rows, results.checks(rows),
                           {"command": "kseries bench", "kvm": False, "guest": {"cpus": 2}})


def test_results_jsonl_round_trip(tmp_path: Path) -> None:
    run = _run()
    path = tmp_path / "results.jsonl"
    path.write_text("".join(results.to_line(r.result) for r in run.rows))
    assert results.load(path) == {r.case.key: r.result for r in run.rows}


def test_results_json_round_trip(tmp_path: Path) -> None:
    run = _run()
    assert run.checks and any(r.ratio_direct is None for r in run.rows)
    path = tmp_path / report.RESULTS
    report.write(run, path)
    again = report.load(path)
    assert again == run
    assert report.text(again) == report.text(run)


@pytest.mark.parametrize(("change", "words"), [
    (lambda d: d.update(version=2), "version 2, this version reads 1"),
    (lambda d: d.pop("checks"), "lacks 'checks'"),
    (lambda d: d["cases"][0]["case"].update(key="other"), "are not the case's"),
    (lambda d: d["checks"][0].update(met=not d["checks"][0]["met"]), "the value makes it"),
    (lambda d: d["cases"][1]["result"].pop("ok"), "a result line lacks a field"),
])
def test_results_json_that_bench_did_not_write_is_refused(
        tmp_path: Path, change: Callable[[dict[str, Any]], object], words: str) -> None:
    data = report.to_dict(_run())
    change(data)
    path = tmp_path / report.RESULTS
    path.write_text(json.dumps(data))
    with pytest.raises(ReportError) as err:
        report.load(path)
    assert err.value.message.startswith(f"the benchmark results {path} ")
    assert words in err.value.message and "\n" not in err.value.message
    path.write_text("[not json")
    with pytest.raises(ReportError, match="unreadable"):
        report.load(path)


def test_latest_results_is_the_newest_finished_run(tmp_path: Path) -> None:
    for stamp in ("run-20261101T100000Z", "run-20261130T090000Z", "run-20261201T000000Z"):
        (tmp_path / stamp).mkdir()
    for stamp in ("run-20261101T100000Z", "run-20261130T090000Z"):
        report.write(_run(), tmp_path / stamp / report.RESULTS)
    newest = tmp_path / "run-20261130T090000Z" / report.RESULTS
    assert report.latest_results(tmp_path) == newest
    assert report.latest_results(newest.parent) == newest
    assert report.latest_results(tmp_path / "run-20261201T000000Z") is None
