"""kunit_run: reading kunit.py --json output, and run()'s checks.

The fixtures in tests/fixtures/kunit/ were produced by the Linux 6.12
tree's own tools/testing/kunit/kunit_parser.py + kunit_json.py from KTAP
logs, so they have exactly the shape kunit.py writes.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from helpers import quiet_progress

from kseries import kunit_run
from kseries.errors import KseriesError, UsageError
from kseries.kunit_run import Case

KUNIT = Path(__file__).resolve().parent.parent / "fixtures" / "kunit"


def cases(name: str) -> list[Case]:
    return kunit_run.parse_json((KUNIT / name).read_text())


def test_fixtures_have_the_kunit_json_shape() -> None:
    for path in KUNIT.glob("*.json"):
        data = json.loads(path.read_text())
        assert data["name"] == "KUnit Test Group"
        assert {"sub_groups", "test_cases", "arch", "defconfig", "build_environment",
                "lab_name", "kernel", "job", "git_branch"} <= set(data)


def test_example_suites() -> None:
    got = cases("example.json")
    assert got[:3] == [
        Case("example", "example_simple_test", "PASS"),
        Case("example", "example_skip_test", "SKIP"),
        Case("example", "example_mark_skipped_test", "SKIP"),
    ]
    params = [c for c in got if c.suite == "example.example_params_test"]
    assert params == [
        Case("example.example_params_test", "example value 3", "PASS"),
        Case("example.example_params_test", "example value 2", "PASS"),
        Case("example.example_params_test", "example value 1", "PASS"),
        Case("example.example_params_test", "example value 0", "SKIP"),
    ]
    assert params[0].full_name == "example.example_params_test.example value 3"
    assert got[-1] == Case("example_init", "example_init_test", "PASS")
    assert len(got) == 13
    assert Counter(c.status for c in got) == Counter(PASS=10, SKIP=3)
    # The parameterised test itself is a group, not a case.
    assert not any(c.name == "example_params_test" for c in got)


def test_failures_params_and_crash() -> None:
    got = cases("vhost_blk.json")
    assert [(c.full_name, c.status) for c in got if c.status != "ERROR"] == [
        ("vhost_blk.vhost_blk_test_open", "PASS"),
        ("vhost_blk.vhost_blk_test_bad_sector", "FAIL"),
        ("vhost_blk.vhost_blk_test_discard", "SKIP"),
        ("vhost_blk.vhost_blk_test_req_sizes.512 bytes", "PASS"),
        ("vhost_blk.vhost_blk_test_req_sizes.4096 bytes", "PASS"),
        ("vhost_blk.vhost_blk_test_req_sizes.65536 bytes", "FAIL"),
        ("vhost_blk_ring.vhost_blk_ring_test_wrap", "PASS"),
    ]
    # kunit.py records the test the kernel crashed in without a name.
    (crashed,) = [c for c in got if c.status == "ERROR"]
    assert crashed.suite == "vhost_blk_ring"
    assert crashed.name == "(crashed before naming)"
    assert Counter(c.status for c in got) == Counter(PASS=4, FAIL=2, SKIP=1, ERROR=1)


def test_no_tests() -> None:
    assert cases("no_tests.json") == []


def test_top_level_case_and_unknown_status() -> None:
    text = json.dumps({"name": "KUnit Test Group", "sub_groups": [], "test_cases": [
        {"name": "lonely_suite", "status": "ERROR"},
        {"name": "odd", "status": "TIMEOUT"},
        {"name": "no_status"},
    ]})
    got = kunit_run.parse_json(text)
    assert got == [Case("", "lonely_suite", "ERROR"), Case("", "odd", "FAIL"),
                   Case("", "no_status", "FAIL")]
    assert got[0].full_name == "lonely_suite"


@pytest.mark.parametrize("text", ["", "{", "not json", '{"name": "KUnit Test Group",}'])
def test_invalid_json(text: str) -> None:
    with pytest.raises(KseriesError) as err:
        kunit_run.parse_json(text)
    assert err.value.message.startswith("kunit.py wrote invalid JSON: ")


@pytest.mark.parametrize("text", ["{}", "[]", '{"name": "KUnit Test Group", "sub_groups": []}',
                                  '"test_cases"', "null"])
def test_json_without_test_cases(text: str) -> None:
    with pytest.raises(KseriesError) as err:
        kunit_run.parse_json(text)
    assert err.value.message == "kunit.py JSON has no test_cases: not a KUnit test group"


def result(name: str, returncode: int) -> kunit_run.KunitResult:
    got = cases(name)
    return kunit_run.KunitResult(got, returncode, Path("log"), Path("json"),
                                 counts=Counter(c.status for c in got))


def test_result_ok_and_summary() -> None:
    good = result("example.json", 0)
    assert good.ok
    assert good.summary() == "13 tests: 10 pass, 3 skip"
    assert not result("example.json", 1).ok
    bad = result("vhost_blk.json", 1)
    assert not bad.ok
    assert bad.summary() == "8 tests: 4 pass, 2 fail, 1 skip, 1 error"
    assert not result("no_tests.json", 0).ok
    assert result("no_tests.json", 0).summary() == "0 tests: none"


# --- run(): checks before anything is built, and a fake kunit.py -----------------

FAKE_KUNIT = """\
import shutil, sys
args = dict(a.split("=", 1) for a in sys.argv[2:] if a.startswith("--") and "=" in a)
print("[00:00:01] Configuring KUnit Kernel ...", flush=True)
print("[00:00:02] Building KUnit Kernel ...", flush=True)
print("[00:00:09] Starting KUnit Kernel (1/1)...", flush=True)
print("some kernel noise", flush=True)
src = {src!r}
if src:
    shutil.copyfile(src, args["--json"])
print("[00:00:10] Testing complete. Ran 8 tests", flush=True)
sys.exit({rc})
"""


def fake_tree(root: Path, src: str = "", rc: int = 0) -> Path:
    script = root / "tools" / "testing" / "kunit" / "kunit.py"
    script.parent.mkdir(parents=True)
    script.write_text(FAKE_KUNIT.format(src=src, rc=rc))
    return root


def kunitconfig(root: Path) -> Path:
    path = root / "vhost_blk.kunitconfig"
    path.write_text("CONFIG_KUNIT=y\nCONFIG_VHOST_BLK_KUNIT_TEST=y\n")
    return path


def test_run_needs_kunit_py(tmp_path: Path) -> None:
    progress, _ = quiet_progress()
    with pytest.raises(UsageError) as err:
        kunit_run.run(tmp_path, kunitconfig(tmp_path), tmp_path / "b", progress)
    assert "tools/testing/kunit/kunit.py does not exist" in err.value.message
    assert "--tree" in err.value.hint


def test_run_missing_kunitconfig(tmp_path: Path) -> None:
    tree = fake_tree(tmp_path / "linux")
    progress, _ = quiet_progress()
    missing = tmp_path / "nope.kunitconfig"
    with pytest.raises(UsageError) as err:
        kunit_run.run(tree, missing, tmp_path / "b", progress)
    assert err.value.message == f"kunitconfig {missing} does not exist"
    assert "--kunitconfig" in err.value.hint
    assert not (tmp_path / "b").exists()


def test_run_refuses_in_tree_config(tmp_path: Path) -> None:
    tree = fake_tree(tmp_path / "linux")
    (tree / ".config").write_text("CONFIG_64BIT=y\n")
    progress, _ = quiet_progress()
    with pytest.raises(UsageError) as err:
        kunit_run.run(tree, kunitconfig(tmp_path), tmp_path / "b", progress)
    assert "in-tree build (.config)" in err.value.message
    assert f"make -C {tree} mrproper" in err.value.hint
    assert not (tmp_path / "b").exists()


def test_run_with_fake_kunit_py(tmp_path: Path) -> None:
    tree = fake_tree(tmp_path / "linux", src=str(KUNIT / "vhost_blk.json"), rc=1)
    progress, stream = quiet_progress()
    res = kunit_run.run(tree, kunitconfig(tmp_path), tmp_path / "b", progress)
    assert res.returncode == 1
    assert not res.ok
    assert res.cases == cases("vhost_blk.json")
    assert res.counts["FAIL"] == 2
    assert res.json_path == tmp_path / "b" / "kunit.json"
    log = res.log.read_text()
    assert log.startswith("$ python3 ")
    assert "--json=" in log and "some kernel noise" in log
    # A release string that does not follow the commit: no rebuild of its users.
    assert " --kconfig_add=CONFIG_LOCALVERSION_AUTO=n" in log.splitlines()[0]
    out = stream.getvalue()
    assert "kunit: Building KUnit Kernel ..." in out
    assert "some kernel noise" not in out
    assert "kunit: 8 tests: 4 pass, 2 fail, 1 skip, 1 error" in out


def test_run_without_json_output(tmp_path: Path) -> None:
    tree = fake_tree(tmp_path / "linux", rc=3)
    build_dir = tmp_path / "b"
    build_dir.mkdir()
    (build_dir / "kunit.json").write_text("stale results from the previous run")
    progress, _ = quiet_progress()
    with pytest.raises(KseriesError) as err:
        kunit_run.run(tree, kunitconfig(tmp_path), build_dir, progress)
    assert err.value.message == "kunit.py produced no results (exit 3)"
    assert str(build_dir / "kunit.log") in err.value.hint


def test_run_with_no_tests(tmp_path: Path) -> None:
    tree = fake_tree(tmp_path / "linux", src=str(KUNIT / "no_tests.json"), rc=1)
    progress, _ = quiet_progress()
    with pytest.raises(KseriesError, match=r"ran no tests from vhost_blk.kunitconfig \(exit 1\)"):
        kunit_run.run(tree, kunitconfig(tmp_path), tmp_path / "b", progress)


def test_a_quiet_kunit_py_gets_heartbeat_lines(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    tree = fake_tree(tmp_path / "linux", src=str(KUNIT / "vhost_blk.json"))
    script = tree / "tools" / "testing" / "kunit" / "kunit.py"
    script.write_text("import time\ntime.sleep(0.5)\n" + script.read_text())
    monkeypatch.setattr(kunit_run, "HEARTBEAT", 0.05)
    progress, stream = quiet_progress()
    kunit_run.run(tree, kunitconfig(tmp_path), tmp_path / "b", progress)
    lines = stream.getvalue().splitlines()
    beats = [n for n, line in enumerate(lines) if "] kunit: still running, " in line]
    assert beats, lines
    summary = next(n for n, line in enumerate(lines) if "kunit: 8 tests:" in line)
    assert max(beats) < summary  # no heartbeat after the step
