"""A series given as a message-id or a lore/patchwork URL, fetched offline by b4 am."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "check"))
import synth

from kseries.check import cli, thread
from kseries.errors import UsageError

THREAD = Path(__file__).resolve().parents[1] / "fixtures" / "check" / "thread" / "thread.mbox"


@pytest.mark.parametrize(("spec", "msgid"), [
    ("v2-0@example.org", "v2-0@example.org"),
    ("<v2-0@example.org>", "v2-0@example.org"),
    ("https://lore.kernel.org/all/v2-0@example.org/", "v2-0@example.org"),
    ("https://lore.kernel.org/kvm/v2-0%40example.org/T/#t", "v2-0@example.org"),
    ("https://lore.kernel.org/r/v2-0@example.org", "v2-0@example.org"),
    ("https://patch.msgid.link/v2-0@example.org", "v2-0@example.org"),
    ("https://patchwork.kernel.org/project/kvm/patch/v2-0@example.org/", "v2-0@example.org"),
    ("v6.12..HEAD", None),
    ("HEAD@{1}..HEAD", None),
    ("patches", None),
])
def test_what_names_a_message(spec: str, msgid: str | None) -> None:
    assert thread.msgid_of(spec) == msgid


def test_a_url_without_a_message_id_is_one_error() -> None:
    with pytest.raises(UsageError) as err:
        thread.msgid_of("https://patchwork.kernel.org/project/kvm/patch/13456789/")
    assert "names no Message-Id" in err.value.message
    assert "message-id" in err.value.hint


def test_b4_am_takes_the_newest_version_in_order_with_the_review_trailer(
        tmp_path: Path) -> None:
    got = thread.fetch("v2-0@example.org", THREAD, tmp_path / "w")
    assert [p.subject for p in got.patches] == [
        "lib: b: add zero", "lib: a: add a counter", "lib: a: document the file"]
    assert [p.message_id for p in got.patches] == [
        "<v2-1@example.org>", "<v2-2@example.org>", "<v2-3@example.org>"]
    assert "Reviewed-by: Rhea Viewer <r@example.org>" in got.patches[1].path.read_text()
    assert got.source == f"<v2-0@example.org> (b4 am -m {THREAD})"
    assert any("v2" in n for n in got.notes)
    assert any("Reviewed-by: Rhea Viewer" in n for n in got.notes)


def test_a_message_id_b4_cannot_find_in_the_mbox(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as err:
        thread.fetch("nowhere@example.org", THREAD, tmp_path / "w")
    assert "<nowhere@example.org>" in err.value.message and "\n" not in err.value.message


def test_check_series_on_a_message_id(tmp_path: Path) -> None:
    tree, _ = synth.make_series(tmp_path)
    args = synth.cli_args(tmp_path, tree, "--only", "apply,hygiene", "--thread", str(THREAD),
                          "https://lore.kernel.org/all/v2-0@example.org/")
    assert cli.main(args) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [p["message_id"] for p in report["patches"]] == [
        "<v2-1@example.org>", "<v2-2@example.org>", "<v2-3@example.org>"]
    assert [p["results"]["apply"]["state"] for p in report["patches"]] == ["success"] * 3


def test_a_message_id_without_a_local_thread_is_exit_2(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    tree, _ = synth.make_series(tmp_path)
    assert cli.main(synth.cli_args(tmp_path, tree, "v2-0@example.org")) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("check-series:")]
    assert lines[0] == ("check-series: error: no local copy of the thread of "
                        "<v2-0@example.org>, and no network to fetch it from")
    assert "--thread" in lines[1]
