"""The engine state store: a session saved, restored in a new session, continues exactly.

Exactness is bit for bit (`torch.equal`): a restored session must read back the very bytes
the first one computed, so the same corrections and propagations give the same logits.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from model.engine.session import Prompt, TrackingSession
from model.engine.state_store import StateIdentity, StateStoreError, state_folder
from model.engine.state_store_budget import Candidate, choose_evictions, describe_dropped
from model.sam2.build import build_model
from model.sam2.config import get_config

H, W = 48, 64
N = 20  # more frames than the session keeps in RAM, so some outputs are spilled
ID = StateIdentity(video="video-fingerprint", checkpoint="tiny-random")


class Video:
    def __len__(self) -> int:
        return N

    def __getitem__(self, index: int) -> np.ndarray:
        img = np.full((H, W, 3), 30, np.uint8)
        img[10:30, 5 + 2 * index : 25 + 2 * index] = (200, 80, 60)
        img[30:44, 40 - index : 52 - index] = (40, 200, 90)
        return img


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(get_config("sam2.1-tiny", image_size=64))


def _session(model) -> TrackingSession:
    return TrackingSession(model, Video(), device="cpu")


def _click(x: float, y: float, label: int = 1) -> Prompt:
    return Prompt(points=np.array([[x, y]]), labels=np.array([label]))


MASK = np.zeros((H, W), bool)
MASK[30:44, 38:52] = True
FIRST = [(0, 1, _click(15, 20)), (0, 2, Prompt(mask=MASK)), (12, 1, _click(40, 20))]
CORRECTION = [(6, 1, _click(20, 18, 0)), (15, 2, _click(30, 35))]


def _prompt_all(session: TrackingSession, prompts) -> None:
    for frame, obj, prompt in prompts:
        session.add_prompt(frame, obj, prompt)


def _continue(session: TrackingSession) -> None:
    _prompt_all(session, CORRECTION)
    list(session.propagate(0, "forward"))
    list(session.propagate(N - 1, "backward"))


def _state(session: TrackingSession) -> dict:
    """Every stored tensor of every object and frame, read back through the memory bank."""
    out = {}
    for o in session.object_ids:
        track = session._tracks[o]
        for f in sorted(track.outputs):
            x = session._bank.tensors(o, track, f)
            out[(o, f)] = (x.logits, x.obj_ptr, x.score, x.memory, track.outputs[f].is_cond)
    return out


def _assert_identical(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        for x, y in zip(a[key], b[key], strict=True):
            if isinstance(x, torch.Tensor):
                assert x.dtype == y.dtype and torch.equal(x, y), key
            else:
                assert x == y, key


@pytest.fixture(scope="module")
def uninterrupted(model) -> dict:
    session = _session(model)
    _prompt_all(session, FIRST)
    list(session.propagate())
    _continue(session)
    return _state(session)


def _resumed(model, folder, **save_kwargs) -> tuple[TrackingSession, object]:
    first = _session(model)
    _prompt_all(first, FIRST)
    list(first.propagate())
    report = first.save_state(folder, ID, **save_kwargs)
    second = _session(model)
    second.restore_state(folder, ID, expected_prompts={(1, 0), (2, 0), (1, 12)})
    _prompt_all(second, FIRST)  # the app re-sends every prompt of the project
    return second, report


def test_resume_then_correct_and_propagate_is_exact(model, uninterrupted, tmp_path) -> None:
    folder = state_folder(tmp_path / "clip.masklet")
    second, report = _resumed(model, folder)
    assert folder.name == "clip.masklet-state"
    assert report.dropped == 0 and report.written == 2 * N + 1  # outputs + one mask prompt
    # Restored lazily: no output's tensors are read until the session needs them.
    assert all(o.tensors is None for t in second._tracks.values() for o in t.outputs.values())
    # Saving the restored session back to its store writes nothing new.
    assert second.save_state(folder, ID).written == 0
    _continue(second)
    _assert_identical(_state(second), uninterrupted)


def test_pending_prompts_are_saved_as_they_are(model, tmp_path) -> None:
    def run(session: TrackingSession, folder=None) -> dict:
        _prompt_all(session, FIRST)
        if folder is not None:
            session.save_state(folder, ID)
            session = _session(model)
            session.restore_state(folder, ID)
            _prompt_all(session, FIRST)
        # A click before any propagation reads the unencoded prompts' stashed state.
        session.add_prompt(12, 1, _click(42, 22))
        list(session.propagate())
        return _state(session)

    _assert_identical(run(_session(model), tmp_path / "s"), run(_session(model)))


def test_saves_are_incremental(model, tmp_path) -> None:
    session = _session(model)
    _prompt_all(session, FIRST)
    list(session.propagate())
    first = session.save_state(tmp_path, ID)
    again = session.save_state(tmp_path, ID)
    assert again.written == 0 and again.bytes == first.bytes
    session.add_prompt(16, 2, _click(30, 35))
    list(session.propagate())
    changed = session.save_state(tmp_path, ID)
    # Frames 16..19 of object 2 changed (16 re-prompted); nothing else is rewritten.
    assert changed.written == 4
    listed = json.loads((tmp_path / "index.json").read_text())
    files = {e["file"] for o in listed["objects"] for k in ("outputs", "masks") for e in o[k]}
    assert files == {p.name for p in tmp_path.glob("*.bin")}


def test_store_size_matches_tensor_sizes(model, tmp_path) -> None:
    session = _session(model)
    _prompt_all(session, FIRST[:1])
    list(session.propagate())
    report = session.save_state(tmp_path, ID)
    cfg, s = model.cfg, model.image_size
    per_frame = 4 * (s // 4) ** 2 + 4 * cfg.hidden_dim + 4 + 2 * cfg.mem_dim * (s // 16) ** 2
    masks = sum(o.mask.nbytes for o in session._tracks[1].outputs.values())
    assert report.bytes == N * per_frame + masks
    assert sum(p.stat().st_size for p in tmp_path.glob("*.bin")) == report.bytes


def test_stale_identity_is_refused(model, tmp_path) -> None:
    session = _session(model)
    _prompt_all(session, FIRST[:1])
    session.save_state(tmp_path, ID)
    for other, what in (
        (StateIdentity("another video", ID.checkpoint), "video changed"),
        (StateIdentity(ID.video, "another model"), "model changed"),
    ):
        fresh = _session(model)
        with pytest.raises(StateStoreError, match=what):
            fresh.restore_state(tmp_path, other)
        assert fresh.object_ids == []
    with pytest.raises(StateStoreError, match="prompts changed"):
        _session(model).restore_state(tmp_path, ID, expected_prompts={(1, 0), (1, 5)})
    with pytest.raises(StateStoreError, match="no saved engine state"):
        _session(model).restore_state(tmp_path / "missing", ID)


def _saved(model, folder) -> None:
    session = _session(model)
    _prompt_all(session, FIRST[:1])
    list(session.propagate(0))
    session.save_state(folder, ID)


@pytest.mark.parametrize("damage", ["truncate", "index", "layout", "size", "delete"])
def test_damaged_store_is_refused_before_use(model, tmp_path, damage) -> None:
    _saved(model, tmp_path)
    index = json.loads((tmp_path / "index.json").read_text())
    victim = tmp_path / index["objects"][0]["outputs"][3]["file"]
    if damage == "truncate":
        victim.write_bytes(victim.read_bytes()[:100])
    elif damage == "delete":
        victim.unlink()
    elif damage == "index":
        (tmp_path / "index.json").write_bytes(b'{"header": {"format": [1, 2')
    elif damage == "layout":
        index["layout"]["memory"]["shape"] = [1, 2**20, 2**20]
        (tmp_path / "index.json").write_text(json.dumps(index))
    else:
        index["objects"][0]["outputs"][3]["size"] = 2**39
        (tmp_path / "index.json").write_text(json.dumps(index))
    fresh = _session(model)
    with pytest.raises(StateStoreError):
        fresh.restore_state(tmp_path, ID)
    assert fresh.object_ids == []


def test_corrupted_bytes_are_caught_when_read(model, tmp_path) -> None:
    _saved(model, tmp_path)
    index = json.loads((tmp_path / "index.json").read_text())
    victim = tmp_path / index["objects"][0]["outputs"][3]["file"]
    data = bytearray(victim.read_bytes())
    data[10] ^= 0xFF
    victim.write_bytes(bytes(data))
    fresh = _session(model)
    fresh.restore_state(tmp_path, ID)  # sizes are right: the index is accepted
    with pytest.raises(StateStoreError, match="checksum"):
        fresh._low_res_logits(1, index["objects"][0]["outputs"][3]["frame"])


def test_over_budget_drops_far_frames_and_retracks_them_exactly(model, tmp_path) -> None:
    first = _session(model)
    _prompt_all(first, FIRST)
    list(first.propagate())
    before = _state(first)
    full = first.save_state(tmp_path / "full", ID)
    budget = full.bytes - 5 * (full.bytes // (2 * N + 2))
    report = first.save_state(tmp_path / "s", ID, budget_bytes=budget, recent_frames=[0])
    assert report.dropped >= 5 and report.bytes <= budget
    second = _session(model)
    restored = second.restore_state(tmp_path / "s", ID)
    assert restored.retrack == report.dropped
    dropped = [(o, f) for o in (1, 2) for f in range(N) if f not in second._tracks[o].outputs]
    assert len(dropped) == report.dropped
    assert all(f not in (0, 12) for _, f in dropped)  # keyframes are never dropped
    _prompt_all(second, FIRST)
    visited = {r.frame for r in second.propagate()}
    assert {f for _, f in dropped} <= visited
    # Re-tracked from the state kept before them, the dropped frames come back bit for bit.
    _assert_identical(_state(second), before)


def test_eviction_order_prefers_frames_far_from_keyframes_and_the_user() -> None:
    cands = [Candidate(1, f, 10) for f in range(20) if f not in (0, 10)]
    dropped = choose_evictions(cands, 200, 170, {1: [0, 10]}, recent_frames=[16])
    assert dropped == {(1, 5), (1, 4), (1, 6)}
    assert choose_evictions(cands, 100, 170, {1: [0]}) == set()
    line = describe_dropped(3, 2 * 2**30)
    assert line == "3 frames will be re-tracked: their saved state was dropped to stay under 2 GB"
