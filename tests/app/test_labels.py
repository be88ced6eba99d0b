"""The label list: its rules, the project file, the exports' categories, the imports."""

from __future__ import annotations

import json

import pytest
from export_fixtures import FakeReader, box_source

from app.export import ObjectMeta, StoreSource, export
from app.imports import import_annotations
from app.project.files import ObjectInfo, Project, load_project, save_project
from app.project.labels import (
    DEFAULT_CATEGORY,
    Label,
    category_list,
    category_name,
    labels_from_json,
    labels_to_json,
    with_names,
)
from app.project.mask_store import MaskStore

SIZE = (12, 16)
FRAMES = 4
RED, BLUE = (255, 0, 0), (0, 0, 255)


def test_the_rules():
    assert category_name("  ") == DEFAULT_CATEGORY == "object"
    assert category_name(" car ") == "car"
    labels = with_names((Label("car", RED),), ["", " person ", "car", "person"])
    assert [label.name for label in labels] == ["car", "person"]
    assert labels[0].color == RED and labels[1].color != RED
    assert category_list(["truck", "car"], ["car", "", "dog"]) == ["truck", "car", "object", "dog"]
    assert labels_from_json(labels_to_json(labels)) == labels


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"name": "a"}, "must be a list"),
        ([{"name": "", "color": [1, 2, 3]}], "labels[0].name"),
        ([{"name": "a", "color": [1, 2]}], "labels[0].color"),
        ([{"name": "a", "color": [1, 2, True]}], "labels[0].color"),
        ([{"name": "a", "color": [1, 2, 3]}, {"name": "a ", "color": [1, 2, 3]}], "twice"),
        (["a"], "labels[0].name"),
    ],
)
def test_bad_label_lists_are_refused_with_the_place(value, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        labels_from_json(value)


def _project(tmp_path, labels, categories=("car", "")):
    objects = [ObjectInfo(i + 1, f"o{i + 1}", c, RED) for i, c in enumerate(categories)]
    return Project(
        video_path=str(tmp_path / "v.mp4"),
        objects=objects,
        prompts=[],
        settings={},
        num_frames=FRAMES,
        video_size=SIZE,
        labels=tuple(labels),
    )


def test_project_round_trip_keeps_the_list_and_its_order(tmp_path):
    labels = (Label("truck", BLUE), Label("car", RED), Label("unused", (1, 2, 3)))
    path = tmp_path / "p.masklet"
    save_project(path, _project(tmp_path, labels), MaskStore(SIZE, num_frames=FRAMES))
    assert json.loads(path.read_text())["labels"][0] == {"name": "truck", "color": [0, 0, 255]}
    project, _ = load_project(path)
    assert project.labels == labels


def test_older_project_without_labels_gets_its_objects_categories(tmp_path):
    path = tmp_path / "old.masklet"
    save_project(path, _project(tmp_path, ()), MaskStore(SIZE, num_frames=FRAMES))
    doc = json.loads(path.read_text())
    del doc["labels"]
    path.write_text(json.dumps(doc))
    project, _ = load_project(path)
    assert [label.name for label in project.labels] == ["car"]


def test_damaged_label_list_is_one_line(tmp_path):
    path = tmp_path / "bad.masklet"
    save_project(path, _project(tmp_path, ()), MaskStore(SIZE, num_frames=FRAMES))
    doc = json.loads(path.read_text())
    doc["labels"] = [{"name": "x", "color": "red"}]
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"bad.masklet: labels\[0\].color"):
        load_project(path)


def _labelled_source(labels: list[str]) -> StoreSource:
    objects = [ObjectMeta(1, "a", "car"), ObjectMeta(2, "b", "")]
    source = box_source((8, 10), 3, objects)
    source.labels = labels
    return source


@pytest.mark.parametrize("fmt", ["coco", "ytvis"])
def test_json_exports_list_the_labels_in_order_unused_ones_included(tmp_path, fmt):
    out = tmp_path / "out.json"
    export(_labelled_source(["truck", "car"]), fmt, out)
    data = json.loads(out.read_text())
    names = [c["name"] for c in data["categories"]]
    assert names == ["truck", "car", "object"]
    assert [c["id"] for c in data["categories"]] == [1, 2, 3]
    assert {a["category_id"] for a in data["annotations"]} == {2}  # object 1, a "car"


def test_png_objects_file_names_categories_as_coco_does(tmp_path):
    export(_labelled_source(["truck", "car"]), "png", tmp_path / "png")
    export(_labelled_source(["truck", "car"]), "coco", tmp_path / "c.json")
    listed = json.loads((tmp_path / "png" / "objects.json").read_text())
    coco = json.loads((tmp_path / "c.json").read_text())
    assert [o["category"] for o in listed["objects"]] == ["car", "object"]
    assert listed["categories"] == [c["name"] for c in coco["categories"]]


def test_source_without_labels_keeps_first_use_order(tmp_path):
    objects = [ObjectMeta(1, "a", "dog"), ObjectMeta(2, "b", "cat")]
    source = StoreSource(
        name="v", reader=FakeReader((8, 10), 2), store=MaskStore((8, 10)), objects=objects
    )
    export(source, "coco", tmp_path / "c.json")
    names = [c["name"] for c in json.loads((tmp_path / "c.json").read_text())["categories"]]
    assert names == ["dog", "cat"]


def test_imports_bring_the_files_categories_in_order(tmp_path):
    source = box_source(SIZE, 2, [ObjectMeta(1, "a", "car")])
    source.labels = ["zebra", "car", "yak"]
    export(source, "coco", tmp_path / "c.json")
    imported = import_annotations(tmp_path / "c.json", video_size=SIZE, num_frames=2)
    assert imported.categories == ["zebra", "car", "yak"]
    export(source, "ytvis", tmp_path / "y.json")
    imported = import_annotations(tmp_path / "y.json", video_size=SIZE, num_frames=2)
    assert imported.categories == ["zebra", "car", "yak"]
    export(source, "png", tmp_path / "png")
    imported = import_annotations(tmp_path / "png", video_size=SIZE, num_frames=2)
    assert imported.categories == ["zebra", "car", "yak"]
