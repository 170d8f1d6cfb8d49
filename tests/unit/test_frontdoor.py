"""One front door: `kseries check` and `kseries submit` are check-series and
submit-series, one main() wrapper maps an error's class to the exit status."""

from __future__ import annotations

import argparse
import io
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kseries import cli, frontdoor
from kseries.check import cli as check_cli
from kseries.errors import InfraError, KseriesError, UsageError
from kseries.submit import cli as submit_cli


def _subparser(name: str) -> argparse.ArgumentParser:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    found = sub.choices[name]
    assert isinstance(found, argparse.ArgumentParser)
    return found


def _options(parser: argparse.ArgumentParser) -> list[tuple[tuple[str, ...], object, object]]:
    """Each argument's names, default and type/action: what the command accepts."""
    return sorted((tuple(a.option_strings) or (a.dest,), a.default,
                   getattr(a.type, "__name__", a.type) or type(a).__name__)
                  for a in parser._actions if a.dest != "help")


@pytest.mark.parametrize(("name", "alias"), [("check", check_cli.build_parser()),
                                             ("submit", submit_cli.build_parser())])
def test_the_subcommands_take_the_aliases_options(name: str,
                                                  alias: argparse.ArgumentParser) -> None:
    assert _options(_subparser(name)) == _options(alias)


def test_submit_trailers_takes_submit_series_trailers_options() -> None:
    assert _options(submit_cli.trailers_parser("kseries submit trailers")) == \
        _options(submit_cli.trailers_parser())


def test_kseries_check_lists_the_same_checks(capsys: pytest.CaptureFixture[str]) -> None:
    assert check_cli.main(["--list-checks"]) == 0
    alias = capsys.readouterr()
    assert cli.main(["check", "--list-checks"]) == 0
    assert capsys.readouterr() == alias
    assert "checkpatch" in alias.out


@pytest.mark.parametrize("argv", [["--only", "apply", "--skip", "apply"],
                                  ["--skip", "no-such-check"]])
def test_a_usage_error_exits_2_through_either_door(
        argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert check_cli.main(argv) == 2
    alias = capsys.readouterr().err
    assert cli.main(["check", *argv]) == 2
    sub = capsys.readouterr().err
    assert alias.startswith("check-series: error: ") and "Traceback" not in alias
    assert sub == alias.replace("check-series: ", "kseries: ")


def test_submit_trailers_without_the_mbox_file(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "replies.mbox")
    assert submit_cli.main(["trailers", missing]) == 2
    alias = capsys.readouterr().err
    assert cli.main(["submit", "trailers", missing]) == 2
    assert capsys.readouterr().err == alias.replace("submit-series: ", "kseries: ")
    assert f"mbox {missing} does not exist" in alias


def _raises(exc: BaseException) -> frontdoor.Command:
    def func(args: argparse.Namespace) -> int:
        raise exc
    return func


@pytest.mark.parametrize(("exc", "status"), [
    (KseriesError("the build failed", "see the log"), 1),
    (UsageError("no such tree", "give --tree"), 2),
    (InfraError("QEMU died", "run again"), 2),
    (KeyboardInterrupt(), 130),
])
def test_one_mapping_from_error_class_to_exit_status(
        exc: BaseException, status: int, capsys: pytest.CaptureFixture[str]) -> None:
    before = signal.getsignal(signal.SIGTERM)
    assert frontdoor.run("tool", _raises(exc), argparse.Namespace()) == status
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if isinstance(exc, KseriesError):
        assert err == f"tool: error: {exc.message}\ntool: hint: {exc.hint}\n"
    else:
        assert err == "tool: interrupted\n"
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_plain_kseries_error_under_check_series_is_a_failure_not_a_usage_error(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """check-series used to exit 2 for every KseriesError; it follows the one mapping now."""
    monkeypatch.setattr(check_cli, "run", lambda args, progress: (_ for _ in ()).throw(
        KseriesError("kunit.py produced no results", "see the log")))
    assert check_cli.main(["-q"]) == 1
    assert "check-series: error: kunit.py produced no results" in capsys.readouterr().err


def test_sigterm_during_a_command_is_an_interrupt(capsys: pytest.CaptureFixture[str]) -> None:
    def func(args: argparse.Namespace) -> int:
        signal.raise_signal(signal.SIGTERM)
        return 0
    assert frontdoor.run("tool", func, argparse.Namespace()) == 130
    assert capsys.readouterr().err == "tool: interrupted\n"


def test_a_reader_gone_is_exit_141_without_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    stdout = io.StringIO()
    monkeypatch.setattr(sys, "stdout", stdout)
    dup2: list[int] = []
    monkeypatch.setattr(frontdoor.os, "dup2", lambda fd, to: dup2.append(to))
    monkeypatch.setattr(stdout, "fileno", lambda: 1)
    assert frontdoor.run("tool", _raises(BrokenPipeError()), argparse.Namespace()) == 141
    assert dup2 == [1]


def test_help_does_not_load_the_commands() -> None:
    """`kseries --help` stays fast: the command modules are imported when a command runs."""
    code = ("import sys; from kseries import cli; cli.build_parser()\n"
            "heavy = ['jinja2', 'git', 'matplotlib', 'kseries.boot', 'kseries.pipeline',\n"
            "         'kseries.check.engine', 'kseries.check.reports', 'kseries.submit.b4run',\n"
            "         'kseries.bench.runner', 'kseries.qemu.build', 'kseries.l2.image']\n"
            "print(' '.join(m for m in heavy if m in sys.modules))\n")
    tools = Path(cli.__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env={"PYTHONPATH": str(tools)})
    assert proc.stdout.strip() == ""
