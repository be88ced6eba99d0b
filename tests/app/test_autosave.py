import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from app.project.autosave import Autosaver, user_data_dir
from app.project.files import FramePrompt, ObjectInfo, Project, ProjectError, load_project
from app.project.mask_store import MaskStore
from app.safety.atomic import is_temporary_name, sweep_stale_temporaries

REPO = Path(__file__).resolve().parents[2]
SIZE = (12, 16)


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def _doc():
    project = Project(
        video_path="/videos/clip.mp4",
        objects=[ObjectInfo(1, "a", "thing", (10, 20, 30))],
        prompts=[],
        settings={},
        num_frames=50,
        video_size=SIZE,
    )
    return project, MaskStore(SIZE, num_frames=50)


def _saved(saver):
    return load_project(saver.session_dir / "recovery.masklet")


def _run_child(code, data_dir):
    env = {**os.environ, "MASKLET_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, env=env, timeout=60, check=False
    )


def test_user_data_dir_override(monkeypatch, tmp_path):
    monkeypatch.setenv("MASKLET_DATA_DIR", str(tmp_path))
    assert user_data_dir() == tmp_path
    assert Autosaver().root == tmp_path / "recovery"


def test_prompt_changes_are_saved_immediately(tmp_path):
    project, masks = _doc()
    saver = Autosaver(root=tmp_path, clock=FakeClock())
    saver.mark_dirty("prompts")  # nothing attached yet: a no-op
    assert saver.session_dir is None
    saver.attach(lambda: (project, masks), project_path="/work/a.masklet")
    project.prompts.append(FramePrompt(3, 1, [(1.0, 2.0, 1)]))
    saver.mark_dirty("prompts")
    loaded, _ = _saved(saver)
    assert [(p.frame, p.points) for p in loaded.prompts] == [(3, [(1.0, 2.0, 1)])]
    saver.clean_shutdown()


def test_mask_changes_are_throttled(tmp_path):
    clock = FakeClock()
    project, masks = _doc()
    saver = Autosaver(root=tmp_path, clock=clock, mask_interval_s=2.0)
    saver.attach(lambda: (project, masks))
    assert not saver.tick()  # nothing pending
    masks.set(0, 1, np.ones(SIZE, bool))
    saver.mark_dirty("masks")
    assert saver.tick()
    masks.set(1, 1, np.ones(SIZE, bool))
    saver.mark_dirty("masks")
    clock.now += 1.0
    assert not saver.tick()
    assert _saved(saver)[1].frames(1) == [0]
    clock.now += 1.5
    assert saver.tick()
    assert _saved(saver)[1].frames(1) == [0, 1]
    saver.clean_shutdown()


def test_object_changes_flush_pending_masks(tmp_path):
    project, masks = _doc()
    saver = Autosaver(root=tmp_path, clock=FakeClock())
    saver.attach(lambda: (project, masks))
    masks.set(4, 1, np.ones(SIZE, bool))
    saver.mark_dirty("masks")
    project.objects.append(ObjectInfo(2, "b", "thing", (0, 0, 0)))
    saver.mark_dirty("objects")
    loaded, loaded_masks = _saved(saver)
    assert [o.obj_id for o in loaded.objects] == [1, 2]
    assert loaded_masks.frames(1) == [4]
    assert not saver.tick()  # the flush cleared the pending mask save
    saver.clean_shutdown()


def test_clean_shutdown_removes_recovery_data(tmp_path):
    project, masks = _doc()
    saver = Autosaver(root=tmp_path)
    saver.attach(lambda: (project, masks))
    saver.mark_dirty("settings")
    session = saver.session_dir
    assert (session / "owner.lock").exists()
    saver.clean_shutdown()
    assert not session.exists()
    assert saver.session_dir is None


def test_live_sessions_are_not_recoverable(tmp_path):
    project, masks = _doc()
    first, second = Autosaver(root=tmp_path), Autosaver(root=tmp_path)
    for saver in (first, second):
        saver.attach(lambda: (project, masks))
        saver.mark_dirty("prompts")
    assert first.find_recoverable() == []
    assert second.find_recoverable() == []
    first.clean_shutdown()
    second.clean_shutdown()


CRASHING_CHILD = """
    import os
    import numpy as np
    from app.project.autosave import Autosaver
    from app.project.mask_store import MaskStore
    from app.project.files import FramePrompt, ObjectInfo, Project
    project = Project("/videos/crash.mp4", [ObjectInfo(5, "cat", "animal", (1, 2, 3))],
                      [], {"k": 1}, 20, (12, 16))
    masks = MaskStore((12, 16), num_frames=20)
    saver = Autosaver(mask_interval_s=0)
    saver.attach(lambda: (project, masks), project_path="/work/crash.masklet")
    project.prompts.append(FramePrompt(2, 5, [(4.0, 5.0, 1)]))
    saver.mark_dirty("prompts")
    masks.set(2, 5, np.eye(12, 16, dtype=bool))
    saver.mark_dirty("masks")
    saver.tick()
    os._exit(3)
"""


def test_crashed_session_is_recoverable_then_discarded(tmp_path):
    assert _run_child(CRASHING_CHILD, tmp_path).returncode == 3
    saver = Autosaver(root=tmp_path / "recovery")
    (info,) = saver.find_recoverable()
    assert info.video_path == "/videos/crash.mp4"
    assert info.project_path == "/work/crash.masklet"
    assert (info.num_objects, info.num_prompts, info.num_masks) == (1, 1, 1)
    assert abs(info.saved_at - time.time()) < 120
    project, masks = saver.recover(info)
    assert project.settings == {"k": 1}
    np.testing.assert_array_equal(masks.get(2, 5), np.eye(12, 16, dtype=bool))
    saver.discard(info)
    assert not info.path.exists()
    assert saver.find_recoverable() == []


def test_dead_session_without_project_is_cleaned_up(tmp_path):
    code = """
        import os
        from app.project.autosave import Autosaver
        saver = Autosaver()
        saver._ensure_session()
        os._exit(1)
    """
    assert _run_child(code, tmp_path).returncode == 1
    root = tmp_path / "recovery"
    assert len(list(root.iterdir())) == 1
    assert Autosaver(root=root).find_recoverable() == []
    assert list(root.iterdir()) == []


def test_disk_errors_are_reported_not_raised(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    errors = []
    project, masks = _doc()
    saver = Autosaver(root=blocker / "recovery", on_error=errors.append)
    saver.attach(lambda: (project, masks))
    saver.mark_dirty("prompts")
    assert saver.last_error is not None and errors == [saver.last_error]
    assert saver.last_error.startswith("autosave failed")


def test_any_failure_is_reported_not_raised(tmp_path):
    errors = []
    project, masks = _doc()
    broken = [True]

    def state():
        if broken[0]:
            raise RuntimeError("document in a state nobody expected\nsecond line")
        return project, masks

    saver = Autosaver(root=tmp_path, on_error=errors.append)
    saver.attach(state)
    saver.mark_dirty("objects")
    project.prompts.append(FramePrompt(-1, 1, [(1.0, 1.0, 1)]))
    broken[0] = False
    saver.mark_dirty("prompts")
    assert errors == [
        "autosave failed: document in a state nobody expected",
        "autosave failed: prompt frame -1 is outside the video",
    ]
    assert saver.failed_saves == 2 and saver.last_error == errors[-1]
    project.prompts.pop()
    assert saver.flush() and saver.last_error is None and saver.failed_saves == 2


def test_bad_arguments(tmp_path):
    saver = Autosaver(root=tmp_path)
    with pytest.raises(ValueError, match="kind"):
        saver.mark_dirty("everything")
    with pytest.raises(ValueError, match="interval"):
        Autosaver(root=tmp_path, mask_interval_s=-1)


KILLED_CHILD = """
    import numpy as np
    from app.project.autosave import Autosaver
    from app.project.mask_store import MaskStore
    from app.project.files import FramePrompt, ObjectInfo, Project

    N, H, W = 700, 24, 32
    yy, xx = np.mgrid[:H, :W]

    def mask(frame, obj_id):
        return (yy - obj_id % H) ** 2 + (xx - frame % W) ** 2 < 40

    objects = [ObjectInfo(1, "o", "c", (0, 0, 0)), ObjectInfo(2, "o", "c", (0, 0, 0))]
    project = Project("/v.mp4", objects, [], {}, N, (H, W))
    masks = MaskStore((H, W), num_frames=N)
    saver = Autosaver(mask_interval_s=0.05)
    saver.attach(lambda: (project, masks))
    frame, counter, next_id = 0, 0, 3
    while True:
        counter += 1
        obj = project.objects[-1].obj_id
        project.prompts.append(FramePrompt(frame % N, obj, [(float(counter), 1.0, 1)]))
        saver.mark_dirty("prompts")
        print("P", counter, obj, flush=True)
        if counter % 4 == 0:
            old = project.objects[0].obj_id
            masks.remove_object(old)
            project.prompts = [p for p in project.prompts if p.obj_id != old]
            project.objects = project.objects[1:] + [ObjectInfo(next_id, "o", "c", (0, 0, 0))]
            saver.mark_dirty("objects")
            print("D", old, next_id, flush=True)
            next_id += 1
        for _ in range(6):
            for o in project.objects:
                masks.set(frame % N, o.obj_id, mask(frame % N, o.obj_id))
            saver.mark_dirty("masks")
            if saver.tick():
                print("M", frame % N, *[o.obj_id for o in project.objects], flush=True)
            frame += 1
"""


def _check_recovered(project, masks, lines):
    alive = [1, 2]
    for parts in lines:
        if parts[0] == "D":
            alive = alive[1:] + [int(parts[2])]
    ids = {o.obj_id for o in project.objects}
    # Either the logged state, or the deletion that was saved just before the kill.
    assert ids in ({*alive}, {alive[1], max(alive) + 1}), (ids, alive)
    expected = {int(p[1]) for p in lines if p[0] == "P" and int(p[2]) in ids}
    got = {int(p.points[0][0]) for p in project.prompts}
    assert expected <= got, f"lost prompts {sorted(expected - got)}"
    yy, xx = np.mgrid[:24, :32]
    for oid in masks.object_ids():
        assert oid in ids
        for f in masks.frames(oid):
            want = (yy - oid % 24) ** 2 + (xx - f % 32) ** 2 < 40
            np.testing.assert_array_equal(masks.get(f, oid), want)
    saves = [p for p in lines if p[0] == "M"]
    if saves:
        frame, *alive = (int(v) for v in saves[-1][1:])
        for oid in set(alive) & ids:
            assert masks.status(frame, oid) == "present", (frame, oid)


@pytest.mark.slow
def test_kill_9_at_random_moments_never_loses_prompts(tmp_path):
    rng = np.random.default_rng(1234)
    env = {**os.environ, "MASKLET_DATA_DIR": str(tmp_path)}
    saver = Autosaver(root=tmp_path / "recovery")
    checked_prompts = 0
    for _ in range(6):
        child = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(KILLED_CHILD)],
            cwd=REPO, env=env, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        first = child.stdout.readline()  # the child is up and has saved once
        assert first.startswith("P")
        time.sleep(float(rng.uniform(0.05, 1.0)))
        child.kill()
        rest, _ = child.communicate(timeout=30)
        text = first + rest
        complete = text[: text.rfind("\n") + 1] if "\n" in text else ""
        lines = [line.split() for line in complete.splitlines()]
        (info,) = saver.find_recoverable()
        try:
            project, masks = saver.recover(info)
        except ProjectError as exc:  # pragma: no cover - the failure this test exists for
            pytest.fail(f"unreadable recovery set: {exc}")
        _check_recovered(project, masks, lines)
        # Whatever the kill left half-written is named as ours, so the next write sweeps it.
        litter = list(info.path.rglob(".*"))  # a session holds no hidden file of its own
        assert all(is_temporary_name(p.name) for p in litter), litter
        for folder in {p.parent for p in litter}:
            sweep_stale_temporaries(folder)
        assert not any(p.exists() for p in litter)
        checked_prompts += sum(1 for p in lines if p[0] == "P")
        saver.discard(info)
    assert checked_prompts > 6
