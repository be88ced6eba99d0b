import json

import numpy as np
import pytest

from app.project.files import (
    FramePrompt,
    ObjectInfo,
    Project,
    ProjectError,
    load_project,
    mask_folder,
    save_project,
)
from app.project.mask_codec import CHUNK_FRAMES, encode_rle
from app.project.mask_store import MaskStore

SIZE = (24, 32)
FRAMES = 600


def _mask(frame, obj_id):
    yy, xx = np.mgrid[: SIZE[0], : SIZE[1]]
    return (yy - 12) ** 2 + (xx - (frame + 5 * obj_id) % 32) ** 2 < 30


def _project(video_path):
    prompt_mask = np.zeros(SIZE, bool)
    prompt_mask[2:5, 3:9] = True
    return Project(
        video_path=str(video_path),
        objects=[
            ObjectInfo(1, "dog", "animal", (255, 0, 0)),
            ObjectInfo(7, "ball", "toy", (0, 128, 255), visible=False),
        ],
        prompts=[
            FramePrompt(0, 1, [(3.5, 4.0, 1), (10.0, 2.25, 0)]),
            FramePrompt(300, 7, [], box=(1.0, 2.0, 20.0, 22.0), mask_rle=encode_rle(prompt_mask)),
        ],
        settings={"propagation": {"direction": "both"}},
        num_frames=FRAMES,
        video_size=SIZE,
    )


def _masks():
    store = MaskStore(SIZE, num_frames=FRAMES)
    for f in (0, 1, 2, 299, 300, 599):
        store.set(f, 1, _mask(f, 1))
    store.set(300, 7, _mask(300, 7))
    store.set(301, 7, None)
    return store


@pytest.fixture
def saved(tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"fake")
    path = tmp_path / "demo.masklet"
    project, masks = _project(video), _masks()
    save_project(path, project, masks)
    return path, project, masks


def _assert_same_masks(a: MaskStore, b: MaskStore):
    assert a.object_ids() == b.object_ids()
    for oid in a.object_ids():
        assert a.frames(oid) == b.frames(oid)
        for f in a.frames(oid):
            assert a.status(f, oid) == b.status(f, oid)
            if a.status(f, oid) == "present":
                np.testing.assert_array_equal(a.get(f, oid), b.get(f, oid))


def test_round_trip(saved):
    path, project, masks = saved
    loaded, loaded_masks = load_project(path)
    assert loaded.objects == project.objects
    assert loaded.settings == project.settings
    assert (loaded.num_frames, loaded.video_size) == (FRAMES, SIZE)
    assert loaded.video_path == project.video_path
    assert [(p.frame, p.obj_id, p.points, p.box) for p in loaded.prompts] == [
        (p.frame, p.obj_id, p.points, p.box) for p in project.prompts
    ]
    assert loaded.prompts[1].mask_rle == project.prompts[1].mask_rle
    assert loaded.prompts[0].mask_rle is None
    _assert_same_masks(masks, loaded_masks)
    assert sorted(p.name for p in mask_folder(path).iterdir()) == [
        "chunk-000000.bin",
        "chunk-000001.bin",
        "chunk-000002.bin",
    ]


def test_video_path_is_relative_with_absolute_fallback(saved, tmp_path):
    path, _, _ = saved
    doc = json.loads(path.read_text())
    assert doc["video"]["path"] == "clip.mp4"
    assert doc["video"]["absolute_path"] == str(tmp_path / "clip.mp4")
    # Moving project and video together keeps the relative link working.
    moved = tmp_path / "moved"
    moved.mkdir()
    (tmp_path / "clip.mp4").rename(moved / "clip.mp4")
    path.rename(moved / path.name)
    mask_folder(path).rename(mask_folder(moved / path.name))
    project, masks = load_project(moved / path.name)
    assert project.video_path == str(moved / "clip.mp4")
    assert masks.frames(7) == [300, 301]


def test_only_dirty_rewrites_changed_chunks(saved):
    path, project, masks = saved
    folder = mask_folder(path)
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    (folder / "chunk-000000.bin").write_bytes(b"sentinel")  # would be rewritten if not skipped
    masks.set(CHUNK_FRAMES + 5, 1, _mask(5, 1))
    masks.clear_frame(599, 1)  # empties chunk 2
    save_project(path, project, masks, only_dirty=True)
    assert (folder / "chunk-000000.bin").read_bytes() == b"sentinel"
    assert not (folder / "chunk-000002.bin").exists()
    assert (folder / "chunk-000001.bin").stat().st_mtime_ns >= before["chunk-000001.bin"]
    (folder / "chunk-000000.bin").unlink()
    save_project(path, project, masks)  # a full save restores everything
    _, loaded = load_project(path)
    _assert_same_masks(masks, loaded)


def test_loaded_store_is_clean_for_its_own_path(saved):
    path, project, _ = saved
    _, masks = load_project(path)
    sentinel = mask_folder(path) / "chunk-000001.bin"
    sentinel.write_bytes(b"untouched")
    masks.set(0, 1, None)
    save_project(path, project, masks, only_dirty=True)
    assert sentinel.read_bytes() == b"untouched"


def test_save_as_elsewhere_writes_everything(saved, tmp_path):
    _, project, masks = saved
    other = tmp_path / "sub" / "copy.masklet"
    other.parent.mkdir()
    save_project(other, project, masks, only_dirty=True)
    _, loaded = load_project(other)
    _assert_same_masks(masks, loaded)


def test_full_save_removes_stale_chunks(saved):
    path, project, masks = saved
    masks.remove_object(1)
    save_project(path, project, masks)
    assert [p.name for p in mask_folder(path).iterdir()] == ["chunk-000001.bin"]


def test_save_rejects_inconsistent_state(tmp_path):
    project, masks = _project(tmp_path / "v.mp4"), _masks()
    masks.set(0, 99, None)
    with pytest.raises(ValueError, match="not in the project"):
        save_project(tmp_path / "x.masklet", project, masks)
    assert not (tmp_path / "x.masklet").exists()
    masks.remove_object(99)
    project.prompts.append(FramePrompt(0, 1, []))
    with pytest.raises(ValueError, match="same frame"):
        save_project(tmp_path / "x.masklet", project, masks)
    project.prompts.pop()
    project.settings = {"bad": object()}
    with pytest.raises(ValueError, match="JSON"):
        save_project(tmp_path / "x.masklet", project, masks)


def test_project_without_masks_loads(tmp_path):
    path = tmp_path / "empty.masklet"
    project = _project(tmp_path / "v.mp4")
    save_project(path, project, MaskStore(SIZE))
    _, masks = load_project(path)
    assert len(masks) == 0 and masks.num_frames == FRAMES


def _edit(path, fn):
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc))


def _set(keys, value):
    def apply(doc):
        node = doc
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value

    return apply


def _dup_prompt(doc):
    doc["prompts"].append(dict(doc["prompts"][0]))


def _drop_object_7(doc):
    doc["objects"] = doc["objects"][:1]
    doc["prompts"] = doc["prompts"][:1]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_set(["version"], 99), "version 99"),
        (_set(["format"], "other"), "not a Masklet"),
        (lambda d: d.pop("objects"), "missing 'objects'"),
        (_set(["video", "num_frames"], "12"), "num_frames must be int"),
        (_set(["video", "height"], 0), "positive"),
        (_set(["objects", 0, "id"], True), "id must be int"),
        (_set(["objects", 0, "color"], [1, 2, 300]), "color"),
        (_set(["objects", 1, "id"], 1), "not unique"),
        (_set(["prompts", 0, "frame"], FRAMES), "outside the video"),
        (_set(["prompts", 0, "obj_id"], 3), "not a known object"),
        (_set(["prompts", 0, "points"], [[1, 2, 5]]), "points"),
        (_set(["prompts", 0, "points"], [[1, 2]]), "points"),
        (_set(["prompts", 0, "box"], [1, 2, 3]), "box"),
        (_set(["prompts", 1, "mask"], "!!notbase64"), "mask"),
        (_set(["prompts", 1, "mask"], "AAAAAA=="), "mask"),
        (_dup_prompt, "same frame"),
        (_set(["settings"], []), "settings must be dict"),
        (_set(["prompts"], {"a": 1}), "prompts must be list"),
        (_set(["objects", 0], 5), "must be an object"),
        (_set(["masks", "chunk_frames"], 10), "chunk size"),
        (_set(["video", "height"], SIZE[0] + 1), "mask covers 768 pixels but the video is 32x25"),
        (_drop_object_7, "unknown object 7"),
        (_set(["video", "num_frames"], 550), "beyond the video"),
        (_set(["video", "num_frames"], 400), "entry 2 is not a chunk of a 400-frame video"),
        (_set(["masks", "chunks"], [0, 0]), "twice"),
        (_set(["masks", "chunks"], {"0": 1}), "must be a list"),
    ],
)
def test_malformed_json_gives_one_line_project_error(saved, edit, message):
    path, _, _ = saved
    _edit(path, edit)
    with pytest.raises(ProjectError, match=message) as info:
        load_project(path)
    assert "\n" not in str(info.value)
    assert str(info.value).startswith("demo.masklet: ")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "file not found"),
        (b"", "not a valid JSON"),
        (b"{not json", "not a valid JSON"),
        (b"\xff\xfe\x00", "not a valid JSON"),
        (b"[1, 2]", "not a Masklet"),
        (b"[" * 100000, "not a valid JSON"),
    ],
)
def test_unreadable_files(tmp_path, content, message):
    path = tmp_path / "demo.masklet"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ProjectError, match=message):
        load_project(path)


@pytest.mark.parametrize("cut", [0, 10, 40, -1])
def test_damaged_chunk_is_named(saved, cut):
    path, _, _ = saved
    chunk = mask_folder(path) / "chunk-000001.bin"
    data = chunk.read_bytes()
    chunk.write_bytes(data[:cut] if cut >= 0 else data[:-9] + b"\x00" * 9)
    with pytest.raises(ProjectError, match=r"chunk-000001\.bin is damaged"):
        load_project(path)


def test_misnamed_chunk_is_rejected(saved):
    path, _, _ = saved
    folder = mask_folder(path)
    (folder / "chunk-000002.bin").write_bytes((folder / "chunk-000001.bin").read_bytes())
    with pytest.raises(ProjectError, match="holds chunk 1"):
        load_project(path)


def test_fuzzed_json_only_raises_project_error(saved):
    path, _, _ = saved
    original = path.read_bytes()
    rng = np.random.default_rng(1)
    for _ in range(200):
        data = bytearray(original)
        for pos in rng.integers(0, len(data), size=3):
            data[pos] = int(rng.integers(0, 256))
        path.write_bytes(bytes(data))
        try:
            load_project(path)
        except ProjectError as exc:
            assert "\n" not in str(exc)


def test_spilling_store_saves_and_reloads(tmp_path):
    project = _project(tmp_path / "v.mp4")
    small = MaskStore(SIZE, num_frames=FRAMES, memory_budget=1)
    reference = _masks()
    for chunk in reference.chunks():
        for frame, oid, present, data in reference.chunk_entries(chunk):
            small.set_encoded(frame, oid, data, present=present)
    assert not small.is_resident(0)
    path = tmp_path / "spill.masklet"
    save_project(path, project, small)
    _, loaded = load_project(path)
    _assert_same_masks(reference, loaded)


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    import os

    from app.safety import atomic

    target = tmp_path / "f.txt"
    atomic.atomic_write_text(target, "old")
    target.chmod(0o640)
    atomic.atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert target.stat().st_mode & 0o777 == 0o640

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space"):
        atomic.atomic_write_bytes(target, b"never")
    assert target.read_text() == "new"
    assert os.listdir(tmp_path) == ["f.txt"]  # the temporary file is gone
