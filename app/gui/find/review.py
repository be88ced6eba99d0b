"""Proposals under review (plain Python): what a Find found, what is shown, what was rejected.

`Review` holds one Find's proposals on its frame until each is accepted or rejected;
the threshold only chooses which are shown, so moving it never runs the model again.
`RejectedProposals` remembers what the user rejected: a proposal whose mask matches a
rejected one (IoU over `SAME_MASK_IOU`) on the same frame for the same phrase is not
proposed again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from app.gui.worker.jobs import FindResult, FoundMask

# Two masks this alike (IoU) are one proposal, for remembering rejections.
SAME_MASK_IOU = 0.5
DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class Proposal:
    """One found instance: its rank in the Find, score, box and cropped mask."""

    rank: int
    score: float
    box: tuple[float, float, float, float]
    mask: FoundMask


def crop_iou(a: FoundMask, b: FoundMask) -> float:
    """IoU of two cropped masks of one frame, counted where their crops overlap only."""
    ha, wa = a.crop.shape
    hb, wb = b.crop.shape
    x0, y0 = max(a.x0, b.x0), max(a.y0, b.y0)
    x1, y1 = min(a.x0 + wa, b.x0 + wb), min(a.y0 + ha, b.y0 + hb)
    inter = 0
    if x0 < x1 and y0 < y1:
        pa = a.crop[y0 - a.y0 : y1 - a.y0, x0 - a.x0 : x1 - a.x0]
        pb = b.crop[y0 - b.y0 : y1 - b.y0, x0 - b.x0 : x1 - b.x0]
        inter = int(np.count_nonzero(pa & pb))
    union = int(np.count_nonzero(a.crop)) + int(np.count_nonzero(b.crop)) - inter
    return inter / union if union else 0.0


def query_key(phrase: str | None) -> str:
    """What "the same phrase" means for rejections: case and spacing do not count."""
    return " ".join((phrase or "").lower().split())


@dataclass
class RejectedProposals:
    """Masks the user rejected, by (frame, phrase key)."""

    _masks: dict[tuple[int, str], list[FoundMask]] = field(default_factory=dict)

    def reject(self, frame: int, phrase: str | None, mask: FoundMask) -> None:
        self._masks.setdefault((frame, query_key(phrase)), []).append(mask)

    def is_rejected(self, frame: int, phrase: str | None, mask: FoundMask) -> bool:
        rejected = self._masks.get((frame, query_key(phrase)), [])
        return any(crop_iou(mask, old) > SAME_MASK_IOU for old in rejected)

    def clear(self) -> None:
        self._masks.clear()


class Review:
    """One Find's proposals not yet accepted or rejected, best first."""

    def __init__(self, result: FindResult, rejected: RejectedProposals) -> None:
        self.frame = result.frame
        self.phrase = result.phrase
        self.pending: list[Proposal] = [
            Proposal(i, float(s), tuple(float(v) for v in b), m)  # type: ignore[arg-type]
            for i, (s, b, m) in enumerate(
                zip(result.scores, result.proposal_boxes, result.masks, strict=True)
            )
            if m.crop.size and not rejected.is_rejected(result.frame, result.phrase, m)
        ]
        self.found = len(result.scores)

    def shown(self, threshold: float) -> list[Proposal]:
        """The pending proposals scoring over `threshold` (as Meta's processor keeps them:
        compared in float32, the scores' type)."""
        bar = np.float32(threshold)
        return [p for p in self.pending if np.float32(p.score) > bar]

    def take(self, proposals: list[Proposal]) -> None:
        """`proposals` leave the review (accepted or rejected)."""
        ranks = {p.rank for p in proposals}
        self.pending = [p for p in self.pending if p.rank not in ranks]
