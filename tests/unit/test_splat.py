"""splat.find on realistic Linux 6.12 x86_64 console logs."""

from __future__ import annotations

from pathlib import Path

import pytest

from kseries import splat

CONSOLES = Path(__file__).resolve().parent.parent / "fixtures" / "consoles"

# fixture -> the (kind, title) of every report in it, in order.
EXPECTED: dict[str, list[tuple[str, str]]] = {
    "clean_boot.log": [],
    "oops_int3_tcg.log": [
        ("oops", "Oops: int3: 0000 [#1] PREEMPT SMP KASAN NOPTI"),
        # The panic that ends the Oops is a report of its own: it says why
        # the machine died ("Attempted to kill the idle task!").
        ("panic", "Kernel panic - not syncing: Attempted to kill the idle task!"),
    ],
    "kasan_uaf.log": [
        ("kasan", "BUG: KASAN: slab-use-after-free in vhost_blk_req_done+0x4c/0x1a0 "
                  "[vhost_blk]"),
    ],
    "lockdep_circular.log": [
        ("lockdep", "WARNING: possible circular locking dependency detected"),
    ],
    "warning_vhost.log": [
        ("warning", "WARNING: CPU: 1 PID: 42 at drivers/vhost/vhost.c:123 "
                    "vhost_dev_cleanup+0x8c2/0xa10 [vhost]"),
    ],
    "hung_task.log": [
        ("hung-task", "INFO: task kworker/0:1:23 blocked for more than 60 seconds."),
    ],
    "kmemleak.log": [
        ("kmemleak", "kmemleak: 2 new suspected memory leaks (see /sys/kernel/debug/kmemleak)"),
    ],
    "sleeping_in_atomic.log": [
        ("lockdep", "BUG: sleeping function called from invalid context at "
                    "kernel/locking/mutex.c:585"),
    ],
    "ubsan_oob.log": [
        ("ubsan", "UBSAN: array-index-out-of-bounds in drivers/vhost/blk.c:212:19"),
    ],
    "null_deref.log": [
        ("oops", "BUG: kernel NULL pointer dereference, address: 0000000000000008"),
    ],
}


def read(name: str) -> str:
    return (CONSOLES / name).read_text()


def kinds_and_titles(log: str) -> list[tuple[str, str]]:
    return [(s.kind, s.title) for s in splat.find(log)]


def test_every_fixture_is_covered() -> None:
    assert sorted(p.name for p in CONSOLES.glob("*.log")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture(name: str) -> None:
    assert kinds_and_titles(read(name)) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if e))
def test_report_inside_a_clean_boot(name: str) -> None:
    """A report in the middle of a boot log is found once, at its line."""
    boot = read("clean_boot.log").splitlines(keepends=True)
    cut = next(i for i, line in enumerate(boot) if "random: crng init done" in line)
    report = read(name)
    found = splat.find("".join([*boot[:cut], report, *boot[cut:]]))
    assert [(s.kind, s.title) for s in found] == EXPECTED[name]
    first = report.splitlines()[found[0].line_no - cut - 1]
    assert found[0].title in first or "cut here" in first


def test_clean_boot_has_benign_warning_words() -> None:
    """The clean log really does contain the words a naive grep would flag."""
    log = read("clean_boot.log")
    for word in ("WARNING:", "MAX_LOCKDEP", "kmemleak:", "kasan:", "panic=-1", "lockdep",
                 "workqueue:"):
        assert word in log
    assert splat.find(log) == []


def test_line_numbers_and_context() -> None:
    log = read("warning_vhost.log")
    (found,) = splat.find(log)
    assert found.line_no == 1  # the "cut here" line starts the report
    assert found.lines[1] == "Modules linked in: vhost_blk vhost vhost_iotlb"
    assert len(found.lines) == 11
    assert found.excerpt(2) == f"{found.title}\nModules linked in: vhost_blk vhost vhost_iotlb"
    assert not any(line.startswith("[") for line in found.lines)


def test_kasan_context_has_the_access() -> None:
    (found,) = splat.find(read("kasan_uaf.log"))
    assert found.line_no == 3
    assert found.lines[1] == "Read of size 8 at addr ffff888006a4e018 by task vhost-231/240"


@pytest.mark.parametrize("first, second", [
    ("kmemleak.log", "warning_vhost.log"),
    ("sleeping_in_atomic.log", "warning_vhost.log"),
    ("lockdep_circular.log", "null_deref.log"),
    ("hung_task.log", "oops_int3_tcg.log"),
    ("oops_int3_tcg.log", "kasan_uaf.log"),
])
def test_next_report_is_not_swallowed(first: str, second: str) -> None:
    """A report without an end marker must not absorb the report after it."""
    log = read(first) + read(second)
    assert kinds_and_titles(log) == EXPECTED[first] + EXPECTED[second]


def test_all_reports_in_one_log() -> None:
    names = [n for n in sorted(EXPECTED) if EXPECTED[n]]
    log = read("clean_boot.log") + "".join(read(n) for n in names)
    assert kinds_and_titles(log) == [t for n in names for t in EXPECTED[n]]


def test_two_warnings_are_two_reports() -> None:
    log = read("warning_vhost.log")
    assert len(splat.find(log + log)) == 2


@pytest.mark.parametrize("line", [
    "[    0.123456] RETBleed: WARNING: Spectre v2 mitigation leaves CPU vulnerable to RETBleed "
    "attacks, data leaks possible!",
    "[    3.100000] Warning: unable to open an initial console.",
    "[    0.200000] kmemleak: Kernel memory leak detector initialized (mem pool available: 15706)",
    "[    0.010000] kasan: KernelAddressSanitizer initialized (generic)",
    "[    0.020000] ... MAX_LOCKDEP_KEYS:        8192",
    "[    1.500000] workqueue: drain_vmap_area_work hogged CPU for >10000us 4 times, consider "
    "switching to WQ_UNBOUND",
    "[    0.000000] Command line: console=ttyS0 earlyprintk=serial,ttyS0,115200 panic=-1",
    "[    4.000000] clocksource: timekeeping watchdog on CPU1: Marking clocksource 'tsc' as "
    "unstable because the skew is too large:",
    "[    0.300000] x86/split lock detection: #AC: crashing the kernel on kernel split_locks "
    "and warning on user-space split_locks",
    "[    9.000000] page dumped because: kasan: bad access detected",
    "[    0.100000] rcu: 	RCU lockdep checking is enabled.",
    "[    0.050000] NMI watchdog: Perf NMI watchdog permanently disabled",
    "uname -r: 6.12.117",
    "",
])
def test_benign_lines(line: str) -> None:
    assert splat.classify(line) is None


@pytest.mark.parametrize("line, kind", [
    ("[   26.000000] watchdog: BUG: soft lockup - CPU#0 stuck for 26s! [vhost-231:240]",
     "soft-lockup"),
    ("[   30.000000] watchdog: Watchdog detected hard LOCKUP on cpu 1", "soft-lockup"),
    ("[   40.000000] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:", "hung-task"),
    ("[   41.000000] INFO: rcu_preempt self-detected stall on CPU", "hung-task"),
    ("[    5.000000] BUG: KFENCE: use-after-free read in vhost_blk_req_done+0x4c/0x1a0",
     "kfence"),
    ("[    5.000000] unreferenced object 0xffff888006a4e000 (size 192):", "kmemleak"),
    ("[    5.000000] BUG: scheduling while atomic: vhost-231/240/0x00000002", "lockdep"),
    ("[    5.000000] WARNING: suspicious RCU usage", "lockdep"),
    ("[    5.000000] WARNING: possible recursive locking detected", "lockdep"),
    ("[    5.000000] WARNING: inconsistent lock state", "lockdep"),
    ("[    5.000000] BUG: spinlock bad magic on CPU#0, vhost-231/240", "lockdep"),
    ("[    5.000000] Oops: general protection fault, probably for non-canonical address "
     "0xdffffc0000000001: 0000 [#1] PREEMPT SMP KASAN NOPTI", "oops"),
    ("[    5.000000] BUG: unable to handle page fault for address: ffffc90000a3d000", "oops"),
    ("[    5.000000] kernel BUG at drivers/vhost/blk.c:99!", "bug"),
    ("[    5.000000] list_del corruption, ffff888006a4e000->next is LIST_POISON1 "
     "(dead000000000100)", "bug"),
    ("[    5.000000] BUG: Bad page state in process vhost-231  pfn:06a4e", "bug"),
    ("[    5.000000] Kernel panic - not syncing: Fatal exception", "panic"),
    ("<4>[    5.000000] WARNING: CPU: 0 PID: 1 at init/main.c:1 f+0x1/0x2", "warning"),
    ("[    5.000000][    T1] WARNING: CPU: 0 PID: 1 at init/main.c:1 f+0x1/0x2", "warning"),
    ("[    5.000000] [  C1] BUG: KASAN: double-free in kfree+0x1/0x2", "kasan"),
    ("WARNING: CPU: 0 PID: 1 at init/main.c:1 f+0x1/0x2\r\n", "warning"),
])
def test_report_first_lines(line: str, kind: str) -> None:
    assert splat.classify(line) == kind


@pytest.mark.parametrize("line, text", [
    ("[    1.234567] foo", "foo"),
    ("[12345.678901] foo bar", "foo bar"),
    ("<6>[    1.234567] foo", "foo"),
    ("[    1.234567][    T1] foo", "foo"),
    ("[    1.234567] [  C0] foo", "foo"),
    ("[    1.234567] \n", ""),
    ("no timestamp [1.0] here", "no timestamp [1.0] here"),
    (" ffff888006a4df00: fa fb", " ffff888006a4df00: fa fb"),
])
def test_strip_timestamp(line: str, text: str) -> None:
    assert splat.strip_timestamp(line) == text


def test_empty_log() -> None:
    assert splat.find("") == []
