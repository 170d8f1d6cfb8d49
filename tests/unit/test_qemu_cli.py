"""``kseries qemu``: user errors are one line and a hint, exit status 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from kseries import cli


def user_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    assert code == 2, err
    assert out == ""
    assert "Traceback" not in err
    problem, hint = err.splitlines()
    assert problem.startswith("kseries: error: ")
    assert hint.startswith("kseries: hint: ")
    return problem, hint


def test_fetch_missing_manifest(capsys: pytest.CaptureFixture[str]) -> None:
    problem, hint = user_error(["qemu", "fetch", "--manifest", "/nonexistent.toml"], capsys)
    assert "QEMU manifest /nonexistent.toml does not exist" in problem
    assert "--manifest PATH" in hint


def test_build_bad_jobs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    problem, _ = user_error(["qemu", "build", "--jobs", "0", "--work", str(tmp_path)], capsys)
    assert "--jobs 0" in problem
    assert not (tmp_path / "qemu").exists()


def test_qemu_needs_a_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["qemu"])
    assert exc.value.code == 2
    assert "fetch" in capsys.readouterr().err
