"""kseries.qemu.configure (when to configure) and .ninja (progress, errors)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import pytest
from helpers import quiet_progress

from kseries.errors import KseriesError
from kseries.qemu import build, configure, ninja


@pytest.fixture
def src(tmp_path: Path) -> Path:
    tree = tmp_path / "qemu"
    tree.mkdir()
    (tree / "configure").write_text("#!/bin/sh\n")
    return tree


def configured(build_dir: Path, stamp: Mapping[str, object]) -> Path:
    build_dir.mkdir(parents=True, exist_ok=True)
    (build_dir / "build.ninja").write_text("")
    (build_dir / configure.STAMP).write_text(json.dumps(stamp))
    return build_dir


def test_options() -> None:
    opts = configure.options("/venv/bin/python", ccache=True)
    assert opts[:2] == ["--python=/venv/bin/python", "--cc=ccache gcc"]
    for wanted in ("--target-list=x86_64-softmmu", "--without-default-features",
                   "--enable-vhost-kernel", "--enable-vhost-user-blk-server", "--enable-tools"):
        assert wanted in opts
    assert "--cc=ccache gcc" not in configure.options("/venv/bin/python", ccache=False)


def test_not_configured_yet(tmp_path: Path, src: Path) -> None:
    fp = configure.fingerprint(src, ["--a"])
    assert configure.reason_to_configure(tmp_path / "b", fp) == "not configured yet"


def test_unchanged_needs_no_configure(tmp_path: Path, src: Path) -> None:
    fp = configure.fingerprint(src, ["--a"])
    assert configure.reason_to_configure(configured(tmp_path / "b", fp), fp) is None


@pytest.mark.parametrize(("change", "why"), [
    ({"options": ["--b"]}, "the configure options changed"),
    ({"source": "/elsewhere"}, "the source tree moved"),
    ({"configure": "0" * 64}, "QEMU's configure script changed"),
    ({"meson": "0.63"}, "meson's version changed"),
])
def test_a_change_calls_for_configure(tmp_path: Path, src: Path, change: dict[str, object],
                                      why: str) -> None:
    fp = configure.fingerprint(src, ["--a"])
    build_dir = configured(tmp_path / "b", {**fp, **change})
    assert configure.reason_to_configure(build_dir, fp) == why


def test_configure_script_edit_is_seen(tmp_path: Path, src: Path) -> None:
    build_dir = configured(tmp_path / "b", configure.fingerprint(src, ["--a"]))
    (src / "configure").write_text("#!/bin/sh\necho changed\n")
    assert configure.reason_to_configure(build_dir, configure.fingerprint(src, ["--a"])) == (
        "QEMU's configure script changed")


def test_no_record_of_a_finished_configure(tmp_path: Path, src: Path) -> None:
    build_dir = tmp_path / "b"
    build_dir.mkdir()
    (build_dir / "build.ninja").write_text("")
    fp = configure.fingerprint(src, ["--a"])
    assert configure.reason_to_configure(build_dir, fp) == "no record of a finished configure"


def test_configure_skipped_when_unchanged(tmp_path: Path, src: Path) -> None:
    build_dir = configured(tmp_path / "b", configure.fingerprint(src, ["--a"]))
    progress, stream = quiet_progress()
    assert configure.configure(src, build_dir, ["--a"], progress) is False
    assert "configure: unchanged" in stream.getvalue()


def test_configure_failure_is_one_line(tmp_path: Path, src: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(configure, "missing_prerequisites", list)
    (src / "configure").write_text(
        "#!/bin/sh\necho checking\necho '../meson.build:22:25: ERROR: File x.bz2 does not exist.'"
        "\necho\necho 'ERROR: meson setup failed'\nexit 1\n")
    (src / "configure").chmod(0o755)
    progress, _ = quiet_progress()
    with pytest.raises(KseriesError) as err:
        configure.configure(src, tmp_path / "b", ["--a"], progress)
    assert err.value.message == (
        "configuring QEMU failed (exit 1): ../meson.build:22:25: ERROR: File x.bz2 does not "
        "exist. | ERROR: meson setup failed")
    assert err.value.hint == f"full log: {tmp_path / 'b' / configure.LOG}"
    assert not (tmp_path / "b" / configure.STAMP).exists()


def test_missing_prerequisites_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(configure, "_version", lambda dist: "1.0.1" if dist == "meson" else None)
    missing = configure.missing_prerequisites()
    assert missing[0].startswith("Debian packages build-essential ninja-build pkg-config")
    assert "meson>=1.5.0 (have 1.0.1)" in missing[1]
    assert "pycotap" in missing[1]


def test_parse_step() -> None:
    step = ninja.parse_step("[12/1723] Compiling C object libqemuutil.a.p/util_osdep.c.o\n")
    assert step == ninja.Step(12, 1723, "Compiling C object libqemuutil.a.p/util_osdep.c.o")
    assert ninja.parse_step("ninja: no work to do.") is None
    assert ninja.parse_step("../hw/block/virtio-blk.c:12: warning: [x/y]") is None


def test_counter_is_throttled() -> None:
    progress, stream = quiet_progress()
    now = [0.0]
    counter = ninja.Counter(progress, every=30, clock=lambda: now[0])
    for i in range(1, 101):
        now[0] = i
        counter.feed(f"[{i}/100] Compiling C object {i}.o\n")
        counter.feed("In file included from x.h:1:\n")
    lines = stream.getvalue().splitlines()
    assert counter.steps == ninja.Steps(100, 100, 0)
    assert [line.split("] ", 1)[1] for line in lines] == [
        "qemu: build: [30/100] Compiling C object 30.o",
        "qemu: build: [60/100] Compiling C object 60.o",
        "qemu: build: [90/100] Compiling C object 90.o",
    ]


def fake_ninja(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "ninja").write_text("#!/bin/sh\n" + script)
    (bindir / "ninja").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")


def test_ninja_run_counts_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_ninja(tmp_path, monkeypatch, "echo \"$@\"\necho '[1/2] Compiling C object a.o'\n"
                                      "echo '[2/2] Linking target qemu-system-x86_64'\n")
    progress, _ = quiet_progress()
    log = tmp_path / "build.log"
    steps = ninja.run(tmp_path, ["qemu-system-x86_64"], progress, log, jobs=3)
    assert steps == ninja.Steps(2, 1, 1)
    assert str(steps) == "2 steps: 1 compiled, 1 linked"
    assert f"-C {tmp_path} -j3 qemu-system-x86_64" in log.read_text()


def test_ninja_no_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_ninja(tmp_path, monkeypatch, "echo \"ninja: Entering directory '.'\"\n"
                                      "echo 'ninja: no work to do.'\n")
    progress, _ = quiet_progress()
    steps = ninja.run(tmp_path, ["all"], progress, tmp_path / "build.log")
    assert str(steps) == "nothing to do"


def test_ninja_only_generators(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """QEMU regenerates qemu-version.h on every run; that is no rebuild."""
    fake_ninja(tmp_path, monkeypatch, "echo '[1/6] Generating qemu-version.h with a custom "
                                      "command (wrapped by meson to capture output)'\n")
    progress, _ = quiet_progress()
    steps = ninja.run(tmp_path, ["all"], progress, tmp_path / "build.log")
    assert str(steps) == "nothing compiled or linked (1 generator step)"


def test_ninja_failure_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_ninja(tmp_path, monkeypatch, """\
echo '[1/3] Compiling C object hw/block/vhost-blk.c.o'
echo 'FAILED: libcommon.a.p/hw_block_vhost-blk.c.o'
echo '../../qemu-tree/qemu/hw/block/vhost-blk.c:10:5: error: unknown type name foo'
echo 'ninja: build stopped: subcommand failed.'
exit 1
""")
    progress, _ = quiet_progress()
    log = tmp_path / "build.log"
    with pytest.raises(KseriesError) as err:
        ninja.run(tmp_path, ["all"], progress, log)
    assert err.value.message == (
        "building QEMU failed (ninja exit 1): FAILED: libcommon.a.p/hw_block_vhost-blk.c.o | "
        "../../qemu-tree/qemu/hw/block/vhost-blk.c:10:5: error: unknown type name foo")
    assert err.value.hint == f"full log: {log}"


def test_targets_are_what_the_project_runs() -> None:
    assert set(build.TARGETS) == {"qemu-system-x86_64", "qemu-storage-daemon", "qos-test"}
    assert build.TARGETS["qos-test"] == "tests/qtest/qos-test"


def test_firmware_is_linked_into_the_bundle(tmp_path: Path) -> None:
    (tmp_path / "qemu-bundle" / "usr" / "local" / "share" / "qemu").mkdir(parents=True)
    configure.link_firmware(tmp_path)
    configure.link_firmware(tmp_path)  # idempotent
    for directory in configure.FIRMWARE:
        link = tmp_path / "qemu-bundle" / directory.lstrip("/")
        assert link.is_symlink()
        assert str(link.readlink()) == directory
    opts = configure.options("/p", ccache=False)
    assert f"--firmwarepath={':'.join(configure.FIRMWARE)}" in opts
