"""kseries.cli.main: user errors end in two lines and exit status 2."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kseries import cli


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(code: int, out: str, err: str, problem: str, hint: str) -> None:
    assert code == 2, err
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.startswith("kseries: ")]
    assert len(lines) == 2, err
    assert lines[0].startswith("kseries: error: ")
    assert problem in lines[0]
    assert lines[1].startswith("kseries: hint: ")
    assert hint in lines[1]


def test_apply_missing_tree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["apply", "--tree", "/nonexistent", "--work", str(tmp_path)],
                             capsys)
    assert_user_error(code, out, err, "kernel tree /nonexistent does not exist",
                      "kseries tree fetch")
    assert out == ""


def test_kunit_tree_not_git(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = tmp_path / "linux"
    tree.mkdir()
    code, out, err = run_cli(["kunit", "--tree", str(tree), "--work", str(tmp_path / "w")],
                             capsys)
    assert_user_error(code, out, err, f"{tree} is not a git repository", "--tree PATH")
    assert not (tmp_path / "w").exists()


def test_fetch_missing_manifest(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["tree", "fetch", "--manifest", "/nonexistent.toml"], capsys)
    assert_user_error(code, out, err, "manifest /nonexistent.toml does not exist",
                      "--manifest PATH")


def test_run_without_kernel_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["run", "--outdir", str(tmp_path), "--work", str(tmp_path / "w"),
                              "--", "true"], capsys)
    assert_user_error(code, out, err, f"no kernel image at {tmp_path}/arch/x86/boot/bzImage",
                      "kseries build")
    assert not (tmp_path / "w").exists()


def test_run_without_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["run", "--outdir", str(tmp_path), "--work", str(tmp_path)],
                             capsys)
    assert_user_error(code, out, err, "no command given", "kseries run -- uname -r")


def test_bad_manifest_is_a_user_error(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "manifest.toml"
    bad.write_text("[base]\n")
    code, out, err = run_cli(["export", "--manifest", str(bad)], capsys)
    assert_user_error(code, out, err, "base.kernel_version is missing (a non-empty string)",
                      "add kernel_version = \"...\" in [base]")


def test_unknown_command_is_argparse_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["frobnicate"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_run_command_words_after_double_dash() -> None:
    parser = cli.build_parser()
    args = parser.parse_args(["run", "--cpus", "4", "--", "uname", "-r"])
    assert args.cpus == 4
    assert args.cmd == ["--", "uname", "-r"]  # cmd_run() drops the "--"


def _image(outdir: Path, mtime: float) -> None:
    image = outdir / "arch" / "x86" / "boot" / "bzImage"
    image.parent.mkdir(parents=True)
    image.write_bytes(b"kernel")
    os.utime(image, (mtime, mtime))


def test_run_boots_the_newer_build(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`kseries build` (the developer's tree) and the main job (patches/) build into
    directories of their own; `kseries run` boots the newer one and says so."""
    from kseries import paths

    lay = paths.layout(work=tmp_path)
    assert lay.debug_build != lay.dev_build("x86_64-debug")
    assert cli.newest_build(lay) == lay.debug_build  # nothing built: boot.run names the fix
    _image(lay.debug_build, 1000)
    assert cli.newest_build(lay) == lay.debug_build
    _image(lay.dev_build("x86_64-debug"), 2000)
    assert cli.newest_build(lay) == lay.dev_build("x86_64-debug")
    assert "booting the newer build" in capsys.readouterr().err
