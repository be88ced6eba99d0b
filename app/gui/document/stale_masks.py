"""Which masks a previous model computed: per-object frame flags, and their project form.

After Model > Choose Model or Model > Input Size, the masks on screen were computed by
the model that was loaded before. They stay (recomputing costs seconds a frame on a
CPU) but are marked, hatched in the timeline, until the new model recomputes them (a
propagation or a click over them) or the user accepts them (Model > Accept Previous
Model's Masks, undoable).

The project keeps the marks and the identity of the model the unmarked masks came from
(`app.project.state_identity.checkpoint_identity`) in its free-form `settings`, so they survive
saving and reopening and older projects (neither key) open with no marks. Plain Python:
the document owns one `StaleMarks`.
"""

from __future__ import annotations

import numpy as np

MODEL_KEY = "mask_model"  # identity of the model that computed the unmarked masks
MARKS_KEY = "stale_masks"  # {"obj_id": [[start, stop), ...]} computed by an earlier model


def runs(flags: np.ndarray) -> np.ndarray:
    """(K, 2) int start/stop (exclusive) of the runs where `flags` is true."""
    hit = np.concatenate(([False], np.asarray(flags, dtype=bool), [False]))
    edges = np.flatnonzero(hit[1:] != hit[:-1])
    return edges.reshape(-1, 2)


class StaleMarks:
    """One (num_frames,) bool track per object: true where an earlier model made the mask."""

    def __init__(self) -> None:
        self._n = 0
        self._tracks: dict[int, np.ndarray] = {}

    def reset(self, num_frames: int) -> None:
        self._n = num_frames
        self._tracks.clear()

    def add(self, obj_id: int) -> None:
        self._tracks[obj_id] = np.zeros(self._n, dtype=bool)

    def remove(self, obj_id: int) -> None:
        self._tracks.pop(obj_id, None)

    def clear(self, frame: int, obj_id: int) -> None:
        track = self._tracks.get(obj_id)
        if track is not None and 0 <= frame < track.size:
            track[frame] = False

    def mark(self, obj_id: int, frames: np.ndarray) -> None:
        """Mark the frames where the (num_frames,) bool `frames` is true."""
        if obj_id in self._tracks:
            self._tracks[obj_id] |= frames

    def track(self, obj_id: int) -> np.ndarray:
        """Read-only (num_frames,) bool view; all false for an unknown object."""
        view = self._tracks.get(obj_id, np.zeros(self._n, dtype=bool)).view()
        view.flags.writeable = False
        return view

    def count(self) -> int:
        return int(sum(int(t.sum()) for t in self._tracks.values()))

    def snapshot(self) -> dict[int, np.ndarray]:
        return {obj_id: t.copy() for obj_id, t in self._tracks.items()}

    def restore(self, snapshot: dict[int, np.ndarray]) -> None:
        for obj_id, track in self._tracks.items():
            track[:] = snapshot.get(obj_id, False)

    def to_json(self) -> dict[str, list[list[int]]]:
        return {
            str(obj_id): [[int(a), int(b)] for a, b in runs(track)]
            for obj_id, track in self._tracks.items()
            if track.any()
        }

    def load_json(self, value: object) -> None:
        """Marks from a project's settings; anything malformed is ignored, as a lost hint."""
        if not isinstance(value, dict):
            return
        for key, spans in value.items():
            obj_id = int(key) if isinstance(key, str) and key.isdigit() else None
            track = self._tracks.get(obj_id) if obj_id is not None else None
            if track is None or not isinstance(spans, list):
                continue
            for span in spans[: self._n]:
                if _is_span(span, self._n):
                    track[span[0] : span[1]] = True


def _is_span(span: object, n: int) -> bool:
    if not isinstance(span, list) or len(span) != 2:
        return False
    a, b = span
    ints = all(isinstance(v, int) and not isinstance(v, bool) for v in span)
    return ints and 0 <= a < b <= n


def describe_model(identity: str) -> str:
    """ "sam2.1-tiny at 1024 px" from a `checkpoint_identity` string ("c1:VARIANT:SIZE:...")."""
    parts = identity.split(":")
    if len(parts) >= 3 and parts[0] == "c1":
        return f"{parts[1]} at {parts[2]} px" if parts[2] not in ("", "0") else parts[1]
    return "the previous model"
