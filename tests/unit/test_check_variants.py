"""The opt-in build variants (build-y/-m/-n, build-i386, build-clang), end to
end on the synthetic tree (real gcc and make; a fake clang on PATH), and the
Kconfig and Makefile reading they use."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from helpers import fake_path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "check"))
import synth
from synth import cells, result, run

from kseries.check import ksyms

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None,
                                reason="needs gcc and make")

CLANG = """\
# A stand-in for clang: gcc, plus a warning of its own on a CLANG_ONLY line
# (without the option ccache adds for clang).
case "$1" in --version) echo "Debian clang version 14.0.6"; exit 0 ;; esac
for arg; do
	shift
	case "$arg" in
	-fcolor-diagnostics) continue ;;
	*.c) src=$arg ;;
	esac
	set -- "$@" "$arg"
done
if [ -n "$src" ]; then
	grep -n CLANG_ONLY "$src" | while IFS=: read -r n _; do
		echo "$src:$n:1: warning: clang sees this [-Wclang-only]" >&2
	done
fi
exec gcc "$@"
"""
LLVM = {tool: "exit 0\n" for tool in ("ld.lld", "llvm-ar", "llvm-nm", "llvm-objcopy",
                                      "llvm-objdump", "llvm-readelf", "llvm-strip")}
# gcc without i386 support (a compiler built without -m32).
GCC_NO_M32 = """\
case " $* " in
*" -m32 "*) echo "gcc: error: unrecognized command-line option '-m32'" >&2; exit 1 ;;
esac
exec /usr/bin/gcc "$@"
"""


# --- build-y, build-m, build-n ---------------------------------------------------


def test_symbol_values_held_build_the_directory_and_find_new_warnings(tmp_path: Path) -> None:
    tree, patches = synth.make_kconfig_series(tmp_path)
    rc, report = run(tmp_path, tree, "--keep-going", "--only", "build-y,build-m,build-n",
                     str(patches), config=synth.write_config(tmp_path / "cs.toml", ["apply"]))
    assert rc == 1
    # Patch 1 adds LIB_C (no dependency) and lib/c.c with an unused variable.
    y = result(report, 1, "build-y")
    assert y["state"] == "fail"
    assert str(y["description"]).startswith("CONFIG_LIB_C=y: 1 new warning(s) in 1 target(s) "
                                            "(lib/); first: lib/c.c:5: warning: unused variable")
    assert result(report, 1, "build-m")["state"] == "fail"
    assert "CONFIG_LIB_C=m: 1 new warning" in str(result(report, 1, "build-m")["description"])
    n = result(report, 1, "build-n")
    assert n["state"] == "success"
    assert n["description"] == "CONFIG_LIB_C=n: 1 target(s) (lib/) built, no new warnings"
    log = (tmp_path / "out" / str(y["log"])).read_text()
    assert "scripts/config --file" in log and "--enable LIB_C" in log
    assert "olddefconfig" in log


def test_a_value_a_dependency_forbids_is_said_not_built(tmp_path: Path) -> None:
    tree, patches = synth.make_kconfig_series(tmp_path)
    _, report = run(tmp_path, tree, "--keep-going", "--only", "build-y,build-m,build-n",
                    str(patches), config=synth.write_config(tmp_path / "cs.toml", ["apply"]))
    # Patch 2: LIB_D depends on LIB_A, which the defconfig leaves n.
    for check, value in (("build-y", "y"), ("build-m", "m")):
        r = result(report, 2, check)
        assert r["state"] == "skip", check
        assert r["description"] == (f"CONFIG_LIB_D={value} does not hold (got n): Kconfig:9 "
                                    "depends on LIB_A (LIB_A=n)")
        assert "== before" not in (tmp_path / "out" / str(r["log"])).read_text()
    assert result(report, 2, "build-n")["state"] == "success"


def test_old_warnings_of_objects_a_symbol_selects_are_not_the_patchs(tmp_path: Path) -> None:
    # lib/a.c warns already at the base, but LIB_A (without a prompt, as
    # VHOST) is off there; the patch adds LIB_E, which selects LIB_A: a.o is
    # built from then on.
    tree = synth.init_tree(tmp_path / "tree")
    synth.write(tree, "lib/a.c", synth.A_C_WARN)
    synth.write(tree, "Kconfig", "config LIB_A\n\tbool\n")
    synth.commit(tree, "lib: a: an old warning", 1_700_000_050)
    synth.git(tree, "tag", "-f", "base")
    synth.git(tree, "checkout", "-q", "-b", "series")
    synth.write(tree, "Kconfig", (tree / "Kconfig").read_text()
                + '\nconfig LIB_E\n\ttristate "the e library"\n\tselect LIB_A\n')
    synth.write(tree, "lib/Makefile", (tree / "lib" / "Makefile").read_text()
                + "obj-$(CONFIG_LIB_E) += e.o\n")
    synth.write(tree, "lib/e.c", synth.LIB_D.replace("lib_d", "lib_e"))
    synth.git(tree, "add", "lib/e.c")
    synth.commit(tree, f"lib: e: add the e library\n\nIt needs a.\n\n{synth.SOB}",
                 1_700_000_100)
    patches = synth.export(tree, tmp_path / "patches")
    rc, report = run(tmp_path, tree, "--only", "build-y", str(patches),
                     config=synth.write_config(tmp_path / "cs.toml", ["apply"]))
    assert rc == 0
    r = result(report, 1, "build-y")
    assert r["description"] == "CONFIG_LIB_E=y: 1 target(s) (lib/) built, no new warnings " \
                               "(1 already there)"
    log = (tmp_path / "out" / str(r["log"])).read_text()
    assert "not counted (a file the patch does not change, compiled only with the patch's " \
           "configuration): lib/a.c:5:" in log


def test_a_bool_is_never_m_and_n_leaves_its_object_out(tmp_path: Path) -> None:
    # The 3-patch series: patch 2 adds an unused variable to lib/a.c, which
    # lib/Makefile builds for LIB_A (a bool); patch 1 changes lib/b.c (obj-y).
    tree, patches = synth.make_series(tmp_path)
    _, report = run(tmp_path, tree, "--keep-going", "--only", "build-y,build-m,build-n",
                    str(patches), config=synth.write_config(tmp_path / "cs.toml", ["apply"]))
    assert cells(report, "build-y") == ["skip", "fail", "success"]
    assert "touches no Kconfig symbol" in str(result(report, 1, "build-y")["description"])
    assert "unused variable" in str(result(report, 2, "build-y")["description"])
    assert result(report, 2, "build-m")["description"] == "CONFIG_LIB_A: a bool cannot be m"
    assert cells(report, "build-n") == ["skip", "success", "success"]


# --- build-i386, build-clang ------------------------------------------------------


ONLY32 = synth.A_C.replace("\treturn v + 1;", "#ifdef __i386__\n\tint only32;\n#endif\n"
                                                "\treturn v + 1;")


@pytest.mark.parametrize(("check", "tools", "code", "first"), [
    ("build-i386", {}, (ONLY32, "/* lib/a.c */\n" + ONLY32, ""),
     "ARCH=i386: 1 new warning(s) in 1 target(s) (lib/a.o); first: lib/a.c:6: warning: "
     "unused variable"),
    ("build-clang", {"clang": CLANG, **LLVM},
     (synth.A_C_CLEAN, synth.A_C_CLEAN_3, "/* CLANG_ONLY */\n"),
     "LLVM=1 (clang 14.0.6): 1 new warning(s) in 1 target(s) (lib/a.o); first: lib/a.c:7: "
     "warning: clang sees this [-Wclang-only]"),
])
def test_a_warning_only_the_variant_gives_is_new(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 check: str, tools: dict[str, str],
                                                 code: tuple[str, str, str], first: str) -> None:
    monkeypatch.setenv("PATH", fake_path(tmp_path, tools))
    tree, patches = synth.make_series(tmp_path, patch2_a=code[0], patch3_a=code[1],
                                      patch2_extra=code[2])
    rc, report = run(tmp_path, tree, "--keep-going", "--only", f"build,{check}", str(patches),
                     config=synth.write_config(tmp_path / "cs.toml", ["apply", "build"]))
    assert rc == 1
    assert cells(report, "build") == ["success", "success", "success"]
    assert cells(report, check) == ["success", "fail", "success"]
    assert str(result(report, 2, check)["description"]).startswith(first)
    make_var = first.split(" ")[0].rstrip(":")  # ARCH=i386, LLVM=1
    log = (tmp_path / "out" / str(result(report, 2, check)["log"])).read_text()
    assert f" {make_var} W=1 lib/a.o\n" in log  # on make's command line


@pytest.mark.parametrize(("check", "tools", "hide", "reason"), [
    ("build-i386", {"gcc": GCC_NO_M32}, (),
     "cannot run: gcc cannot compile for i386 (gcc -m32: gcc: error: unrecognized command-line "
     "option '-m32') (apt-get install gcc-multilib)"),
    ("build-clang", {}, ("clang", "ld.lld"),
     "cannot run: clang, ld.lld not installed: LLVM=1 needs clang, lld and llvm "
     "(apt-get install clang lld llvm)"),
])
def test_a_variant_without_its_compiler_cannot_run(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch, check: str,
                                                   tools: dict[str, str], hide: tuple[str, ...],
                                                   reason: str) -> None:
    monkeypatch.setenv("PATH", fake_path(tmp_path, tools, hide))
    tree, patches = synth.make_series(tmp_path)
    rc, report = run(tmp_path, tree, "--keep-going", "--only", check, str(patches),
                     config=synth.write_config(tmp_path / "cs.toml", ["apply"]))
    assert rc == 0
    assert [(r["state"], r["description"]) for r in (result(report, k, check) for k in (1, 2, 3))
            ] == [("skip", reason)] * 3


# --- selection and parsing ---------------------------------------------------------


def test_only_opts_in_but_a_default_check_must_be_enabled(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    tree, patches = synth.make_series(tmp_path)
    rc, _ = run(tmp_path, tree, "--only", "sparse", str(patches),
                config=synth.write_config(tmp_path / "cs.toml", ["apply"]))
    assert rc == 2
    assert "check 'sparse' is not enabled" in capsys.readouterr().err


def test_kconfig_entries_skip_help_text() -> None:
    text = ("if VHOST_MENU\n\nconfig VHOST_BLK\n\ttristate \"vhost-blk\"\n"
            "\tdepends on BLOCK && EVENTFD\n\thelp\n\t  if unsure, say N.\n\n"
            "\t  config is a word here.\n\nconfig VHOST_B\n\tbool\nendif\n")
    entries = ksyms.entries(text)
    assert [(e.name, e.first, e.last, e.type) for e in entries] == [
        ("VHOST_BLK", 3, 9, "tristate"), ("VHOST_B", 11, 12, "bool")]
    assert entries[0].depends == ["VHOST_MENU", "BLOCK && EVENTFD"]


def test_makefile_symbols_follow_composite_objects() -> None:
    makefile = ("obj-$(CONFIG_VHOST_BLK) += vhost_blk.o\nvhost_blk-y := blk.o \\\n"
                "\tblk_req.o # the helpers\nvhost_blk-$(CONFIG_FOO) += extra.o\n"
                "obj-y += always.o\n")
    assert ksyms.makefile_symbols(makefile, "blk_req.o") == ["VHOST_BLK"]
    assert ksyms.makefile_symbols(makefile, "extra.o") == ["FOO", "VHOST_BLK"]
    assert ksyms.makefile_symbols(makefile, "always.o") == []


def test_variant_and_coccinelle_keys(tmp_path: Path) -> None:
    from kseries.check import config
    from kseries.errors import UsageError

    (tmp_path / "i386.config").write_text("CONFIG_HIGHMEM4G=y\n")
    path = tmp_path / "c.toml"
    path.write_text('[build]\nfragments = []\n[variants]\nfragments = ["i386.config"]\n'
                    'severity = "warning"\n[coccinelle]\nseverity = "fail"\n')
    cfg = config.load(path, tmp_path)
    assert cfg.variant_fragments == (tmp_path / "i386.config",)
    assert cfg.variants.severity == "warning" and cfg.coccinelle.severity == "fail"
    first = cfg.fingerprint()
    (tmp_path / "i386.config").write_text("CONFIG_HIGHMEM64G=y\n")
    assert config.load(path, tmp_path).fingerprint() != first  # the resume cache follows it
    path.write_text('[build]\nfragments = ["i386.config"]\n')
    assert config.load(path, tmp_path).variant_fragments == (tmp_path / "i386.config",)
    path.write_text('[variants]\nseverity = "error"\n')
    with pytest.raises(UsageError, match=r'variants\.severity must be "warning" or "fail"'):
        config.load(path, tmp_path)


def test_a_config_made_for_other_kconfig_files_is_made_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Checking patch 1 again syncs .config to patch 1's Kconfig; patch 3, which
    does not touch Kconfig, must not be built with that config (patch 2 adds
    options to Kconfig)."""
    import dataclasses

    from kseries import build
    from kseries.check import config as config_mod
    from kseries.check import kbuild
    from kseries.check.context import CheckContext
    from kseries.check.model import PatchInfo
    from kseries.progress import Progress

    tree, _ = synth.make_kconfig_series(tmp_path)
    synth.git(tree, "checkout", "-q", "series")
    synth.write(tree, "lib/d.c", synth.LIB_D + "/* d */\n")
    synth.commit(tree, f"lib: d: a comment\n\nSay it.\n\n{synth.SOB}", 1_700_000_300)
    p1, p2, p3 = synth.git(tree, "rev-list", "--reverse", "base..series").split()
    (tmp_path / "f.config").write_text("CONFIG_LIB_D=y\n")
    cfg = dataclasses.replace(config_mod.load(None, tmp_path), build=config_mod.BuildConfig(
        fragments=(tmp_path / "f.config",)))
    forced: list[bool] = []
    monkeypatch.setattr(build, "configure", lambda *a, force=False, **k: forced.append(force)
                        or [])
    patch = PatchInfo(1, "p", tmp_path / "p", "lib: x", synth.AUTHOR, "", "")

    def ensure(prev: str, commit: str) -> None:
        ctx = CheckContext(patch=patch, series=[patch], tree=tree, base_commit=p1,
                           prev_commit=prev, commit=commit, is_tip=False, config=cfg,
                           log=tmp_path / "log", work=tmp_path / "work",
                           progress=Progress(quiet=True))
        ctx.build_dir.mkdir(parents=True, exist_ok=True)
        kbuild.ensure_config(ctx, force=kbuild.kconfig_changed(ctx))

    ensure(p1, p2)  # patch 2 changes Kconfig: configured
    ensure(p2, p3)  # patch 3 does not, same Kconfig: not
    ensure(p1 + "^", p1)  # patch 1 checked again (it changes Kconfig): configured
    ensure(p2, p3)  # patch 3 again: its .config was made for patch 1's Kconfig
    assert forced == [True, False, True, True]
    assert "configuring again" in (tmp_path / "log").read_text()
