"""kconfig parsing / checking and build.make on a fake kernel Makefile."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import quiet_progress

from kseries import build, kconfig, paths
from kseries.errors import KseriesError, UsageError
from kseries.kconfig import Mismatch

FRAGMENT = """\
# vhost-blk
CONFIG_VHOST_BLK=m
CONFIG_KASAN=y

# CONFIG_DEBUG_INFO_NONE is not set
CONFIG_CMDLINE="console=ttyS0 quiet"
  CONFIG_INDENTED=y
"""

DOT_CONFIG = """\
#
# Automatically generated file; DO NOT EDIT.
# Linux/x86 6.12.117 Kernel Configuration
#
CONFIG_CC_VERSION_TEXT="gcc (Debian 12.2.0-14+deb12u1) 12.2.0"
CONFIG_KASAN=y
CONFIG_VHOST=m
# CONFIG_DEBUG_INFO_NONE is not set
CONFIG_DEBUG_INFO_DWARF5=y
CONFIG_LOG_BUF_SHIFT=17
"""


def test_parse() -> None:
    assert kconfig.parse(FRAGMENT) == {
        "CONFIG_VHOST_BLK": "m",
        "CONFIG_KASAN": "y",
        "CONFIG_DEBUG_INFO_NONE": "n",
        "CONFIG_CMDLINE": '"console=ttyS0 quiet"',
        "CONFIG_INDENTED": "y",
    }


def test_parse_bad_line_names_file_and_line() -> None:
    with pytest.raises(UsageError) as err:
        kconfig.parse("CONFIG_A=y\n\nVHOST_BLK=y\n", "kernel-tree/configs/vhost-blk.config")
    assert err.value.message == (
        "kernel-tree/configs/vhost-blk.config:3: not a config line: 'VHOST_BLK=y'")
    assert "CONFIG_FOO=y" in err.value.hint


@pytest.mark.parametrize("line", ["CONFIG_A", "CONFIG_A = y", "CONFIG-A=y", "A=y"])
def test_parse_rejects(line: str) -> None:
    with pytest.raises(UsageError, match=r"^<config>:1: not a config line"):
        kconfig.parse(line)


def test_parse_comments_are_not_options() -> None:
    text = "# CONFIG_A is unset\n#CONFIG_B=y\n# CONFIG_C is not set\n"
    assert kconfig.parse(text) == {"CONFIG_C": "n"}


def test_mismatches() -> None:
    wanted = {
        "CONFIG_KASAN": "y",            # got y
        "CONFIG_VHOST_BLK": "y",        # wanted y, got unset
        "CONFIG_VHOST": "y",            # wanted y, got m
        "CONFIG_DEBUG_INFO_NONE": "n",  # "is not set" is n
        "CONFIG_KCOV": "n",             # absent is n too
        "CONFIG_DEBUG_INFO_DWARF5": "n",
        "CONFIG_LOG_BUF_SHIFT": "17",
    }
    assert kconfig.mismatches(wanted, DOT_CONFIG) == [
        Mismatch("CONFIG_VHOST_BLK", "y", "unset"),
        Mismatch("CONFIG_VHOST", "y", "m"),
        Mismatch("CONFIG_DEBUG_INFO_DWARF5", "n", "y"),
    ]
    assert str(Mismatch("CONFIG_VHOST_BLK", "y", "unset")) == (
        "CONFIG_VHOST_BLK: wanted y, got unset")


def test_mismatch_is_not_set_line() -> None:
    got = kconfig.mismatches({"CONFIG_VHOST_BLK": "m"},
                             "# CONFIG_VHOST_BLK is not set\n")
    assert got == [Mismatch("CONFIG_VHOST_BLK", "m", "n")]


def test_mismatches_bad_dot_config_line() -> None:
    with pytest.raises(UsageError, match=r"^\.config:2: not a config line"):
        kconfig.mismatches({}, "CONFIG_A=y\ngarbage\n")


def test_load_fragments_later_wins(tmp_path: Path) -> None:
    base = tmp_path / "base.config"
    base.write_text("CONFIG_A=y\nCONFIG_B=y\n")
    debug = tmp_path / "debug.config"
    debug.write_text("# CONFIG_B is not set\nCONFIG_C=m\n")
    assert kconfig.load_fragments([base, debug]) == {"CONFIG_A": "y", "CONFIG_B": "n",
                                                     "CONFIG_C": "m"}
    with pytest.raises(UsageError, match=r"config fragment .*nope\.config does not exist"):
        kconfig.load_fragments([base, tmp_path / "nope.config"])
    debug.write_text("oops\n")
    with pytest.raises(UsageError, match=re.escape(f"{debug}:1: not a config line")):
        kconfig.load_fragments([base, debug])


def test_fingerprint(tmp_path: Path) -> None:
    a = tmp_path / "a.config"
    a.write_text("CONFIG_A=y\n")
    b = tmp_path / "b.config"
    b.write_text("CONFIG_B=y\n")
    first = kconfig.fingerprint([a, b])
    assert first == kconfig.fingerprint([a, b])
    assert first != kconfig.fingerprint([b, a])
    b.write_text("CONFIG_B=m\n")
    assert first != kconfig.fingerprint([a, b])


# --- build.make on a fake tree -------------------------------------------------

FAILING = """\
all:
\t@echo '  SYNC    include/config/auto.conf'
\t@echo '  CC      init/main.o'
\t@echo '  CC [M]  drivers/vhost/blk.o'
\t@echo "drivers/vhost/blk.c:3:1: error: expected ';' before '}' token"
\t@exit 1
"""

PASSING = """\
all:
\t@echo '  SYNC    include/config/auto.conf'
\t@echo '  HOSTCC  scripts/basic/fixdep'
\t@echo '  CC      init/main.o'
\t@echo 'init/main.c:12:5: warning: no previous prototype for foo [-Wmissing-prototypes]'
\t@echo '  CC [M]  drivers/vhost/blk.o'
\t@echo '  LD [M]  drivers/vhost/vhost_blk.ko'
\t@echo '  BUILD   arch/x86/boot/bzImage'
\t@echo 'Kernel: arch/x86/boot/bzImage is ready  (#1)'
"""


def fake_tree(root: Path, makefile: str) -> tuple[Path, Path]:
    tree = root / "linux"
    tree.mkdir()
    (tree / "Makefile").write_text(makefile)
    outdir = root / "out"
    outdir.mkdir()
    return tree, outdir


def test_make_failure_names_the_error_and_the_log(tmp_path: Path) -> None:
    tree, outdir = fake_tree(tmp_path, FAILING)
    log = outdir / "build.log"
    progress, _ = quiet_progress()
    with pytest.raises(KseriesError) as err:
        build.make(tree, outdir, ["all"], progress, log)
    message = err.value.message
    assert message.startswith("build failed (make exit 2): ")
    assert "drivers/vhost/blk.c:3:1: error: expected ';' before '}' token" in message
    assert "  CC  " not in message
    assert err.value.hint == f"full log: {log}"
    text = log.read_text()
    assert text.startswith(f"$ make -C {tree} O={outdir} -j")
    assert "  CC [M]  drivers/vhost/blk.o" in text
    assert not (outdir / ".kseries-steps").exists()


def test_make_counts_steps(tmp_path: Path) -> None:
    tree, outdir = fake_tree(tmp_path, PASSING)
    log = outdir / "build.log"
    progress, _ = quiet_progress()
    assert build.make(tree, outdir, ["all"], progress, log) == 6
    assert (outdir / ".kseries-steps").read_text() == "6"
    # A later, smaller (incremental) build keeps the larger expected count.
    (tree / "Makefile").write_text("all:\n\t@echo '  CC      init/main.o'\n")
    assert build.make(tree, outdir, ["all"], progress, log) == 1
    assert (outdir / ".kseries-steps").read_text() == "6"


def test_make_passes_extra_args_and_label(tmp_path: Path) -> None:
    tree, outdir = fake_tree(tmp_path, "all:\n\t@echo '  CC      $(FOO).o'\n\t@false\n")
    progress, _ = quiet_progress()
    with pytest.raises(KseriesError) as err:
        build.make(tree, outdir, ["all"], progress, outdir / "log", extra=["FOO=bar"],
                   label="modules")
    assert err.value.message.startswith("modules failed (make exit 2): ")
    assert "  CC      bar.o" in (outdir / "log").read_text()


def test_make_env_is_reproducible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KBUILD_BUILD_USER", raising=False)
    env = build.make_env()
    assert env["KBUILD_BUILD_USER"] == "kseries"
    assert env["KBUILD_BUILD_HOST"] == "kseries"
    assert env["KBUILD_BUILD_TIMESTAMP"] == "2000-01-01"
    monkeypatch.setenv("KBUILD_BUILD_USER", "me")
    assert build.make_env()["KBUILD_BUILD_USER"] == "me"


def test_make_args(tmp_path: Path) -> None:
    args = build.make_args(tmp_path, jobs=3)
    assert args[:2] == [f"O={tmp_path}", "-j3"]


def test_configure_refuses_a_bad_fragment_before_running_anything(tmp_path: Path) -> None:
    frag = tmp_path / "bad.config"
    frag.write_text("CONFIG_OK=y\nnot a line\n")
    progress, _ = quiet_progress()
    with pytest.raises(UsageError, match=re.escape(f"{frag}:2: not a config line")):
        build.configure(tmp_path / "linux", tmp_path / "out", [frag], progress,
                        tmp_path / "log")
    assert not (tmp_path / "out").exists()


def test_kvm_fragment_comes_last_and_exists() -> None:
    lay = paths.layout()
    frags = lay.fragments(with_series=True, debug=True, kvm=True)
    assert [f.name for f in frags] == ["base.config", "vhost-blk.config", "debug.config",
                                       "kvm.config"]
    merged = kconfig.load_fragments(frags)
    assert merged["CONFIG_KVM"] == "y" and merged["CONFIG_KVM_AMD"] == "y"
    assert "kvm.config" not in [f.name for f in lay.fragments(with_series=True)]


def test_module_fragment_overrides_the_built_in_series() -> None:
    """--vhost-blk-module: vhost-blk, and vhost which only it selects, as modules."""
    lay = paths.layout()
    frags = lay.fragments(with_series=True, debug=True, module=True)
    assert [f.name for f in frags] == ["base.config", "vhost-blk.config",
                                       "vhost-blk-module.config", "debug.config"]
    merged = kconfig.load_fragments(frags)
    assert (merged["CONFIG_VHOST_BLK"], merged["CONFIG_VHOST"]) == ("m", "m")
    assert merged["CONFIG_MODULES"] == "y" and merged["CONFIG_MODULE_UNLOAD"] == "y"
    assert "vhost-blk-module.config" not in [f.name for f in lay.fragments(with_series=True)]


def test_module_build_needs_the_series_fragments(capsys: pytest.CaptureFixture[str]) -> None:
    from kseries import cli

    assert cli.main(["build", "--vhost-blk-module", "--no-series"]) == 2
    err = capsys.readouterr().err
    assert "--vhost-blk-module needs the series' config fragments" in err
    assert "Traceback" not in err


def test_missing_series_hint_names_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tree at the pinned base (no drivers/vhost/blk.c) gets one line saying
    the series is not applied and how to apply it; a tree with the series but
    an unmet dependency gets the menuconfig hint."""
    missing = [Mismatch("CONFIG_VHOST", "y", "unset"), Mismatch("CONFIG_VHOST_BLK", "y", "unset")]
    monkeypatch.setattr(build, "configure", lambda *a, **k: missing)
    with pytest.raises(UsageError) as exc:
        build.build(tmp_path, tmp_path / "out", [], quiet_progress())
    assert "the series is not applied" in exc.value.hint
    assert "kseries apply" in exc.value.hint and "--tree build/series-tree" in exc.value.hint
    (tmp_path / "drivers" / "vhost").mkdir(parents=True)
    (tmp_path / "drivers" / "vhost" / "blk.c").write_text("")
    with pytest.raises(UsageError) as exc:
        build.build(tmp_path, tmp_path / "out", [], quiet_progress())
    assert "menuconfig" in exc.value.hint and "apply" not in exc.value.hint
