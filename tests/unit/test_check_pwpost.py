"""Posting check results to patchwork's REST API (api/1.2), through a recorded transport."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_check_reports import report  # noqa: F401  (the fixture)

from kseries.check import cli, pwpost
from kseries.check.model import SeriesReport
from kseries.check.reports import patchwork
from kseries.errors import UsageError

API = "https://patchwork.example.org/api/1.2"
# Patchwork's documented Check fields (REST API 1.2, POST /api/patches/{id}/checks/).
CHECK_FIELDS = {"state", "target_url", "context", "description"}
STATES = {"pending", "success", "warning", "fail"}


class Recorder:
    """A patchwork that knows two patches by Message-Id and records every request."""

    def __init__(self, known: dict[str, int]) -> None:
        self.known = known
        self.requests: list[tuple[str, str, dict[str, Any] | None, dict[str, str]]] = []

    def __call__(self, method: str, url: str, body: dict[str, Any] | None,
                 headers: dict[str, str]) -> tuple[int, Any]:
        self.requests.append((method, url, body, headers))
        if method == "GET":
            assert url.startswith(f"{API}/patches/?msgid=")
            msgid = url.split("msgid=", 1)[1]
            from urllib.parse import unquote
            pid = self.known.get(unquote(msgid))
            return 200, ([{"id": pid, "msgid": f"<{unquote(msgid)}>"}] if pid else [])
        assert method == "POST"
        return 201, {"id": len(self.requests), **(body or {})}


def entries(report: SeriesReport, tmp_path: Path) -> list[dict[str, Any]]:  # noqa: F811
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "02-build.log").write_text("make ...\nlib/x.c:3: error: x undeclared\n"
                                       "lib/x.c:4: warning: unused variable 'y'\n"
                                       "lib/x.c:9: error: expected ';'\n")
    return patchwork.to_list(report, "https://ci.example.org/run/7", tmp_path)


def test_every_finding_is_in_the_description(report: SeriesReport,  # noqa: F811
                                             tmp_path: Path) -> None:
    build = next(e for e in entries(report, tmp_path)
                 if e["check"]["context"] == "check-series-build" and e["patch"] == "0002-x.patch")
    text = build["check"]["description"]
    assert text.splitlines() == ["error: x undeclared", "lib/x.c:3: error: x undeclared",
                                 "lib/x.c:4: warning: unused variable 'y'",
                                 "lib/x.c:9: error: expected ';'"]


def test_a_long_description_is_cut_with_a_count(report: SeriesReport,  # noqa: F811
                                                tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "02-build.log").write_text("".join(f"f.c:{n}: warning: w{n} {'x' * 60}\n"
                                               for n in range(100)))
    build = next(e for e in patchwork.to_list(report, None, tmp_path)
                 if e["check"]["context"] == "check-series-build" and e["patch"] == "0002-x.patch")
    text = build["check"]["description"]
    assert len(text) <= patchwork.DESCRIPTION_LIMIT
    shown = len(text.splitlines()) - 2  # the one-line description and the count
    assert text.endswith(f"(+{100 - shown} more in the log)")


def test_post_looks_up_each_patch_and_posts_its_checks(report: SeriesReport,  # noqa: F811
                                                       tmp_path: Path) -> None:
    fake = Recorder({"1@example.org": 11, "2@example.org": 12})
    posted = pwpost.post(entries(report, tmp_path), API, "s3cret", transport=fake)
    gets = [r for r in fake.requests if r[0] == "GET"]
    posts = [r for r in fake.requests if r[0] == "POST"]
    assert [g[1] for g in gets] == [f"{API}/patches/?msgid=1%40example.org",
                                    f"{API}/patches/?msgid=2%40example.org"]
    assert posted == len(posts) == 6  # 2 + 4: the skip of patch 1's kunit is not posted
    for _, url, body, headers in posts:
        assert url in (f"{API}/patches/11/checks/", f"{API}/patches/12/checks/")
        assert body is not None and set(body) <= CHECK_FIELDS and body["state"] in STATES
        assert body["context"].startswith("check-series-")
        assert body["target_url"].startswith("https://ci.example.org/run/7/")
        assert headers["Authorization"] == "Token s3cret"
        assert headers["Content-Type"] == "application/json"
    assert {(u, b["context"]) for _, u, b, _ in posts if b} >= {
        (f"{API}/patches/12/checks/", "check-series-build"),
        (f"{API}/patches/12/checks/", "check-series-kunit")}


def test_dry_run_prints_the_requests_and_sends_nothing(report: SeriesReport,  # noqa: F811
                                                       tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    def no_network(*args: object) -> tuple[int, Any]:
        raise AssertionError("a dry run sent a request")

    assert pwpost.post(entries(report, tmp_path), API, None, dry_run=True,
                       transport=no_network) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"GET {API}/patches/?msgid=1%40example.org"
    prefix = f"POST {API}/patches/<id of <2@example.org>>/checks/ "
    bodies = [json.loads(line[len(prefix):]) for line in out if line.startswith(prefix)]
    assert [b["context"] for b in bodies] == ["check-series-apply", "check-series-build",
                                              "check-series-kunit", "check-series-diffstat"]
    assert bodies[1]["state"] == "fail" and "lib/x.c:9: error" in bodies[1]["description"]


def test_a_patch_patchwork_does_not_know_is_one_error(report: SeriesReport,  # noqa: F811
                                                      tmp_path: Path) -> None:
    fake = Recorder({"1@example.org": 11})
    with pytest.raises(UsageError) as err:
        pwpost.post(entries(report, tmp_path), API, "t", transport=fake)
    assert err.value.message == ("patchwork at https://patchwork.example.org/api/1.2 has no "
                                 "patch with Message-Id <2@example.org> (0002-x.patch)")
    assert [r[1] for r in fake.requests if r[0] == "POST"] == [
        f"{API}/patches/11/checks/"] * 2  # patch 1 was posted before


@pytest.mark.parametrize(("api", "words"), [
    ("ftp://patchwork.example.org/api/1.2", "not an http(s) URL"),
    ("https://patchwork.example.org/", "no API version"),
    ("https://patchwork.example.org/api/1.1", "api/1.1 is older than 1.2"),
])
def test_bad_api_urls(api: str, words: str) -> None:
    with pytest.raises(UsageError, match=words.replace("(", r"\(").replace(")", r"\)")):
        pwpost.check_api(api)


def test_cli_wants_a_token_unless_dry_run(monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("PATCHWORK_TOKEN", raising=False)
    assert cli.main(["--patchwork", API, "--only", "apply"]) == 2
    err = capsys.readouterr().err
    assert "PATCHWORK_TOKEN" in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if "error:" in line]) == 1


def test_posting_over_http_to_a_local_fake_patchwork(report: SeriesReport,  # noqa: F811
                                                     tmp_path: Path) -> None:
    """The urllib transport against a local server speaking patchwork's two endpoints."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    seen: list[tuple[str, str, Any, str | None]] = []

    class Patchwork(BaseHTTPRequestHandler):
        def _answer(self, code: int, data: object) -> None:
            body = json.dumps(data).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            seen.append(("GET", self.path, None, self.headers.get("Authorization")))
            n = 1 if "msgid=1%40" in self.path else 2
            self._answer(200, [{"id": 100 + n}])

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append(("POST", self.path, body, self.headers.get("Authorization")))
            if body["state"] not in STATES or not set(body) <= CHECK_FIELDS:
                self._answer(400, {"state": ["invalid"]})
            else:
                self._answer(201, body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Patchwork)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        api = f"http://127.0.0.1:{server.server_port}/api/1.3/"
        assert pwpost.post(entries(report, tmp_path), api, "tok") == 6
    finally:
        server.shutdown()
        server.server_close()
    assert [(m, p) for m, p, _, _ in seen][:3] == [
        ("GET", "/api/1.3/patches/?msgid=1%40example.org"),
        ("POST", "/api/1.3/patches/101/checks/"), ("POST", "/api/1.3/patches/101/checks/")]
    assert all(auth == "Token tok" for _, _, _, auth in seen)


def test_an_http_error_is_one_line(tmp_path: Path) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Refusing(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(403)
            self.end_headers()
            self.wfile.write(b'{"detail": "Invalid token."}')

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        api = f"http://127.0.0.1:{server.server_port}/api/1.2"
        entry = {"patch": "p", "msgid": "<a@b>", "check": {"state": "success", "context": "c"}}
        with pytest.raises(UsageError) as err:
            pwpost.post([entry], api, "bad")
    finally:
        server.shutdown()
        server.server_close()
    assert err.value.message == (f"patchwork answered 403 to GET {api}/patches/?msgid=a%40b: "
                                 '{"detail": "Invalid token."}')
