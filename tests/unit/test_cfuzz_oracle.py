"""vblk-fuzz's C oracle against tools/vblk/oracle.py, the single source of truth.

tools/bench/vblk-fuzz.c decides in C what the device owes each chain it
sends (status, used length, what a successful request writes, where a
read starts).  Its ``--emit N`` mode needs no device: it prints each
generated chain (readable bytes as hex, writable lengths), the limits it
assumed and its own answer, one JSON line per chain.  This test compiles
the tool with gcc, emits 20,000 chains over several limits (512 and
4096-byte blocks, read-only, discard and write zeroes offered or not,
small capacities and segment limits) and requires ``oracle.expect()`` to
give the same answer, down to the reason, for every one.  It also
requires every rule of the oracle to have fired at least once, so that a
rule the generator never reaches cannot hide a disagreement.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from vblk import oracle

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [ROOT / "tools" / "bench" / "vblk-fuzz.c", ROOT / "tools" / "bench" / "vring.c"]
CFLAGS = ["-O2", "-Wall", "-Wextra", "-Werror", "-pthread"]

# (name, seed, chains, vblk-fuzz options giving the limits); 20,000 chains in all.
CASES = [
    ("512-byte blocks, discard and write zeroes", 11, 5000,
     ["--capacity", "131072", "--lbs", "512", "--max-discard-sectors", "1024",
      "--max-discard-seg", "256", "--max-wz-sectors", "2048", "--max-wz-seg", "256"]),
    ("4096-byte blocks", 12, 5000,
     ["--capacity", "131072", "--lbs", "4096", "--max-discard-sectors", "2048",
      "--max-discard-seg", "256", "--max-wz-sectors", "65536", "--max-wz-seg", "256"]),
    ("read-only", 13, 3000,
     ["--capacity", "131072", "--read-only", "--max-discard-sectors", "1024",
      "--max-wz-sectors", "2048"]),
    ("neither discard nor write zeroes offered", 14, 3000,
     ["--capacity", "131072", "--max-discard-sectors", "1024", "--max-wz-sectors", "2048",
      "--no-discard", "--no-write-zeroes"]),
    ("small capacity, few segments", 15, 2000,
     ["--capacity", "72", "--lbs", "512", "--max-discard-sectors", "16",
      "--max-discard-seg", "3", "--max-wz-sectors", "24", "--max-wz-seg", "2"]),
    ("small capacity, 4096-byte blocks", 16, 2000,
     ["--capacity", "200", "--lbs", "4096", "--max-discard-sectors", "64",
      "--max-discard-seg", "1", "--max-wz-sectors", "8", "--max-wz-seg", "300"]),
]

# Every rule of oracle.expect() and oracle._dwz(), by the start of its reason.
RULES = ["no writable byte", "-byte header", "read-error", "read-ok", "write-error",
         "write-ok", "flush", "get_id-error", "get_id-ok", "not offered",
         "writable data or not whole segments", "too many segments", "flags",
         "on a read-only backend", "too big or misaligned", "past the capacity", "dwz-ok",
         "type"]


def _rule(why: str, status: int | None) -> str:
    if why.startswith("read "):
        return "read-ok" if status == oracle.OK else "read-error"
    if why.startswith("write "):
        return "write-ok" if status == oracle.OK else "write-error"
    if why.startswith("get_id"):
        return "get_id-ok" if status == oracle.OK else "get_id-error"
    if why in ("discard", "write zeroes"):
        return "dwz-ok"
    for rule in RULES:
        if rule in why:
            return rule
    return why


@pytest.fixture(scope="module")
def vblk_fuzz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed: vblk-fuzz.c cannot be built (apt-get install gcc)")
    out = tmp_path_factory.mktemp("cfuzz") / "vblk-fuzz"
    proc = subprocess.run([gcc, *CFLAGS, "-o", str(out), *map(str, SOURCES)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert not proc.stderr.strip(), f"gcc warned:\n{proc.stderr}"
    return out


def _limits(d: dict[str, object]) -> oracle.Limits:
    return oracle.Limits(capacity=int(str(d["capacity"])), lbs=int(str(d["lbs"])),
                         max_discard_sectors=int(str(d["max_discard_sectors"])),
                         max_discard_seg=int(str(d["max_discard_seg"])),
                         max_write_zeroes_sectors=int(str(d["max_write_zeroes_sectors"])),
                         max_write_zeroes_seg=int(str(d["max_write_zeroes_seg"])),
                         read_only=bool(d["read_only"]))


def _disagreement(line: str) -> tuple[str | None, str]:
    """(what differs or None, the rule) for one emitted chain."""
    chain = json.loads(line)
    lim = _limits(chain["limits"])
    bufs = [(bytes.fromhex(b["hex"]), 0, False, 0) if not b["w"] else (b"", b["len"], True, 0)
            for b in chain["bufs"]]
    readable = b"".join(data for data, _, write, _ in bufs if not write)
    e = oracle.expect(lim, b"", bufs)
    rule = _rule(e.why, e.status)
    got = (chain["status"], chain["used_len"], chain["why"], chain["read_sector"])
    want = (e.status, e.used_len, e.why, e.read_sector)
    if got != want:
        return f"C says {got}, oracle.expect {want}", rule
    if len(chain["writes"]) != len(e.writes):
        return f"C writes {chain['writes']}, oracle.expect {len(e.writes)} ranges", rule
    for (sector, nbytes, kind, off), (w_sector, w_nbytes, w_data) in zip(
            chain["writes"], e.writes, strict=True):
        if (sector, nbytes) != (w_sector, w_nbytes):
            return f"C writes {nbytes}@{sector}, oracle.expect {w_nbytes}@{w_sector}", rule
        data = {"data": readable[off:off + nbytes], "zeroes": bytes(nbytes),
                "undefined": None}[kind]
        if data != w_data:
            return f"C writes {kind} at offset {off}, oracle.expect other data", rule
    return None, rule


@pytest.fixture(scope="module")
def results(vblk_fuzz: Path) -> dict[str, tuple[int, list[str], Counter[str]]]:
    """Per case: chains emitted, disagreements, and how often each rule decided."""
    out = {}
    for name, seed, count, args in CASES:
        proc = subprocess.run([str(vblk_fuzz), "--emit", str(count), "--seed", str(seed),
                               "--max-sectors", "64", *args],
                              capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr
        bad = []
        rules: Counter[str] = Counter()
        lines = proc.stdout.splitlines()
        for line in lines:
            problem, rule = _disagreement(line)
            rules[rule] += 1
            if problem:
                bad.append(f"chain {json.loads(line)['index']}: {problem}")
        out[name] = (len(lines), bad, rules)
    return out


@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_c_oracle_agrees(results: dict[str, tuple[int, list[str], Counter[str]]],
                         name: str) -> None:
    count, bad, _ = results[name]
    assert count == next(c[2] for c in CASES if c[0] == name)
    assert not bad, f"{len(bad)} of {count} chains ({name}):\n" + "\n".join(bad[:10])


def test_every_rule_fired(results: dict[str, tuple[int, list[str], Counter[str]]]) -> None:
    """Each rule of the oracle decided some chain: none is left unchecked."""
    seen: Counter[str] = Counter()
    for _, _, rules in results.values():
        seen.update(rules)
    missing = [r for r in RULES if not seen[r]]
    assert not missing, f"rules no emitted chain reached: {missing} (seen: {dict(seen)})"
    assert sum(seen.values()) == 20000


# --fault: what vblk-fuzz expects from a backend that fails on purpose (fault_adjust()),
# restated here: only requests the oracle answers OK that reach the backend with sectors
# (reads, writes, discard or write zeroes with a nonempty segment) are affected.
BAD = [(96, 103), (2048, 2175), (5000, 5000)]
FAULT_ARGS = ["--capacity", "8192", "--lbs", "512", "--max-discard-sectors", "1024",
              "--max-wz-sectors", "2048", "--max-sectors", "64"]
IOERR = 1


def _fault_want(fault: str, chain: dict[str, Any]) -> dict[str, int]:
    """The answer under ``fault``, from the oracle's plain answer in the line."""
    writes = [(int(w[0]), int(w[1])) for w in chain["writes"]]
    status = int(chain["status"]) if chain["status"] is not None else -1
    read = chain["read_sector"]
    in_len = sum(int(b["len"]) for b in chain["bufs"] if b["w"]) - 1
    want = {"status": status, "by_fault": 0, "partial": 0, "may_fail": 0, "no_effect": 0,
            "nwrites": len(writes)}
    if status != oracle.OK or (read is None and not writes):
        return want
    ranges = writes + ([(int(read), in_len)] if read is not None else [])
    if fault == "error-writes" and writes:
        want.update(status=IOERR, by_fault=1, nwrites=0)
    elif fault == "drop-writes" and writes:
        want.update(no_effect=1)
    elif fault == "may-fail":
        want.update(may_fail=1)
    elif fault.startswith("badblocks") and any(
            s <= b and a < s + (n + 511) // 512 for s, n in ranges for a, b in BAD):
        want.update(status=IOERR, by_fault=1, partial=1)
    return want


@pytest.mark.parametrize("fault", ["error-writes", "drop-writes", "may-fail",
                                   "badblocks=" + ",".join(f"{a}-{b}" for a, b in BAD)])
def test_fault_rules(vblk_fuzz: Path, fault: str) -> None:
    """--emit with --fault prints the oracle's answer and the fault's: 3,000 chains on a
    4 MiB device, each as restated in _fault_want(), and the fault changed some."""
    proc = subprocess.run([str(vblk_fuzz), "--emit", "3000", "--seed", "21", "--fault", fault,
                           *FAULT_ARGS], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    changed, bad = 0, []
    for line in proc.stdout.splitlines():
        chain = json.loads(line)
        want = _fault_want(fault, chain)
        if chain["fault"] != want:
            bad.append(f"chain {chain['index']} ({chain['why']}): {chain['fault']}, want {want}")
        changed += want != _fault_want("none", chain)
    assert not bad, f"{len(bad)} chains:\n" + "\n".join(bad[:10])
    assert changed > 20, f"the fault changed only {changed} answers"


@pytest.mark.parametrize(("args", "message"), [
    (["--emit", "1", "--fault", "bogus"], "--fault bogus: "),
    (["--emit", "1", "--fault", "badblocks=9-3"], "expected a whole number from 9"),
    (["--emit", "1", "--fault", "power-off=/sys/x"], "--fault power-off: "),
    (["--dev", "/nonexistent", "--ring", "3", "--fault", "may-fail"], "request fuzzing"),
])
def test_fault_option_errors(vblk_fuzz: Path, args: list[str], message: str) -> None:
    proc = subprocess.run([str(vblk_fuzz), *args], capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
