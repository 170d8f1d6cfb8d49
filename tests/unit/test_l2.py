"""kseries.l2: the L2 guest's manifest, module order, ldd parsing and image build."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kseries import deb as debs
from kseries.bench import l2 as bench_l2
from kseries.errors import InfraError, UsageError
from kseries.l2 import guest, image, libs, manifest, modules
from kseries.progress import Progress

RELEASE = "6.1.0-99-amd64"
PACKAGE = "linux-image-6.1.0-99-amd64-unsigned"
VERSION = "6.1.999-1"


def write_manifest(root: Path, sha: str = "0" * 64, **overrides: str) -> Path:
    fields = {
        "package": f'"{PACKAGE}"', "debian_version": f'"{VERSION}"',
        "release": f'"{RELEASE}"', "sha256": f'"{sha}"',
        "modules": '["virtio_blk", "ext4"]',
        "busybox": '"/usr/bin/env"', "programs": '["/usr/bin/env"]',
        "links": '{ "/usr/sbin/mkfs.ext4" = "mke2fs" }',
    }
    fields.update(overrides)
    kernel = "\n".join(f"{k} = {fields[k]}" for k in
                       ("package", "debian_version", "release", "sha256", "modules"))
    initramfs = "\n".join(f"{k} = {fields[k]}" for k in ("busybox", "programs", "links"))
    path = root / "l2-guest" / "manifest.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"[kernel]\n{kernel}\n\n[initramfs]\n{initramfs}\n")
    (path.parent / "init").write_text("#!/bin/busybox sh\necho L2: done failed=0\n")
    return path


def test_manifest_loads(tmp_path: Path) -> None:
    man = manifest.load(write_manifest(tmp_path))
    assert man.pin.spec == f"{PACKAGE}={VERSION}"
    assert man.pin.file_name == f"{PACKAGE}_{VERSION}_amd64.deb"
    assert man.modules == ("virtio_blk", "ext4")
    assert man.links == {"/usr/sbin/mkfs.ext4": "mke2fs"}
    assert man.init == tmp_path / "l2-guest" / "init"


@pytest.mark.parametrize(("override", "message"), [
    ({"sha256": '"abc"'}, r"kernel\.sha256 must be a sha256 \(64 lowercase hex digits\)"),
    ({"modules": "[]"}, r"kernel\.modules must be a non-empty list of non-empty strings, "
                        r"not \[\]"),
    ({"programs": '["fio"]'}, r'initramfs\.programs\[0\] must be an absolute path, not "fio" '
                              r"\(name programs by their full path"),
    ({"busybox": '"busybox"'}, r'initramfs\.busybox must be an absolute path'),
    ({"links": '{ "mkfs.ext4" = "/usr/sbin/mke2fs" }'},
     r"initramfs\.links must be a table mapping absolute paths to file names"),
    ({"release": '""'}, r'kernel\.release must be a non-empty string, not ""'),
])
def test_manifest_errors_name_the_field(tmp_path: Path, override: dict[str, str],
                                        message: str) -> None:
    with pytest.raises(UsageError, match=message):
        manifest.load(write_manifest(tmp_path, **override))


def test_manifest_missing_and_broken(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        manifest.load(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[kernel\n")
    with pytest.raises(UsageError, match="not valid TOML"):
        manifest.load(bad)
    bad.write_text("[kernel]\n")
    with pytest.raises(UsageError, match=r"kernel\.package is missing"):
        manifest.load(bad)
    bad.write_text(write_manifest(tmp_path).read_text().split("[initramfs]")[0])
    with pytest.raises(UsageError, match=r"initramfs is missing \(a table\) \(add \[initramfs\]"):
        manifest.load(bad)


def test_epoch_is_escaped_in_the_file_name() -> None:
    pin = debs.Pin("qemu", "1:10.0.2+ds-2", "0" * 64, "amd64", Path("m.toml"))
    assert pin.file_name == "qemu_1%3a10.0.2+ds-2_amd64.deb"


DEPS = {
    "ext4": ["mbcache", "jbd2", "crc16"], "jbd2": [], "mbcache": [], "crc16": [],
    "virtio_blk": ["virtio", "virtio_ring"], "virtio": [], "virtio_ring": [],
    "virtio_pci": ["virtio_pci_modern_dev", "virtio", "virtio_ring"],
    "virtio_pci_modern_dev": [],
}


def _available() -> dict[str, Path]:
    return {name: Path(f"{name}.ko") for name in DEPS}


def _depends(path: Path) -> list[str]:
    return DEPS[path.name.removesuffix(".ko")]


def test_load_order_puts_dependencies_first_once() -> None:
    order = modules.load_order(["virtio_pci", "virtio_blk", "ext4"], _available(), _depends)
    assert len(order) == len(set(order)) == len(DEPS)
    for name, deps in DEPS.items():
        for dep in deps:
            assert order.index(dep) < order.index(name), (dep, name)


def test_load_order_accepts_dashes() -> None:
    assert modules.load_order(["virtio-ring"], _available(), _depends) == ["virtio_ring"]


def test_load_order_names_a_missing_module_and_who_needs_it() -> None:
    available = _available()
    del available["jbd2"]
    with pytest.raises(UsageError, match=r"no module jbd2 \(needed by ext4"):
        modules.load_order(["ext4"], available, _depends)


def test_load_order_refuses_a_cycle() -> None:
    deps = {"a": ["b"], "b": ["a"]}
    with pytest.raises(UsageError, match="cycle"):
        modules.load_order(["a"], {"a": Path("a.ko"), "b": Path("b.ko")},
                           lambda p: deps[p.stem])


LDD = """\
\tlinux-vdso.so.1 (0x00007ffd6a5f3000)
\tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x00007f2b1c0a0000)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2b1bebf000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f2b1c0e0000)
"""


def test_parse_ldd() -> None:
    assert libs.parse_ldd(LDD, Path("/usr/bin/fio")) == [
        Path("/lib/x86_64-linux-gnu/libz.so.1"), Path("/lib/x86_64-linux-gnu/libc.so.6"),
        Path("/lib64/ld-linux-x86-64.so.2")]


def test_parse_ldd_missing_library_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"needs librbd\.so\.1, which is not installed"):
        libs.parse_ldd("\tlibrbd.so.1 => not found\n", Path("/usr/bin/fio"))


def test_shared_libs_of_a_real_program() -> None:
    found = libs.shared_libs(Path("/usr/bin/env"))
    assert any(p.name.startswith("libc.so") for p in found)
    with pytest.raises(UsageError, match="does not exist"):
        libs.shared_libs(Path("/nonexistent/fio"))


def _fake_deb(root: Path) -> Path:
    pkg = root / "pkg"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN" / "control").write_text(
        f"Package: {PACKAGE}\nVersion: {VERSION}\nArchitecture: amd64\n"
        "Maintainer: Test <test@example.org>\nDescription: fake kernel image\n")
    (pkg / "boot").mkdir()
    (pkg / "boot" / f"vmlinuz-{RELEASE}").write_bytes(b"fake bzImage")
    moddir = pkg / "lib" / "modules" / RELEASE / "kernel"
    for sub, name in (("drivers/block", "virtio_blk"), ("drivers/virtio", "virtio"),
                      ("fs/ext4", "ext4"), ("fs/jbd2", "jbd2")):
        (moddir / sub).mkdir(parents=True, exist_ok=True)
        (moddir / sub / f"{name}.ko").write_bytes(name.encode())
    deb = root / f"{PACKAGE}_{VERSION}_amd64.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "-b", str(pkg), str(deb)],
                   check=True, capture_output=True)
    return deb


FAKE_DEPS = {"virtio_blk": ["virtio"], "virtio": [], "ext4": ["jbd2"], "jbd2": []}


def _cpio_names(initrd: Path) -> dict[str, bytes]:
    raw = subprocess.run(["zstd", "-dc", str(initrd)], capture_output=True, check=True).stdout
    out = initrd.parent / "unpacked"
    out.mkdir()
    subprocess.run(["cpio", "-id", "--quiet"], input=raw, cwd=out, check=True)
    return {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*")
            if p.is_file() and not p.is_symlink()}


def test_image_build_and_stamp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deb = _fake_deb(tmp_path)
    sha = hashlib.sha256(deb.read_bytes()).hexdigest()
    man = manifest.load(write_manifest(tmp_path, sha))
    man.cache.mkdir()
    deb.rename(man.cache / deb.name)
    monkeypatch.setattr(modules, "modinfo_depends",
                        lambda p: FAKE_DEPS[p.name.removesuffix(".ko")])
    outdir = tmp_path / "build" / "l2"
    img = image.build(man, outdir, Progress(quiet=True))
    assert img.rebuilt
    assert img.modules == ("virtio", "virtio_blk", "jbd2", "ext4")
    assert img.vmlinuz.read_bytes() == b"fake bzImage"
    files = _cpio_names(img.initrd)
    assert files["modules.order"] == b"virtio\nvirtio_blk\njbd2\next4\n"
    assert files["lib/modules/ext4.ko"] == b"ext4"
    assert files["init"].startswith(b"#!/bin/busybox sh")
    assert "bin/busybox" in files and "usr/bin/env" in files
    assert any(name.startswith("lib") and "libc.so" in name for name in files)
    assert (outdir / "unpacked" / "usr" / "sbin" / "mkfs.ext4").is_symlink()

    again = image.build(man, outdir, Progress(quiet=True))
    assert not again.rebuilt and again.modules == img.modules
    man.init.write_text("#!/bin/busybox sh\necho changed\n")
    assert image.build(man, outdir, Progress(quiet=True)).rebuilt


def test_image_wrong_release_names_the_fix(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    deb = _fake_deb(tmp_path)
    sha = hashlib.sha256(deb.read_bytes()).hexdigest()
    man = manifest.load(write_manifest(tmp_path, sha, release='"6.1.0-98-amd64"'))
    man.cache.mkdir()
    deb.rename(man.cache / deb.name)
    with pytest.raises(UsageError, match=r"has no boot/vmlinuz-6\.1\.0-98-amd64"):
        image.build(man, tmp_path / "out", Progress(quiet=True))


def test_download_of_a_vanished_version_lists_what_debian_offers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []

    def fake_run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        calls.append(cmd)
        if cmd[0] == "apt-cache":
            out = f" {PACKAGE} | 6.1.1000-1 | http://deb.debian.org/debian bookworm/main\n"
            return subprocess.CompletedProcess(cmd, 0, out, "")
        return subprocess.CompletedProcess(cmd, 100, "", "E: Version '6.1.999-1' not found")

    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    pin = debs.Pin(PACKAGE, VERSION, "0" * 64, "amd64", tmp_path / "manifest.toml")
    with pytest.raises(UsageError, match=r"no longer offers .* the mirror has 6\.1\.1000-1"):
        debs.download(pin, tmp_path / "cache", Progress(quiet=True))
    assert calls[0] == ["apt-get", "download", f"{PACKAGE}={VERSION}"]

    def failing_run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        if cmd[0] == "apt-cache":
            out = f" {PACKAGE} | {VERSION} | http://deb.debian.org/debian bookworm/main\n"
            return subprocess.CompletedProcess(cmd, 0, out, "")
        return subprocess.CompletedProcess(cmd, 100, "", "E: Failed to fetch: timeout")

    monkeypatch.setattr(subprocess, "run", failing_run)
    with pytest.raises(InfraError, match="Failed to fetch"):
        debs.download(pin, tmp_path / "cache", Progress(quiet=True))


def test_guest_command_boots_the_l2_kernel_under_kvm() -> None:
    img = guest.Images(Path("/q/qemu-system-x86_64"), Path("/l2/vmlinuz"), Path("/l2/initrd"))
    cmd = guest.command(img, "l2.serial=s", ["vhost-blk-pci,path=/dev/ram0"], cpus=2)
    assert cmd[0] == "/q/qemu-system-x86_64"
    assert cmd[cmd.index("-accel") + 1] == "kvm"
    assert cmd[cmd.index("-kernel") + 1] == "/l2/vmlinuz"
    assert cmd[cmd.index("-append") + 1].endswith("l2.serial=s")
    assert "console=ttyS0" in cmd[cmd.index("-append") + 1]
    assert cmd[-2:] == ["-device", "vhost-blk-pci,path=/dev/ram0"]
    assert "-no-reboot" in cmd
    assert "-no-reboot" not in guest.command(img, "", [], reboot=True)


def test_bench_backends_share_one_device() -> None:
    for i, backend in enumerate(bench_l2.BACKENDS):
        extra, devices = bench_l2._qemu_args(backend, "/dev/nullb0", 2, i)
        text = " ".join(extra + devices)
        if backend == "vhost-user-blk":
            assert "vhost-user-blk-pci" in text and bench_l2.SOCKET in text
            assert "share=on" in text  # the daemon maps the guest's memory
        else:
            assert "/dev/nullb0" in text
        assert "num-queues" in text
    _, mapped = bench_l2._qemu_args("virtio-blk vq-mapping", "/dev/nullb0", 2, 1)
    assert '"iothread-vq-mapping":[{"iothread":"io1q0"},{"iothread":"io1q1"}]' in mapped[0]
    extra, _ = bench_l2._qemu_args("virtio-blk", "/dev/nullb0", 1, 0)
    assert "aio=io_uring" in " ".join(extra) and "cache.direct=on" in " ".join(extra)


def test_bench_backends_fit_in_one_qemu() -> None:
    # One L2 boot holds every back end: no two may share an object, node,
    # chardev id or PCI slot, and two block nodes on one file need
    # locking=off or the second one's write lock is refused.
    ids: list[str] = []
    addrs: list[str] = []
    for i, backend in enumerate(bench_l2.BACKENDS):
        extra, devices = bench_l2._qemu_args(backend, "/dev/nullb0", 2, i)
        text = " ".join(extra + devices)
        ids += re.findall(r"(?:node-name|\bid)=([\w-]+)", text)
        addrs += re.findall(r'addr"?[=:]"?(0x[0-9a-f]+)', text)
        if "host_device" in text:
            assert "locking=off" in text
    assert len(ids) == len(set(ids)), ids
    assert addrs == [f"0x{bench_l2.FIRST_SLOT + i:02x}" for i in range(len(bench_l2.BACKENDS))]


def test_bench_table_ratios_are_vhost_blk_over_each() -> None:
    points = [bench_l2.Point(b, "randread", 1, iops, 10.0)
              for b, iops in zip(bench_l2.BACKENDS, (100.0, 200.0, 400.0, 200.0), strict=True)]
    points.append(bench_l2.Point("virtio-blk", "randwrite", 32, 50.0, 10.0))
    text = bench_l2.table(points)
    row = next(line for line in text.splitlines() if line.startswith("| randread | 1 |"))
    assert row.split("|")[3:-1] == [" 100 ", " 200 ", " 400 ", " 200 ", " 2.00 ", " 1.00 ",
                                    " 0.50 "]
    missing = next(line for line in text.splitlines() if line.startswith("| randwrite"))
    assert "FAILED" in missing and missing.rstrip(" |").endswith("-")


def _console(script: str) -> list[str | None] | guest.GuestReset:
    """What next_line() gives for a "QEMU" that runs ``script``."""
    got: list[str | None] = []
    with guest.start(["sh", "-c", script]) as run:
        deadline = time.monotonic() + 30
        try:
            while (line := run.next_line(deadline)) is not None:
                got.append(line)
        except guest.GuestReset as exc:
            return exc
    return [*got, None]


def test_exit_0_before_init_is_a_guest_reset() -> None:
    exc = _console("echo 'Asymmetric key parser registered'; exit 0")
    assert isinstance(exc, guest.GuestReset)
    assert "reset before its init ran" in str(exc) and "Asymmetric" in str(exc)


def test_exit_after_init_or_with_an_error_is_not_a_reset() -> None:
    assert _console("echo 'L2: up 3.2 s, 6.1'; echo 'L2: done failed=0'") == [
        "L2: up 3.2 s, 6.1", "L2: done failed=0", None]
    # QEMU failing (exit 1) before init is the caller's failure, not a reset.
    assert _console("echo 'qemu: no such device'; exit 1") == ["qemu: no such device", None]


def test_threads_shows_which_one_spins_and_where_each_waits() -> None:
    busy = subprocess.Popen([sys.executable, "-c", "import time\nwhile True: pass"])
    try:
        time.sleep(0.5)
        text = guest.threads(busy.pid, sample=1.0)
    finally:
        busy.kill()
        busy.wait()
    head = text.splitlines()[0]
    name, _, rest = head.partition(": ")
    assert name == f"{busy.pid} python3" or name.startswith(f"{busy.pid} python")
    assert float(rest.split(" s CPU")[0]) > 0.05, head
    assert rest.endswith("R (running)")
    assert guest.threads(busy.pid, sample=0) == f"(process {busy.pid} has no threads left)"


def test_a_timeout_shows_qemus_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(guest, "THREAD_SAMPLE", 0.2)
    with guest.start(["sh", "-c", "echo 'L2: up 1 s'; sleep 30"]) as run:
        assert run.next_line(time.monotonic() + 30) == "L2: up 1 s"
        with pytest.raises(guest.GuestTimeout) as exc:
            run.next_line(time.monotonic() + 0.5)
    text = str(exc.value)
    assert "the L2 guest timed out" in text and "L2: up 1 s" in text
    assert f"{run.proc.pid} sh: 0.00 s CPU, S (sleeping)" in text
    # The fake QEMU has no QMP socket: the report says so in one line.
    assert f"QEMU's virtqueues and vCPUs:\n(QMP at {run.qmp_socket}: " in text


def test_retry_on_reset_boots_once_more_and_says_so() -> None:
    calls: list[int] = []
    notes: list[str] = []

    def once() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise guest.GuestReset("the L2 guest reset before its init ran, 80 s\ntail")
        return "ok"

    assert guest.retry_on_reset(once, notes.append) == "ok"
    assert len(calls) == 2
    assert notes == ["the L2 guest reset before its init ran, 80 s; boot 2 of 2"]


def test_the_last_reset_fails() -> None:
    calls: list[int] = []

    def once() -> str:
        calls.append(1)
        raise guest.GuestReset("reset again")

    notes: list[str] = []
    with pytest.raises(guest.GuestReset, match="reset again"):
        guest.retry_on_reset(once, notes.append, attempts=3)
    assert len(calls) == 3 and notes[-1].endswith("boot 3 of 3")


def test_each_bench_step_gets_longer_than_the_guests_own_fio_timeout() -> None:
    # l2-guest/init bounds each fio run with timeout(1); the harness must
    # wait longer, so a slow fio shows as the guest's "L2: FAIL bench ..."
    # and not as a harness timeout.
    init = (Path(__file__).resolve().parents[2] / "l2-guest" / "init").read_text()
    assert 'echo "L2: up $(cut' in init and 'echo "L2: bench start $slot $rw $qd' in init
    assert "timeout $((runtime * 10 + 120)) $FIO" in init
    for runtime in (1, 5, 30):
        step = bench_l2.allowance(f"L2: bench start randread 32 @{runtime}s", runtime)
        assert step is not None and step > runtime * 10 + 120
    assert bench_l2.allowance("L2: up 81.2 s, 6.1.0-41-amd64", 5) == 300.0
    assert bench_l2.allowance("L2: bench 04 randread 1 86 11000", 5) is None
    # What the init prints for a result is what the harness parses.
    assert 'echo "L2: bench $slot $rw $qd $(awk' in init
    m = bench_l2.BENCH.search("L2: bench 07 randwrite 128 981.3 130000.5")
    assert m is not None and m.groups() == ("07", "randwrite", "128", "981.3", "130000.5")


def test_bench_results_are_saved_as_they_come(tmp_path: Path) -> None:
    points = [bench_l2.Point("vhost-blk", "randread", 1, 18.0, 55000.0)]
    text = bench_l2.save(tmp_path, 1, 5, points)
    assert (tmp_path / "table.md").read_text() == text
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved == {"queues": 1, "runtime": 5, "points": [
        {"backend": "vhost-blk", "rw": "randread", "iodepth": 1, "iops": 18.0,
         "lat_us": 55000.0}]}
