"""Commit hygiene rules, diagnostics baselines, checkpatch totals, config, plug-ins."""

from __future__ import annotations

from pathlib import Path

import pytest

from kseries.check import cli, config, diagnostics, registry
from kseries.check.checks import checkpatch, hygiene
from kseries.check.config import HygieneConfig
from kseries.check.model import State
from kseries.errors import UsageError

AUTHOR = "Jane Dev <jane@example.org>"
SOB = "Signed-off-by: Jane Dev <jane@example.org>"


def problems(subject: str, message: str, author: str = AUTHOR) -> list[tuple[State, str]]:
    found = hygiene.review(subject, author, message, HygieneConfig())
    return [(p.state, p.text) for p in found]


def test_good_message_has_no_problems() -> None:
    msg = ("Explain why.\n\nFixes: 0123456789ab (\"lib: old bug\")\n"
           "Closes: https://bugzilla.example.org/1\n"
           "Link: https://lore.kernel.org/r/1@example.org\n" + SOB + "\n")
    assert problems("lib: fix the thing", msg) == []


def test_signoff_must_come_from_the_author() -> None:
    got = problems("lib: x", "Why.\n\nSigned-off-by: Other <other@example.org>\n")
    assert got[0] == (State.FAIL, "no Signed-off-by from the author <jane@example.org>")
    assert problems("lib: x", "Why.\n")[0] == (State.FAIL, "no Signed-off-by tag")
    renamed = problems("lib: x", "Why.\n\nSigned-off-by: J. Dev <JANE@example.org>\n")
    assert renamed[0][0] == State.WARNING and "name differs" in renamed[0][1]


def test_subject_rules() -> None:
    msg = f"Why.\n\n{SOB}\n"
    long = "lib: " + "x" * 80
    assert problems(long, msg) == [(State.WARNING, "subject is 85 characters (at most 75)")]
    assert problems("fix the thing", msg)[0][1].startswith("subject has no 'subsystem: '")
    assert problems("net: sched: fix it.", msg) == [(State.WARNING,
                                                     "subject ends with a period")]
    assert problems("", msg)[0] == (State.FAIL, "empty subject")


def test_fixes_link_whitespace_and_empty_body() -> None:
    bad_fixes = problems("lib: x", f"Why.\n\nFixes: 0123abc\n{SOB}\n")
    assert bad_fixes[0][0] == State.FAIL and "malformed Fixes:" in bad_fixes[0][1]
    link = problems("lib: x", f"Why.\n\nLink: see the list\n{SOB}\n")
    assert link == [(State.WARNING, "line 3: Link: is not a URL: 'see the list'")]
    ws = problems("lib: x", f"Why. \n\n{SOB}\n")
    assert ws == [(State.WARNING, "trailing whitespace on message line(s) 1")]
    assert problems("lib: x", f"{SOB}\n") == [(State.WARNING,
                                                "no commit description, only tags")]


def test_diagnostics_ignore_line_numbers_and_count_duplicates(tmp_path: Path) -> None:
    before = diagnostics.parse(
        f"{tmp_path}/lib/a.c:5:13: warning: unused variable 'x' [-Wunused-variable]\n"
        "lib/a.c: In function 'f':\n", [tmp_path])
    after = diagnostics.parse(
        "../lib/a.c:9:13: warning: unused variable 'x' [-Wunused-variable]\n"
        "lib/a.c:20:13: warning: unused variable 'x' [-Wunused-variable]\n"
        "lib/b.c:3: warning: symbol 'y' was not declared. Should it be static?\n", [tmp_path])
    assert [d.file for d in before] == ["lib/a.c"]
    new = diagnostics.new_since(before, after)
    assert [str(d) for d in new] == [
        "lib/a.c:20: warning: unused variable 'x' [-Wunused-variable]",
        "lib/b.c:3: warning: symbol 'y' was not declared. Should it be static?"]


def test_diagnostics_normalise_embedded_line_numbers() -> None:
    a = diagnostics.parse("x.c:3:1: error: redefinition of 'f' (first at x.c:1:5)\n")
    b = diagnostics.parse("x.c:9:1: error: redefinition of 'f' (first at x.c:4:5)\n")
    assert diagnostics.new_since(a, b) == []


def test_checkpatch_totals() -> None:
    assert checkpatch.summarise("total: 1 errors, 2 warnings, 3 checks, 40 lines checked") \
        == (1, 2, 3)
    assert checkpatch.summarise("total: 0 errors, 1 warnings, 12 lines checked") == (0, 1, 0)
    assert checkpatch.summarise("Can't open file") is None


def test_every_check_is_discovered_and_described() -> None:
    found = registry.discover()
    assert set(found) >= {"apply", "checkpatch", "hygiene", "build", "sparse", "kerneldoc",
                          "kunit", "boot", "diffstat", "range-diff"}
    assert all(c.description for c in found.values())


def test_list_checks(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--list-checks"]) == 0
    out = capsys.readouterr().out
    assert "checkpatch" in out and "[per patch]" in out and "range-diff" in out


def test_project_config_loads() -> None:
    root = Path(__file__).resolve().parents[2]
    cfg = config.load(root / config.FILE_NAME, root)
    assert cfg.per_patch[0] == "apply"
    assert cfg.kunit.kunitconfig is not None and cfg.kunit.kunitconfig.is_file()
    assert all(f.is_file() for f in cfg.build.fragments)
    assert "boot" in cfg.tip and "boot" not in cfg.per_patch
    for name in (*cfg.per_patch, *cfg.tip):
        assert name in registry.discover()


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "c.toml"
    bad.write_text("[build]\nfragmnets = []\n")
    with pytest.raises(UsageError, match=r"unknown key.*fragmnets"):
        config.load(bad, tmp_path)
    bad.write_text("[build]\nseverity = \"fatal\"\n")
    with pytest.raises(UsageError, match="severity must be"):
        config.load(bad, tmp_path)
    bad.write_text("[build]\nmake_flags = \"W=1\"\n")
    with pytest.raises(UsageError) as err:
        config.load(bad, tmp_path)
    assert err.value.message == (f'config {bad}: build.make_flags must be a list of strings, '
                                 'not "W=1"')
    assert err.value.hint == ('write make_flags = ["...", ...]; the keys are in '
                              "Documentation/check-series.md")
    bad.write_text("[kunit]\narch = \"arm64\"\n")
    with pytest.raises(UsageError, match=r'kunit\.arch must be "um" or "x86_64", not "arm64"'):
        config.load(bad, tmp_path)
    bad.write_text("[hygiene]\nsubject_max = \"75\"\n")
    with pytest.raises(UsageError, match=r'hygiene\.subject_max must be an integer, not "75"'):
        config.load(bad, tmp_path)
    bad.write_text("[checks\n")
    with pytest.raises(UsageError, match="not valid TOML"):
        config.load(bad, tmp_path)
    with pytest.raises(UsageError, match="does not exist"):
        config.load(tmp_path / "missing.toml", tmp_path)


def test_config_fingerprint_follows_referenced_files(tmp_path: Path) -> None:
    frag = tmp_path / "a.config"
    frag.write_text("CONFIG_A=y\n")
    path = tmp_path / "c.toml"
    path.write_text('[build]\nfragments = ["a.config"]\n')
    first = config.load(path, tmp_path).fingerprint()
    frag.write_text("CONFIG_A=n\n")
    assert config.load(path, tmp_path).fingerprint() != first


def test_header_users_of_a_later_patch_are_not_build_targets(tmp_path: Path) -> None:
    """A build dir of the tip names drivers/x/new.o as a user of a header
    that patch 1 changes; at patch 1 new.c does not exist yet."""
    from kseries.check import kbuild

    out = tmp_path / "out" / "drivers" / "x"
    out.mkdir(parents=True)
    for name in ("old", "new"):
        (out / f".{name}.o.cmd").write_text(f"deps_drivers/x/{name}.o := \\\n"
                                            "  include/uapi/linux/vhost.h \\\n")
    tree = tmp_path / "tree" / "drivers" / "x"
    tree.mkdir(parents=True)
    (tree / "old.c").write_text("int x;\n")
    users = kbuild.header_users(tmp_path / "out", "include/uapi/linux/vhost.h", 40)
    assert users == ["drivers/x/new.o", "drivers/x/old.o"]
    assert [u for u in users if kbuild._source_in_tree(tmp_path / "tree", u)] == [
        "drivers/x/old.o"]


def test_a_closed_pipe_is_not_a_traceback() -> None:
    """`check-series --list-checks | head -1`: the reader leaves early."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "tools" / "check-series"
    for _ in range(5):  # the race is the reader closing before the writer is done
        proc = subprocess.Popen([sys.executable, str(script), "--list-checks"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.read(1)
        proc.stdout.close()
        err = proc.stderr.read().decode()
        proc.wait()
        assert "Traceback" not in err, err
