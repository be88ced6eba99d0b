"""The finder's score of an object found by phrase is saved with it and read back; objects
nobody found are saved as before (no "finder_score"); a bad stored score is one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app.project.files import ObjectInfo, Project, ProjectError, load_project, save_project
from app.project.mask_store import MaskStore

SIZE = (16, 20)


def _save(tmp_path, objects) -> str:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"fake")
    path = tmp_path / "found.masklet"
    project = Project(str(video), objects, [], {}, 4, SIZE)
    store = MaskStore(SIZE, num_frames=4)
    store.set(0, 1, np.ones(SIZE, bool))
    save_project(path, project, store)
    return str(path)


def test_finder_score_round_trips_and_unfound_objects_have_none(tmp_path):
    path = _save(
        tmp_path,
        [
            ObjectInfo(1, "bicycle 1", "bicycle", (255, 0, 0), finder_score=0.875),
            ObjectInfo(2, "object 2", "", (0, 255, 0)),
        ],
    )
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    assert doc["objects"][0]["finder_score"] == 0.875 and "finder_score" not in doc["objects"][1]
    project, _store = load_project(path)
    assert [o.finder_score for o in project.objects] == [0.875, None]


def test_a_bad_stored_score_is_one_line(tmp_path):
    path = _save(tmp_path, [ObjectInfo(1, "cat 1", "cat", (1, 2, 3), finder_score=0.5)])
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    doc["objects"][0]["finder_score"] = "high"
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f)
    with pytest.raises(ProjectError, match="finder_score must be a number") as info:
        load_project(path)
    assert "\n" not in str(info.value)
