"""Hostile conditions for everything that writes files: kills, foreign folders, modes, errors.

Outputs are built under temporaries of our naming and renamed into place; a kill leaves
the final path as it was plus litter that the next write sweeps; nothing that Masklet did
not write is ever replaced or deleted.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from export_fixtures import box_source
from hostile import ROOT, digest_tree

from app.export import ExportOptions, ObjectMeta, StoreSource, export
from app.export.files import atomic_output
from app.safety import atomic
from app.safety.atomic import atomic_write_bytes, is_temporary_name, temp_name

H, W, N = 16, 20, 6


@pytest.fixture
def source() -> StoreSource:
    return box_source((H, W), N, [ObjectMeta(1, "a", "thing")])


def _temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if is_temporary_name(p.name))


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# -- modes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o077])
@pytest.mark.parametrize("fmt", ["png", "coco", "ytvis", "mp4"])
def test_exported_files_get_the_umask_mode(source, tmp_path, fmt, umask):
    out = tmp_path / ("out" if fmt == "png" else f"out.{fmt}")
    old = os.umask(umask)
    try:
        result = export(source, fmt, out, ExportOptions(images="jpg", binary_masks=True))
    finally:
        os.umask(old)
    assert result.paths
    modes = {oct(p.stat().st_mode & 0o777) for p in result.paths}
    assert modes == {oct(0o666 & ~umask)}


def test_replaced_file_keeps_its_mode_new_file_gets_umask(tmp_path):
    kept, new = tmp_path / "kept.txt", tmp_path / "new.txt"
    kept.write_text("old")
    kept.chmod(0o640)
    old = os.umask(0o022)
    try:
        atomic_write_bytes(kept, b"x")
        atomic_write_bytes(new, b"y")
    finally:
        os.umask(old)
    assert kept.stat().st_mode & 0o777 == 0o640
    assert new.stat().st_mode & 0o777 == 0o644


# -- error messages ----------------------------------------------------------------------------


def test_disk_full_names_the_users_file_not_the_temporary(tmp_path, monkeypatch):
    def full(_fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    target = tmp_path / "project.masklet"
    monkeypatch.setattr(atomic.os, "fsync", full)
    with pytest.raises(OSError) as caught:
        atomic_write_bytes(target, b"data")
    assert caught.value.filename == str(target) and caught.value.errno == errno.ENOSPC
    assert "masklet-tmp" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_error_inside_a_streamed_output_names_the_output(tmp_path):
    out = tmp_path / "out.json"
    with pytest.raises(PermissionError) as caught, atomic_output(out) as tmp:
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp))
    assert caught.value.filename == str(out) and "masklet-tmp" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_error_in_a_folder_export_names_the_file_in_the_final_folder(source, tmp_path, monkeypatch):
    def full(_fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full)
    out = tmp_path / "export"
    with pytest.raises(OSError) as caught:
        export(source, "png", out)
    assert Path(caught.value.filename).parent == out
    assert "masklet-tmp" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


# -- stale temporaries -------------------------------------------------------------------------


def test_next_write_sweeps_only_our_temporaries_of_dead_processes(tmp_path):
    dead, folder, elsewhere = _dead_pid(), tmp_path / "out", tmp_path / "elsewhere"
    folder.mkdir()
    elsewhere.mkdir()
    (elsewhere / "precious.txt").write_text("keep")
    stale_file = folder / f".a.json.masklet-tmp-{dead}-0123abcd"
    stale_file.write_text("litter")
    stale_dir = folder / f".export.masklet-tmp-{dead}-89abcdef"
    (stale_dir / "Annotations").mkdir(parents=True)
    (stale_dir / "Annotations" / "00000.png").write_bytes(b"x")
    stale_link = folder / f".l.masklet-tmp-{dead}-00000000"
    stale_link.symlink_to(elsewhere)
    kept = [
        folder / temp_name("live.json"),  # ours, owner alive (this process)
        folder / f".a.json.masklet-tmp-{dead}-0123",  # not exactly our pattern
        folder / ".a.json.tmp",  # someone else's temporary
        folder / "a.json.masklet-tmp-1-0123abcd",  # not hidden: not ours
    ]
    for path in kept:
        path.write_text("keep")
    before_elsewhere = digest_tree(elsewhere)
    atomic_write_bytes(folder / "a.json", b"{}")
    assert not stale_file.exists() and not stale_dir.exists() and not stale_link.is_symlink()
    assert all(p.read_text() == "keep" for p in kept)
    assert digest_tree(elsewhere) == before_elsewhere


# -- folder exports ----------------------------------------------------------------------------


def test_png_export_refuses_a_folder_with_foreign_files(source, tmp_path):
    out = tmp_path / "mine"
    (out / "Annotations").mkdir(parents=True)
    (out / "Annotations" / "00000.png").write_bytes(b"user's own annotation")
    (out / "notes.txt").write_text("user's notes")
    before = digest_tree(out)
    with pytest.raises(ValueError, match="did not write"):
        export(source, "png", out)
    assert digest_tree(out) == before
    assert _temporaries(tmp_path) == []


def test_png_export_refuses_a_symlinked_folder(source, tmp_path):
    target = tmp_path / "real"
    target.mkdir()
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(ValueError, match="symbolic link"):
        export(source, "png", tmp_path / "link")
    assert list(target.iterdir()) == [] and (tmp_path / "link").is_symlink()


def test_png_export_replaces_an_earlier_export_completely(source, tmp_path):
    out = tmp_path / "export"
    export(source, "png", out, ExportOptions(binary_masks=True, images="jpg"))
    assert len(list((out / "Annotations").iterdir())) == N
    result = export(source, "png", out, ExportOptions(stop=2))
    assert sorted(p.name for p in (out / "Annotations").iterdir()) == ["00000.png", "00001.png"]
    assert sorted(p.name for p in out.iterdir()) == ["Annotations", "objects.json"]
    assert set(result.paths) == {p for p in out.rglob("*") if p.is_file()}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


KILLED_EXPORT = """
    import sys, time
    import numpy as np
    from app.export import ExportOptions, ObjectMeta, StoreSource, export
    from app.project.mask_store import MaskStore

    H, W, N = 48, 64, 60

    class Reader:
        fps, size = 5.0, (H, W)
        def __len__(self):
            return N
        def __getitem__(self, i):
            return np.full((H, W, 3), i, np.uint8)

    store = MaskStore((H, W))
    for f in range(N):
        store.set(f, 1, np.arange(H * W).reshape(H, W) % (f + 2) == 0)
    source = StoreSource(name="v", reader=Reader(), store=store, objects=[ObjectMeta(1, "a", "c")])

    def progress(done, total):
        print("done", done, total, flush=True)
        time.sleep(0.01)

    options = ExportOptions(binary_masks=True, images="png")
    export(source, "png", sys.argv[1], options, progress=progress)
    print("finished", flush=True)
"""


def _export_and_kill(out: Path, kill_after: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(KILLED_EXPORT), str(out)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        for line in child.stdout:
            if line.startswith("done") and int(line.split()[1]) >= kill_after:
                break
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(30)


def _assert_nothing_or_complete(out: Path, frames: int) -> None:
    if not out.exists():
        return
    assert sorted(p.name for p in out.iterdir()) == [
        "Annotations", "JPEGImages", "Objects", "objects.json"
    ]  # fmt: skip
    for sub in (out / "Annotations", out / "JPEGImages", out / "Objects" / "1"):
        assert len(list(sub.iterdir())) == frames, sub


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_kill_9_mid_png_export_leaves_nothing_or_a_complete_export(source, tmp_path):
    out = tmp_path / "export"
    litter = 0
    for kill_after in (0, 5, 30, 59, 60):
        _export_and_kill(out, kill_after)
        _assert_nothing_or_complete(out, 60)
        litter += len(_temporaries(tmp_path))
    assert litter > 0  # the kills did leave our temporaries behind
    # The next run sweeps them and replaces whatever earlier export stands at `out`.
    export(source, "png", out, ExportOptions(binary_masks=True, images="png"))
    assert _temporaries(tmp_path) == []
    _assert_nothing_or_complete(out, N)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]
