"""paths.Places / Layout: every path in one place, and $KSERIES_WORK moves every output."""

from __future__ import annotations

from pathlib import Path

import pytest

from kseries import build, paths, tree
from kseries.progress import Progress
from kseries.submit import config as submit_config

REAL_ROOT = Path(__file__).resolve().parents[2]

# Every output, by its place under the work directory: the locations the
# README and Documentation/ name (build/x86_64-debug, build/logs, ...).
OUTPUTS = {
    "series-tree": lambda p: p.series_tree,
    "x86_64-debug": lambda p: p.debug_build,
    "kunit-um": lambda p: p.kunit_build(),
    "kunit-x86_64": lambda p: p.kunit_build("x86_64"),
    "dev-x86_64-debug": lambda p: p.dev_build("x86_64-debug"),
    "x86_64-bench": lambda p: p.bench_build,
    "qemu": lambda p: p.qemu_build,
    "l2": lambda p: p.l2_build,
    "logs": lambda p: p.logs,
    "logs/run-console.log": lambda p: p.console_log("run"),
    "report.json": lambda p: p.report,
    "bench": lambda p: p.bench_runs,
    "check-series": lambda p: p.check_output,
    "check-series/report.json": lambda p: p.check_report,
    "check-work": lambda p: p.check_work,
    "submit": lambda p: p.submit_output,
    "submit/linux": lambda p: p.submit_worktree,
}

# Every input, by its place in the checkout.
INPUTS = {
    "tools": lambda p: p.tools,
    "kernel-tree/manifest.toml": lambda p: p.kernel_manifest,
    "kernel-tree/linux": lambda p: p.pinned_tree,
    "kernel-tree/cache": lambda p: p.kernel_cache,
    "kernel-tree/configs": lambda p: p.configs,
    "kunit": lambda p: p.kunit,
    "qemu-tree/manifest.toml": lambda p: p.qemu_manifest,
    "l2-guest/manifest.toml": lambda p: p.l2_manifest,
    "check-series.toml": lambda p: p.check_config,
    "submit.toml": lambda p: p.submit_config,
}


def test_project_root_is_this_checkout() -> None:
    where = paths.places()
    assert paths.project_root() == REAL_ROOT
    assert where.root == REAL_ROOT
    assert where.work == REAL_ROOT / "build"
    for name, get in INPUTS.items():
        if name != "kernel-tree/linux" and name != "kernel-tree/cache":  # git-ignored
            assert get(where).exists(), name


@pytest.mark.parametrize("name", sorted(OUTPUTS))
def test_default_outputs_are_under_build(tmp_path: Path, name: str) -> None:
    where = paths.places(root=tmp_path)
    assert where.work == tmp_path / "build"
    assert OUTPUTS[name](where) == tmp_path / "build" / name


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_inputs_are_in_the_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    name: str) -> None:
    monkeypatch.setenv(paths.WORK_VAR, str(tmp_path / "elsewhere"))
    assert INPUTS[name](paths.places(root=tmp_path)) == tmp_path / name


@pytest.mark.parametrize("name", sorted(OUTPUTS))
def test_kseries_work_moves_every_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         name: str) -> None:
    monkeypatch.setenv("KSERIES_WORK", str(tmp_path / "w"))
    where = paths.places(root=tmp_path / "checkout")
    assert where.work == tmp_path / "w"
    assert OUTPUTS[name](where) == tmp_path / "w" / name


def test_in_checkout(tmp_path: Path) -> None:
    where = paths.places(root=tmp_path)
    assert where.in_checkout("patches/qemu") == tmp_path / "patches" / "qemu"
    assert where.in_checkout("/abs/p") == Path("/abs/p")
    assert where.in_checkout("a/../b") == tmp_path / "b"


def test_work_argument_beats_the_variable(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KSERIES_WORK", str(tmp_path / "env"))
    assert paths.places(work=tmp_path / "arg", root=tmp_path).work == tmp_path / "arg"


def test_relative_and_empty_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KSERIES_WORK", "out")
    assert paths.places(root=REAL_ROOT).work == tmp_path / "out"
    monkeypatch.setenv("KSERIES_WORK", "")
    assert paths.places(root=REAL_ROOT).work == REAL_ROOT / "build"


def test_layout_defaults_and_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lay = paths.layout()
    assert lay.root == REAL_ROOT and lay.work == REAL_ROOT / "build"
    assert lay.tree == lay.pinned_tree == REAL_ROOT / "kernel-tree" / "linux"
    assert lay.patches == REAL_ROOT / "patches" == lay.in_checkout(lay.manifest.patches)
    assert lay.manifest.path == lay.kernel_manifest
    assert lay.base == lay.manifest.tag
    monkeypatch.setenv("KSERIES_WORK", str(tmp_path))
    lay = paths.layout(tree=tmp_path / "linux", base="v1")
    assert (lay.work, lay.series_tree, lay.tree, lay.base) == (
        tmp_path, tmp_path / "series-tree", tmp_path / "linux", "v1")
    assert lay.pinned_tree == REAL_ROOT / "kernel-tree" / "linux"


def test_check_home_obeys_the_variable_only_in_the_checkout(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KSERIES_WORK", str(tmp_path / "w"))
    where = paths.places(root=tmp_path / "project")
    (tmp_path / "project" / "sub").mkdir(parents=True)
    assert where.check_home(tmp_path / "project" / "sub") == (
        tmp_path / "project", tmp_path / "w" / "check-series", tmp_path / "w" / "check-work")
    maint = tmp_path / "maint"
    maint.mkdir()
    assert where.check_home(maint) == (maint, maint / "check-series",
                                       maint / "check-series-work")


def test_ccache_basedir_is_the_project_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CCACHE_BASEDIR", raising=False)
    assert build.make_env()["CCACHE_BASEDIR"] == str(paths.project_root())


def test_ensure_fetches_only_the_pinned_tree(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    fetched: list[tuple[Path, Path | None]] = []
    opened: list[Path] = []

    def fake_fetch(man: object, dest: Path, cache: Path | None = None,
                   **_: object) -> None:
        fetched.append((dest, cache))

    def fake_open(path: Path, base: str) -> tree.Tree:
        opened.append(path)
        return tree.Tree(path, base)

    monkeypatch.setattr(tree, "fetch", fake_fetch)
    monkeypatch.setattr(tree, "open_tree", fake_open)
    lay = paths.layout(work=tmp_path)
    tree.ensure(lay, Progress(quiet=True))
    assert fetched == [(lay.pinned_tree, lay.kernel_cache)]
    mine = paths.layout(tree=tmp_path / "mine", work=tmp_path)
    tree.ensure(mine, Progress(quiet=True))
    assert len(fetched) == 1
    assert opened == [lay.pinned_tree, tmp_path / "mine"]


def test_submit_paths_default_to_the_work_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KSERIES_WORK", str(tmp_path))
    lay = paths.places()
    cfg = submit_config.load(lay.submit_config)
    assert cfg.resolve(lay.root, cfg.check_json, lay.check_report) == \
        tmp_path / "check-series" / "report.json"
    assert cfg.resolve(lay.root, cfg.output, lay.submit_output) == tmp_path / "submit"
    assert cfg.resolve(lay.root, cfg.bench_results, lay.bench_runs) == tmp_path / "bench"
    set_in_file = submit_config.SubmitConfig(check_json="elsewhere/r.json")
    assert set_in_file.resolve(lay.root, set_in_file.check_json, lay.check_report) == \
        lay.root / "elsewhere" / "r.json"
