"""Prompts file schema: valid files parse to arrays, bad ones name the offending place."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from app.headless.prompts_file import PromptsError, PromptsFile, load_prompts

VALID = {
    "version": 1,
    "objects": [
        {
            "id": 1,
            "name": "car",
            "category": "vehicle",
            "prompts": [{"frame": 0, "points": [[10, 20, 1], [30.5, 5, 0]], "box": [1, 2, 50, 60]}],
        },
        {
            "id": 4,
            "prompts": [{"frame": 3, "box": [0, 0, 8, 8]}, {"frame": 5, "points": [[1, 1, 1]]}],
        },
    ],
}


def test_valid_file_parses(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(VALID))
    prompts = load_prompts(path)
    car, other = prompts.objects
    assert (car.obj_id, car.name, car.category) == (1, "car", "vehicle")
    assert (other.name, other.category) == ("object 4", "object")
    first = car.prompts[0]
    np.testing.assert_array_equal(first.points, np.float32([[10, 20], [30.5, 5]]))
    np.testing.assert_array_equal(first.labels, np.int32([1, 0]))
    np.testing.assert_array_equal(first.box, np.float32([1, 2, 50, 60]))
    assert other.prompts[0].points is None and other.prompts[1].box is None
    assert [p.frame for p in other.prompts] == [3, 5]
    prompts.check_video(num_frames=6, video_size=(64, 64))


def broken(path: str, value) -> dict:
    """VALID with the value at a dotted path replaced (or deleted when value is ...)."""
    data = copy.deepcopy(VALID)
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node = data
    for key in parents:
        node = node[key]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "prompts file: expected an object"),
        ({"objects": []}, "objects: expected a non-empty list"),
        (broken("version", 2), "version: unsupported version 2"),
        (broken("objects.0.colour", "red"), r"objects\[0\]: unknown key 'colour'"),
        (broken("objects.1.id", 1), r"objects\[1\].id: id 1 is used twice"),
        (broken("objects.1.id", 0), r"objects\[1\].id: expected an integer in 1-2147483647"),
        (broken("objects.1.id", 2**31), r"objects\[1\].id: expected an integer in 1-2147483647"),
        (broken("objects.0.name", ""), r"objects\[0\].name: expected a non-empty string"),
        (broken("objects.0.prompts", []), r"objects\[0\].prompts: expected a non-empty list"),
        (
            broken("objects.1.prompts.0.box", [1, 2, 3]),
            r"objects\[1\].prompts\[0\].box: expected 4 numbers",
        ),
        (broken("objects.1.prompts.0.box", [5, 0, 1, 8]), r"prompts\[0\].box: needs x0 < x1"),
        (
            broken("objects.1.prompts.0.frame", -1),
            r"prompts\[0\].frame: expected a frame index >= 0",
        ),
        (
            broken("objects.1.prompts.0.box", ...),
            r"objects\[1\].prompts\[0\]: needs 'points', 'box'",
        ),
        (broken("objects.0.prompts.0.points.1", [1, 2]), r"points\[1\]: expected \[x, y, label\]"),
        (broken("objects.0.prompts.0.points.1", [1, 2, 2]), r"points\[1\]: label must be 1"),
        (
            broken("objects.0.prompts.0.points.0", ["a", 2, 1]),
            r"points\[0\]: x and y must be numbers",
        ),
        (
            broken("objects.1.prompts.1.frame", 3),
            r"prompts\[1\].frame: frame 3 already has a prompt",
        ),
    ],
)
def test_malformed_prompts_name_the_path(data, message):
    with pytest.raises(PromptsError, match=message) as info:
        PromptsFile.parse(data)
    assert "\n" not in str(info.value)


def test_check_video_bounds():
    prompts = PromptsFile.parse(VALID)
    with pytest.raises(
        PromptsError,
        match=r"objects\[1\].prompts\[1\].frame: 5 is past the end of the video .5 frames",
    ):
        prompts.check_video(num_frames=5, video_size=(64, 64))
    with pytest.raises(
        PromptsError, match=r"objects\[0\].prompts\[0\]: point \(50, 60\) is outside the 40x64"
    ):
        prompts.check_video(num_frames=9, video_size=(64, 40))


def test_unreadable_files(tmp_path):
    with pytest.raises(PromptsError, match="cannot read prompts file"):
        load_prompts(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(PromptsError, match=r"bad.json: not valid JSON \(.* at line 1 column 2\)"):
        load_prompts(tmp_path / "bad.json")


def test_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "windows.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(VALID).encode())
    assert [obj.obj_id for obj in load_prompts(path).objects] == [1, 4]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"objects": [\xff]}', r"bad.json: not UTF-8 text \(byte 13 is 0xff\)"),
        (b"[" * 100_000 + b"]" * 100_000, r"bad.json: nested more than 64 levels deep"),
        (b'{"objects": [{"id": 1' + b"0" * 400 + b"}]}", r"bad.json: an integer of 401 digits"),
        (b'{"objects": NaN}', r"bad.json: NaN is not a valid JSON number"),
        (b'{"objects": [1e999]}', r"bad.json: the number 1e999 is too large"),
    ],
)
def test_hostile_json_is_refused_naming_the_file(tmp_path, raw, message):
    path = tmp_path / "bad.json"
    path.write_bytes(raw)
    with pytest.raises(PromptsError, match=message) as info:
        load_prompts(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "value", [1e300, -1e300, 10**19, -(10**19), 99999999999999999999, float("nan"), float("inf")]
)
def test_coordinates_that_overflow_float32_are_refused(value, recwarn):
    with pytest.raises(PromptsError, match=r"points\[0\]: x and y must be numbers within"):
        PromptsFile.parse(broken("objects.0.prompts.0.points.0", [value, 2, 1]))
    with pytest.raises(PromptsError, match=r"box: expected 4 numbers \[x0, y0, x1, y1\] within"):
        PromptsFile.parse(broken("objects.0.prompts.0.box", [0, 0, value, 5]))
    assert not recwarn.list  # numpy's overflow warning would be a second stderr line


def test_counts_over_the_limits_are_refused(monkeypatch):
    import app.headless.prompts_file as module

    many_points = [[1, 1, 1]] * (module.MAX_POINTS_PER_PROMPT + 1)
    with pytest.raises(PromptsError, match=r"points: 1025 points, over the limit of 1024"):
        PromptsFile.parse(broken("objects.0.prompts.0.points", many_points))
    monkeypatch.setattr(module, "MAX_OBJECTS", 1)
    with pytest.raises(PromptsError, match=r"objects: 2 objects, over the limit of 1"):
        PromptsFile.parse(VALID)


def test_non_regular_files_are_refused(tmp_path):
    with pytest.raises(PromptsError, match=r"cannot read prompts file .*: is a folder, not a file"):
        load_prompts(tmp_path)
    big = tmp_path / "big.json"
    with open(big, "wb") as f:
        f.truncate(17 * 2**20)  # sparse: takes no disk space
    with pytest.raises(PromptsError, match=r"big.json: is 17 MiB, over the 16 MiB limit"):
        load_prompts(big)
