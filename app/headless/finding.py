"""SAM 3's finder in a headless run: `masklet track --find` and a manifest's `find`.

`FindSpec` is what to find (checked phrases, how often, over which score) and with which
checkpoint; `load_finder` loads it (a file problem is a one-line ValueError); `FoundObjects`
turns the finder's instances into what `model.engine.auto_find.AutoFind` adds to the session,
and gives each new object its id, its name "PHRASE N" and its category, the phrase
(`app.project.found`, as the app's Find names them); the score it was found with goes to
the export with it (`app.export.source.finder_score_entry`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.export import ObjectMeta
from app.project.files import MAX_ID
from app.project.found import numbered_names
from model.engine.auto_find import Found, FoundObject, find_phrases

__all__ = [
    "DEFAULT_THRESHOLD",
    "FindSpec",
    "FoundObjects",
    "check_finder_file",
    "load_finder",
    "spec_from_options",
]

# Meta's Sam3Processor's confidence threshold.
DEFAULT_THRESHOLD = 0.5

Note = Callable[[str], None]


@dataclass(frozen=True)
class FindSpec:
    """Phrases to find (checked, `app.headless.phrases.check_phrases`) on the first frame
    tracked and, with `every`, every that many frames; instances scoring over `threshold`."""

    phrases: tuple[str, ...]
    checkpoint: Path
    every: int | None = None
    threshold: float = DEFAULT_THRESHOLD


def spec_from_options(
    phrases: Sequence[str] | None,
    every: int | None,
    threshold: float = DEFAULT_THRESHOLD,
    checkpoint: Path | None = None,
) -> FindSpec | None:
    """The FindSpec of `masklet track`'s options (None without phrases); a missing
    `--finder-checkpoint` is a ValueError (a file problem: there is no finder to load)."""
    from app.headless.phrases import check_phrases

    if not phrases:
        return None
    if checkpoint is None:
        raise ValueError("--find needs SAM 3's finder: give --finder-checkpoint sam3.pt")
    return FindSpec(tuple(check_phrases(phrases)), Path(checkpoint), every, threshold)


def check_finder_file(path: Path) -> None:
    """A missing or non-regular finder checkpoint is refused before anything loads."""
    from model.sam2.checkpoint import check_checkpoint_file

    check_checkpoint_file(path)


def load_finder(path: Path, device: str) -> Any:
    """The finder of a SAM 3 checkpoint, its sizes read off the weights; a file problem is
    one `CheckpointError` line (a ValueError: `model.sam3.checkpoint`)."""
    from model.sam3.checkpoint import load_finder as load

    return load(path, device=device)


class FoundObjects:
    """The finder as `AutoFind` calls it, and the objects it added, named and numbered.

    `taken`: objects already in the run (from prompts or annotations): new ids follow
    theirs, new names continue their numbering.
    """

    def __init__(
        self,
        finder: Any,
        spec: FindSpec,
        precision: str,
        taken: Sequence[ObjectMeta] = (),
        note: Note | None = None,
    ) -> None:
        self._finder = finder
        self._spec = spec
        self._precision = precision  # "exact" or "fast", the tracker's resolved precision
        self._note = note
        self._names = {o.name for o in taken}
        self._next_id = max((o.obj_id for o in taken), default=0) + 1
        self._truncated: set[str] = set()
        # Names this run's frames in the finder's feature cache: a batch worker's finder
        # finds in video after video, whose frame 0s must not share a key.
        self._video = object()
        self.objects: list[ObjectMeta] = []

    @property
    def room(self) -> int:
        """New ids left below MAX_ID."""
        return max(0, MAX_ID - self._next_id + 1)

    def find(self, frame: int, image: np.ndarray) -> list[Found]:
        """Every phrase's instances on `frame` over the threshold (`AutoFind`'s `find`)."""
        return find_phrases(
            self._finder,
            image,
            self._spec.phrases,
            on_truncated=self._truncated_once,
            threshold=self._spec.threshold,
            frame_key=(self._video, frame),
            precision=self._precision,
        )

    def _truncated_once(self, phrase: str) -> None:
        if phrase not in self._truncated:
            self._truncated.add(phrase)
            self._tell(f"{phrase!r} is longer than the finder's 32 tokens: it read the first 32")

    def new_id(self, found: Found) -> int:
        """The next id, and the object's name and category (`AutoFind`'s `new_id`)."""
        obj_id, self._next_id = self._next_id, self._next_id + 1
        name = numbered_names(self._names, found.phrase, 1)[0]
        self._names.add(name)
        score = min(max(float(found.score), 0.0), 1.0)
        self.objects.append(ObjectMeta(obj_id, name, found.phrase, finder_score=score))
        return obj_id

    def report(self, frame: int, added: Sequence[FoundObject]) -> None:
        """One line for a find that added objects."""
        if added:
            names = ", ".join(o.name for o in self.objects[-len(added) :])
            self._tell(f"found {len(added)} on frame {frame}: {names}")

    def _tell(self, text: str) -> None:
        if self._note is not None:
            self._note(text)
