"""Post check-series' results to patchwork over its REST API (api/1.2 and later).

For each patch of patchwork.json, in order: ``GET API/patches/?msgid=ID``
finds patchwork's id of the patch (the Message-Id without its angle
brackets), then ``POST API/patches/<id>/checks/`` sends each of its
checks as JSON with patchwork's documented fields: ``state`` (success,
warning, fail), ``target_url``, ``context`` and ``description``, with
``Authorization: Token ...``.  ``dry_run`` prints the requests instead.

git-pw (patchwork's own client) is not used: its api module reads its
server and token from git config into a global, ends the process
(sys.exit) on any HTTP error, and has no call for the nested
``patches/<id>/checks/`` endpoint, so a poster built on it could
neither be tested with a recorded transport nor report one line and
exit 2.  The standard library's urllib does the two requests.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from ..errors import UsageError
from .reports.patchwork import is_web_url

Transport = Callable[[str, str, "dict[str, Any] | None", dict[str, str]], tuple[int, Any]]
MIN_VERSION = (1, 2)
_VERSION = re.compile(r"/api/(\d+)\.(\d+)/?$")
_TIMEOUT = 60


def check_api(api: str) -> str:
    """``api`` without a final slash, if it is a versioned patchwork API root >= 1.2."""
    hint = "give the versioned REST root, e.g. https://patchwork.kernel.org/api/1.2"
    if not is_web_url(api):
        raise UsageError(f"--patchwork {api!r} is not an http(s) URL", hint)
    m = _VERSION.search(api)
    if not m:
        raise UsageError(f"--patchwork {api!r} has no API version (.../api/1.2)", hint)
    version = (int(m.group(1)), int(m.group(2)))
    if version < MIN_VERSION:
        raise UsageError(f"--patchwork {api!r}: api/{m.group(1)}.{m.group(2)} is older than "
                         "1.2 (no msgid filter to find patches by)", hint)
    return api.rstrip("/")


def urllib_transport(method: str, url: str, body: dict[str, Any] | None,
                     headers: dict[str, str]) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=_TIMEOUT) as rsp:
            return int(rsp.status), json.loads(rsp.read() or b"null")
    except urllib.error.HTTPError as err:
        detail = err.read(300).decode(errors="replace").strip().replace("\n", " ")
        raise UsageError(f"patchwork answered {err.code} to {method} {url}: {detail}",
                         "check the token (PATCHWORK_TOKEN) and that it may add checks") from None
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        raise UsageError(f"cannot {method} {url}: {reason}",
                         "check the --patchwork URL and the network") from None


def _msgid(value: str) -> str:
    return value.strip().strip("<>")


def post(entries: list[dict[str, Any]], api: str, token: str | None, dry_run: bool = False,
         transport: Transport | None = None, say: Callable[[str], None] = print) -> int:
    """Post every entry of patchwork.json; the number of checks posted."""
    api = check_api(api)
    send = transport or urllib_transport
    nameless = [e["patch"] for e in entries if not _msgid(str(e.get("msgid", "")))]
    if nameless:
        raise UsageError(f"patch {nameless[0]} has no Message-Id: patchwork cannot find it",
                         "check a series read from an mbox or a message-id, as patchwork "
                         "received it")
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Token {token}"
    by_msgid: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        by_msgid.setdefault(_msgid(entry["msgid"]), []).append(entry)
    posted = 0
    for msgid, checks in by_msgid.items():
        lookup = f"{api}/patches/?msgid={urllib.parse.quote(msgid, safe='')}"
        if dry_run:
            say(f"GET {lookup}")
            for entry in checks:
                say(f"POST {api}/patches/<id of <{msgid}>>/checks/ "
                    + json.dumps(entry["check"], sort_keys=True))
            continue
        _, found = send("GET", lookup, None, headers)
        ids = {p.get("id") for p in found} if isinstance(found, list) else set()
        ids.discard(None)
        if len(ids) != 1:
            what = "no patch" if not ids else f"{len(ids)} patches"
            raise UsageError(f"patchwork at {api} has {what} with Message-Id <{msgid}> "
                             f"({checks[0]['patch']})",
                             "post after patchwork has the series, or check the API URL")
        pid = ids.pop()
        for entry in checks:
            send("POST", f"{api}/patches/{pid}/checks/", dict(entry["check"]), headers)
            posted += 1
    return posted
