"""A project's label list: the categories its objects are picked from, in the user's order.

Plain Python, shared by the project file, the exporters, the importers and the GUI. One
rule names the category of an object that has none (`category_name`), so every export
(COCO, YouTube-VIS, the PNG export's `objects.json`) writes the same word for it.
Exports list the labels as their categories in this order, unused ones included.
"""

from __future__ import annotations

import colorsys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from app.safety.limits import MAX_OBJECTS

__all__ = [
    "DEFAULT_CATEGORY",
    "MAX_LABELS",
    "Label",
    "category_list",
    "category_name",
    "labels_from_json",
    "labels_to_json",
    "with_names",
]

# The category of an object nobody gave one (and of a prompts file's object without one).
DEFAULT_CATEGORY = "object"
MAX_LABELS = MAX_OBJECTS
MAX_NAME_CHARS = 200


@dataclass(frozen=True)
class Label:
    name: str
    color: tuple[int, int, int]


def category_name(category: str) -> str:
    """The category an export writes for an object's `category` text."""
    return category.strip() or DEFAULT_CATEGORY


def label_color(index: int) -> tuple[int, int, int]:
    """The colour a new label gets: saturated hues a golden angle apart, so neighbours in
    the list never look alike however long it grows."""
    r, g, b = colorsys.hsv_to_rgb((index * 0.381966) % 1.0, 0.75, 0.95)
    return round(r * 255), round(g * 255), round(b * 255)


def with_names(labels: Sequence[Label], names: Iterable[str]) -> tuple[Label, ...]:
    """`labels`, then a new label (with a fresh colour) for each name not yet listed.

    Names are stripped; empty ones are skipped (no category is not a label)."""
    out = list(labels)
    known = {label.name for label in out}
    for name in names:
        name = name.strip()
        if name and name not in known:
            out.append(Label(name, label_color(len(out))))
            known.add(name)
    return tuple(out)


def category_list(labels: Iterable[str], categories: Iterable[str]) -> list[str]:
    """The categories an export writes: every label name in order, then whatever the
    exported objects use that is not a label (their `category_name`), in order of first use."""
    names = list(labels)
    for category in categories:
        name = category_name(category)
        if name not in names:
            names.append(name)
    return names


def labels_to_json(labels: Sequence[Label]) -> list[dict]:
    return [{"name": label.name, "color": [int(c) for c in label.color]} for label in labels]


def labels_from_json(value: object, where: str = "labels") -> tuple[Label, ...]:
    """The labels of a project file's `labels` list; ValueError naming the bad entry."""
    if not isinstance(value, list):
        raise ValueError(f"{where} must be a list")
    if len(value) > MAX_LABELS:
        raise ValueError(f"{where} has {len(value)} labels, over the limit of {MAX_LABELS}")
    labels: list[Label] = []
    for i, entry in enumerate(value):
        name = entry.get("name") if isinstance(entry, dict) else None
        color = entry.get("color") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_CHARS:
            raise ValueError(f"{where}[{i}].name must be a non-empty string")
        if not _is_color(color):
            raise ValueError(f"{where}[{i}].color must be three integers 0-255")
        if any(label.name == name.strip() for label in labels):
            raise ValueError(f"{where}[{i}]: label {name.strip()!r} is listed twice")
        labels.append(Label(name.strip(), (color[0], color[1], color[2])))
    return tuple(labels)


def _is_color(value: object) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 3
        and all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in value)
    )
