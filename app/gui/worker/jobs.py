"""Messages between the GUI and the inference worker: requests out, results back.

Every message is a frozen dataclass carrying its request id, so the GUI can drop the
answers to requests that a newer one has superseded.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.gui.worker.engine import FrameSource


# ---- requests (GUI -> worker) ----------------------------------------------------------------
@dataclass(frozen=True)
class LoadModel:
    request_id: int
    checkpoint: str
    device: str
    image_size: int | None = None  # Model > Input Size; None: the checkpoint's own size


@dataclass(frozen=True)
class LoadFinder:
    """Load SAM 3's finder (`sam3.pt`) beside the tracker; the tracker is untouched."""

    request_id: int
    checkpoint: str
    device: str


@dataclass(frozen=True)
class OpenVideo:
    request_id: int
    open_source: Callable[[], FrameSource]


@dataclass(frozen=True)
class SetPrompts:
    """All prompts of one (frame, object); no points, box or mask clears them."""

    request_id: int
    frame: int
    obj_id: int
    points: np.ndarray  # (N, 2) float32 xy video px
    labels: np.ndarray  # (N,) int32, 1 positive / 0 negative
    box: np.ndarray | None  # (4,) xyxy
    # A mask prompt as `encode_rle` bytes, decoded by the worker: many imported keyframes
    # can be queued at once, and full arrays would hold one video-sized mask each.
    mask_rle: bytes | None = None


# Meta's Sam3Processor confidence_threshold: the finder's default while propagating.
DEFAULT_FIND_THRESHOLD = 0.5


@dataclass(frozen=True)
class PassFind:
    """What a propagation should find: these phrases every `every` frames, over `threshold`."""

    phrases: tuple[str, ...]
    every: int = 16  # model.engine.auto_find.DEFAULT_EVERY
    threshold: float = DEFAULT_FIND_THRESHOLD


@dataclass(frozen=True)
class Propagate:
    request_id: int
    start: int
    direction: str
    find: PassFind | None = None  # find new instances while propagating (pass_finding.py)


@dataclass(frozen=True)
class RemoveObject:
    request_id: int
    obj_id: int


@dataclass(frozen=True)
class SetPrecision:
    """Compute from the next request on in `precision`: auto, exact or fast."""

    request_id: int
    precision: str


@dataclass(frozen=True)
class Find:
    """Find a phrase's instances and/or ones like exemplar boxes on one frame (SAM 3's
    finder; app.gui.worker.finding); `cancel`, set by the GUI, stops it within a second."""

    request_id: int
    frame: int
    phrase: str | None
    boxes: np.ndarray | None  # (N, 4) float32 x0, y0, x1, y1 video px
    box_labels: np.ndarray | None  # (N,) bool, True: like this one, False: not like this
    cancel: threading.Event = field(default_factory=threading.Event, compare=False)


@dataclass(frozen=True)
class Focus:
    request_id: int
    frame: int


@dataclass(frozen=True)
class SaveState:
    """Write the session's engine state into a state store folder (a project's sidecar)."""

    request_id: int
    folder: str
    video_path: str
    budget_bytes: int
    explicit: bool = False  # the user saved: report the store's size


@dataclass(frozen=True)
class RestoreState:
    """Continue from a saved engine state, if it is valid for this video, model and prompts."""

    request_id: int
    folder: str
    video_path: str
    prompts: frozenset[tuple[int, int]]  # (obj_id, frame) of every prompt set of the project


# ---- results (worker -> GUI) -----------------------------------------------------------------
@dataclass(frozen=True)
class ModelInfo:
    request_id: int
    variant: str
    device: str
    image_size: int = 0  # the input size it runs at; 0 where unknown (a fake model)
    # `app.project.state_identity.checkpoint_identity`: weights and size, not device or precision;
    # masks computed under another identity are marked until recomputed (stale_masks).
    identity: str = ""


@dataclass(frozen=True)
class FinderInfo:
    """The finder loaded: its file, size and how long loading took."""

    request_id: int
    checkpoint: str
    device: str
    parameters: int
    seconds: float


@dataclass(frozen=True)
class FoundMask:
    """A found mask cropped to its bounding box: `crop` (h, w) bool whose top-left pixel is
    (x0, y0) of the frame, so fifty proposals of a 4K frame cost kilobytes, not 400 MB."""

    x0: int
    y0: int
    crop: np.ndarray

    def full(self, size: tuple[int, int]) -> np.ndarray:
        """The (H, W) bool mask at the frame's size."""
        out = np.zeros(size, dtype=bool)
        h, w = self.crop.shape
        out[self.y0 : self.y0 + h, self.x0 : self.x0 + w] = self.crop
        return out


@dataclass(frozen=True)
class FindResult:
    """What a `Find` found, best first, every score over the worker's floor (the GUI's
    threshold shows more or fewer of them without running the model again). `error` is
    one line for the user when nothing could be found (no finder, bad boxes); `cancelled`
    when the GUI stopped it."""

    request_id: int
    frame: int
    phrase: str | None
    boxes: np.ndarray | None
    box_labels: np.ndarray | None
    scores: np.ndarray  # (K,) float32 in [0, 1], descending
    proposal_boxes: np.ndarray  # (K, 4) float32 x0, y0, x1, y1 video px
    masks: tuple[FoundMask, ...]
    cancelled: bool = False
    error: str = ""
    seconds: float = 0.0
    truncated: bool = False  # the phrase had more than the finder's 32 tokens: it read those


@dataclass(frozen=True)
class SessionInfo:
    request_id: int
    num_frames: int
    video_size: tuple[int, int]


@dataclass(frozen=True)
class MaskResult:
    """One object's mask on one frame after a prompt change; `mask` None means cleared."""

    request_id: int
    frame: int
    obj_id: int
    mask: np.ndarray | None  # (H, W) bool
    score: float = 0.0
    iou: float = float("nan")  # the decoder's predicted IoU; NaN = unknown


@dataclass(frozen=True)
class FrameMasks:
    """All objects' propagated results for one frame; None marks "predicted absent"."""

    request_id: int
    frame: int
    masks: dict[int, np.ndarray | None]
    # obj_id -> (predicted IoU, object-score logit), for absent objects too.
    quality: dict[int, tuple[float, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class FoundInPass:
    """New instances found on `frame` during propagation `request_id`, best first; `error` is
    one line when finding failed (the pass goes on without it)."""

    request_id: int
    frame: int
    phrases: tuple[str, ...] = ()  # per instance
    scores: tuple[float, ...] = ()
    masks: tuple[bytes, ...] = ()  # `encode_rle` of (H, W) bool at the video's size
    error: str = ""


@dataclass(frozen=True)
class Progress:
    """`done` counts the distinct frames of the pass's range computed so far (frames a
    correction made it compute again count once), out of the `total` in the range."""

    request_id: int
    done: int
    total: int
    fps: float
    # Frames/s over the last few representative frames (app.headless.eta.RecentRate): the ETA uses
    # it alone, since the first frames cost less and the cost grows while the memory bank
    # fills; 0 while unknown (the app says "estimating…").
    recent_fps: float = 0.0

    @property
    def eta_s(self) -> float:
        rate = self.recent_fps
        return (self.total - self.done) / rate if rate > 0 else float("inf")


@dataclass(frozen=True)
class PropagationSummary:
    request_id: int
    frames: int
    cancelled: bool


@dataclass(frozen=True)
class JobError:
    request_id: int
    action: str
    message: str
    details: str = ""


@dataclass(frozen=True)
class EngineStats:
    device: str
    variant: str
    cache_bytes: int
    precision: str = ""  # what the model computes in: "bf16" or "float32"
    precision_note: str = ""  # why that one, in one line
    # The Model > Precision choice in effect (auto, exact, fast): a choice made while the
    # worker was busy takes effect later, and stats sent before that still say the old one.
    precision_choice: str = ""


@dataclass(frozen=True)
class Activity:
    """What the worker has just started (`action` as in `JobError`), or "" once idle.

    Sent when a request starts and again when it ends (with what the worker goes back
    to: the propagation an edit ran inside of, or idle), so the canvas badge always says
    what the worker is doing now."""

    request_id: int
    action: str
    frame: int | None = None


@dataclass(frozen=True)
class StateReport:
    """How saving or restoring the engine state went, as one line for the status bar."""

    request_id: int
    action: str  # "saved", "restored" or "ignored"
    message: str
    bytes: int = 0
    dropped: int = 0  # frames left out of the store (saved) or to re-track (restored)


@dataclass
class PendingBook:
    """Requests the GUI has sent that the worker has not started; shared, lock-guarded.

    `queue` holds them in the order sent: the worker takes prompt edits from its head
    between two frames of a propagation, so they never wait for the pass to end.
    """

    lock: threading.Lock = field(default_factory=threading.Lock)
    count: int = 0
    latest: dict[Any, int] = field(default_factory=dict)
    queue: deque[Any] = field(default_factory=deque)
