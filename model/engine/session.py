"""The video tracking engine: prompts in, per-frame masks out (plain Python, no Qt).

`TrackingSession` follows SAM 2's video predictor with every prompted frame a
conditioning frame ("keyframe"; `add_all_frames_to_correct_as_cond`), and adds:

- frames are read from the `FrameSource` only when needed; image-encoder outputs
  are shared by all objects, so several objects cost one encoder pass per frame,
  and the rest of the model runs on them as a batch (objects whose memories line
  up are stacked; the reference loops over objects); a small window of them stays
  cached for clicks, a propagation adds none (`model.engine.frame_features`);
- objects can be added, prompted, cleared and removed at any time, in any order;
- "local" propagation recomputes, per object, only from each edited frame up to
  its next keyframe; "full" recomputes the whole video as the reference does;
- propagation is a generator, cancellable between frames, keeping what it did
  (`model.engine.propagation` runs the passes);
- results are kept as packed bit masks (`model.engine.results`), and memory tensors
  beyond the window the memory selection reads are spilled to disk and read back
  exactly (see `model.engine.memory_bank` for the design and why it stays exact).

This module holds the session itself: its state, prompts and the memory lookups shared
by clicks and propagation; saving and restoring it is `model.engine.state_store_session`.

Undoing an edit (sending a frame's earlier prompts again) puts back the frame's state
from before it exactly (`model.engine.prompt_history`).

A prompt's own output is encoded into memory lazily, at the next propagation,
as the reference does; until then the frame's previous output is still what the
memory selection of other clicks sees.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

from model.engine import propagation
from model.engine.conditioned_cache import ConditionedCache
from model.engine.feature_cache import DEFAULT_WINDOW_FRAMES
from model.engine.frame_features import FrameFeatures
from model.engine.frames import FrameSource
from model.engine.memory_bank import MemoryBank, ObjectTrack
from model.engine.postprocess import fill_holes_and_specks
from model.engine.precision import resolve_precision
from model.engine.prompt_history import PromptHistory
from model.engine.prompts import (
    FrameResult,
    ObjectResult,
    Prompt,
    mask_input,
    point_inputs,
    validate_prompt,
)
from model.engine.propagation import DIRECTIONS, MODES
from model.engine.results import restore_output, store_outputs
from model.engine.state_store import StateIdentity
from model.engine.state_store_session import (
    RestoreReport,
    SaveReport,
    restore_session_state,
    save_session_state,
    unchanged_prompt,
)
from model.kernels.device import pick_device
from model.sam2.model import ImageFeatures, PointInputs, Sam2Model

__all__ = ["FrameResult", "FrameSource", "ObjectResult", "Prompt", "TrackingSession"]


class TrackingSession:
    """Interactive multi-object tracking on one video."""

    def __init__(
        self,
        model: Sam2Model,
        source: FrameSource,
        *,
        device: str | torch.device | None = None,
        cache_bytes: int = 1 << 30,
        cache_frames: int = DEFAULT_WINDOW_FRAMES,
        fill_hole_area: int = 8,
        max_sprinkle_area: int = 0,
        autocast: bool | None = None,
        precision: str = "exact",
    ) -> None:
        """`precision`: "exact" (float32), "fast" (bf16) or "auto" (`model.engine.precision`);
        `autocast`, when given, is the older switch for the same thing (True: fast)."""
        if len(source) == 0:
            raise ValueError("the video has no frames")
        if fill_hole_area < 0 or max_sprinkle_area < 0:
            raise ValueError("fill_hole_area and max_sprinkle_area must be >= 0")
        self.device = pick_device(device)
        self.model = model.to(self.device).eval()
        self.num_frames = len(source)
        self.fill_hole_area = fill_hole_area
        self.max_sprinkle_area = max_sprinkle_area
        if autocast is not None:
            precision = "fast" if autocast else "exact"
        self.precision, self.precision_reason = resolve_precision(precision, self.device)
        self.autocast = self.precision == "fast"
        self._frames = FrameFeatures(
            self.model,
            source,
            device=self.device,
            autocast=self.autocast,
            max_bytes=cache_bytes,
            max_frames=cache_frames,
        )
        cfg = model.cfg
        window = max(
            cfg.num_maskmem * cfg.memory_temporal_stride_for_eval, cfg.max_obj_ptrs_in_encoder
        )
        self._bank = MemoryBank(ram_frames=window + 2, device=self.device)
        self._tracks: dict[int, ObjectTrack] = {}
        # Memory attention's outputs of recently tracked frames, for correction clicks.
        self._conditioned = ConditionedCache()
        # Restored prompts the app has not re-sent yet (see `unchanged_prompt`).
        self._restored_prompts: set[tuple[int, int]] = set()
        # Frame states before each edit since the last pass, for exact undo.
        self._history = PromptHistory()

    # ------------------------------------------------------------------ properties

    @property
    def video_size(self) -> tuple[int, int]:
        """(H, W) of the video, read from the first frame on first use."""
        return self._frames.video_size

    @property
    def object_ids(self) -> list[int]:
        return list(self._tracks)

    @property
    def cache_bytes_used(self) -> int:
        return self._frames.cache.bytes_used

    @property
    def cache_frames_used(self) -> int:
        return len(self._frames.cache)

    # ------------------------------------------------------------------ features

    def encode_frame(self, frame: int) -> None:
        """Compute and cache a frame's image features (idle prefetch)."""
        self._check_frame(frame)
        with torch.inference_mode():
            self._features(frame)

    def is_encoded(self, frame: int) -> bool:
        return frame in self._frames

    def _features(self, frame: int) -> ImageFeatures:
        """Interactive reads: the frame's features stay cached for the next click."""
        return self._frames.get(frame)

    def set_precision(self, requested: str) -> str:
        """Compute from the next request on in `requested` precision; returns why that one.

        Masks and memories computed so far stay as they are (memories are stored in bf16
        in either precision, so both read them); cached image features are dropped.
        """
        self.precision, self.precision_reason = resolve_precision(requested, self.device)
        self.autocast = self.precision == "fast"
        self._frames.set_autocast(self.autocast)
        return self.precision_reason

    def _autocast(self):
        return self._frames.autocast_context()

    # ------------------------------------------------------------------ prompts

    def add_prompt(
        self, frame: int, obj_id: int, prompt: Prompt, *, clear_old: bool = True
    ) -> ObjectResult:
        """Prompt an object (new or not) on a frame; returns that frame's mask at once."""
        self._check_frame(frame)
        if prompt.box is not None and not clear_old:
            raise ValueError("a box must come first: add it with clear_old=True")
        with torch.inference_mode():
            if clear_old and (same := unchanged_prompt(self, frame, obj_id, prompt)):
                return same
            self._features(frame)  # reads this frame (and so the video size) only
            validate_prompt(prompt, self.video_size)
            track = self._tracks.setdefault(obj_id, ObjectTrack())
            if clear_old and (undone := self._revert(frame, obj_id, track, prompt)):
                return undone
            self._history.keep(self._bank, obj_id, track, frame)
            points = prev = masks = None
            if prompt.mask is not None:
                masks = mask_input(prompt.mask, self.model.image_size, self.device)
                track.masks[frame] = masks
                track.points.pop(frame, None)
            else:
                points = point_inputs(prompt, self.video_size, self.model.image_size, self.device)
                old = track.points.get(frame)
                if old is not None and not clear_old:
                    points = PointInputs(
                        coords=torch.cat([old.coords, points.coords], dim=1),
                        labels=torch.cat([old.labels, points.labels], dim=1),
                    )
                track.points[frame] = points
                track.masks.pop(frame, None)
                if frame in track.outputs:
                    # The frame's last logits refine the new clicks, as in SAM's demo.
                    logits = self._bank.tensors(obj_id, track, frame).logits
                    prev = logits.clamp(-32.0, 32.0)
            return self._predict_prompted(frame, obj_id, track, points, masks, prev)

    def _predict_prompted(
        self,
        frame: int,
        obj_id: int,
        track: ObjectTrack,
        points: PointInputs | None,
        masks: torch.Tensor | None,
        prev: torch.Tensor | None,
    ) -> ObjectResult:
        reverse = track.tracked.get(frame, False)
        is_init = frame not in track.tracked or not self._bank.cond_frames(track)
        memories, pointers, max_ptrs = ([], [], 1)
        if not is_init:
            memories, pointers, max_ptrs = self._gather(obj_id, track, frame, reverse)
        with self._autocast():
            conditioned = None
            if not is_init and masks is None:
                conditioned = self._conditioned_for(obj_id, frame, memories, pointers, max_ptrs)
            out = self.model.track_step(
                self._features(frame),
                is_init_cond_frame=is_init,
                points=points,
                mask_inputs=masks,
                memories=memories,
                pointers=pointers,
                max_pointers=max_ptrs,
                prev_logits=prev,
                run_memory_encoder=False,
                conditioned=conditioned,
            )
        logits = self._postprocess(out.sam.low_res_masks.float())
        self._bank.stash(obj_id, track, frame)
        self._bank.drop(obj_id, track, frame)
        size = self.video_size
        result = store_outputs(
            self._bank, self._tracks, size, [obj_id], frame, logits, out.sam, None, is_cond=True
        )[0]
        track.pending.add(frame)
        for dirty in track.dirty.values():
            dirty.add(frame)
        return result

    def clear_prompts(self, frame: int, obj_id: int) -> None:
        """Remove an object's prompts on a frame; the frame stops being a keyframe."""
        self._check_frame(frame)
        track = self._track(obj_id)
        if self._history.revert(self._bank, obj_id, track, frame, (None, None)):
            return
        self._history.keep(self._bank, obj_id, track, frame)
        track.points.pop(frame, None)
        track.masks.pop(frame, None)
        if frame in track.pending:
            track.pending.discard(frame)
            stashed = track.stash.pop(frame, None)
            self._bank.drop(obj_id, track, frame)
            if stashed is not None:
                restore_output(self._bank, self.video_size, obj_id, track, frame, stashed)
        output = track.outputs.get(frame)
        if output is not None and output.is_cond:
            # Kept as an ordinary tracked output, as the reference downgrades it.
            self._bank.set_cond(obj_id, track, frame, False)
            track.tracked.pop(frame, None)
        for dirty in track.dirty.values():
            dirty.add(frame)

    def _revert(self, frame: int, obj_id: int, track: ObjectTrack, prompt: Prompt):
        """The frame's result after putting back its state before an edit, if one had
        exactly these prompts; else None."""
        size, device = self.model.image_size, self.device
        if prompt.mask is not None:
            inputs = (None, mask_input(prompt.mask, size, device))
        else:
            inputs = (point_inputs(prompt, self.video_size, size, device), None)
        if not self._history.revert(self._bank, obj_id, track, frame, inputs):
            return None
        out = track.outputs[frame]  # a prompted state always has one
        return ObjectResult(obj_id=obj_id, mask=out.mask.unpack(), score=out.score, iou=out.iou)

    def remove_object(self, obj_id: int) -> None:
        self._history.forget_object(obj_id)
        track = self._track(obj_id)
        self._bank.forget_object(obj_id, track)
        self._conditioned.forget_object(obj_id)
        del self._tracks[obj_id]

    def mask(self, obj_id: int, frame: int) -> np.ndarray | None:
        """The stored (H, W) bool mask of an object on a frame, or None if not computed."""
        self._check_frame(frame)
        output = self._track(obj_id).outputs.get(frame)
        return None if output is None else output.mask.unpack()

    def keyframes(self, obj_id: int) -> list[int]:
        return self._track(obj_id).keyframes()

    def _low_res_logits(self, obj_id: int, frame: int) -> torch.Tensor:
        """(1, 1, 4h, 4w) stored logits; for tests and debugging."""
        return self._bank.tensors(obj_id, self._tracks[obj_id], frame).logits

    # ------------------------------------------------------------------ pending work

    def has_pending_work(self, direction: str) -> bool:
        """Whether a local pass in `direction` has frames to start from (edits since the last
        pass, or where a cancelled one stopped) for an object that has a keyframe."""
        return propagation.has_pending_work(self._bank, self._tracks, direction)

    def take_pending(self, direction: str) -> dict[tuple[int, bool], set[int]]:
        """Remove and return the marks the next local pass in `direction` would start from,
        so that a pass covers only later edits; `restore_pending` puts them back."""
        return propagation.take_pending(self._tracks, direction)

    def restore_pending(self, taken: dict[tuple[int, bool], set[int]]) -> None:
        propagation.restore_pending(self._tracks, taken)

    # ------------------------------------------------------------------ saved state

    def save_state(self, folder, identity: StateIdentity, **kwargs) -> SaveReport:
        """Write this session's state to a state store folder (`model.engine.state_store`)."""
        with torch.inference_mode():
            return save_session_state(self, folder, identity, **kwargs)

    def restore_state(self, folder, identity: StateIdentity, **kwargs) -> RestoreReport:
        """Continue from a saved state, exactly; StateStoreError if missing, stale or damaged."""
        return restore_session_state(self, folder, identity, **kwargs)

    # ------------------------------------------------------------------ propagation

    def propagate(
        self,
        start: int | None = None,
        direction: str = "forward",
        *,
        mode: str = "local",
        should_stop: Callable[[], bool] | None = None,
    ) -> Iterator[FrameResult]:
        """Track every prompted object through the video, one `FrameResult` per visited frame.

        mode "full" visits every frame from `start` (default: the first keyframe
        forward, the last one backward) to the end; "local" only recomputes, per
        object, from each frame edited since the last propagation (or from `start`)
        up to its next keyframe. "both" runs forward, then backward.
        """
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {sorted(DIRECTIONS)}, got {direction!r}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if start is not None:
            self._check_frame(start)
        if not any(t.keyframes() for t in self._tracks.values()):
            raise ValueError("no object has a prompt yet; add one before propagating")
        self._history.clear()  # the pass may track other frames from any kept edit
        return propagation.run_passes(self, start, DIRECTIONS[direction], mode, should_stop)

    # ------------------------------------------------------------------ memory lookup

    def _conditioned_for(self, obj_id, frame, memories, pointers, max_ptrs) -> torch.Tensor:
        """Memory attention's output for a click: reused from tracking when the memories match."""
        fused = self._conditioned.get(obj_id, frame, memories, pointers, max_ptrs)
        if fused is None:
            fused = self.model.condition_on_memories(
                self._features(frame),
                is_init_cond_frame=False,
                memories=memories,
                pointers=pointers,
                max_pointers=max_ptrs,
            )
            self._conditioned.put(obj_id, frame, memories, pointers, max_ptrs, fused)
        return fused

    def _gather(self, obj_id: int, track: ObjectTrack, frame: int, reverse: bool):
        """Memories and object pointers for tracking `frame`, per the model's plan."""
        cond = self._bank.cond_frames(track)
        plan = self.model.plan_memories(frame, cond, num_frames=self.num_frames, reverse=reverse)
        memories, pointers = self._bank.gather(obj_id, track, plan)
        return memories, pointers, plan.max_pointers

    # ------------------------------------------------------------------ postprocessing

    def _postprocess(self, logits: torch.Tensor) -> torch.Tensor:
        if self.fill_hole_area == 0 and self.max_sprinkle_area == 0:
            return logits
        return fill_holes_and_specks(
            logits, max_hole_area=self.fill_hole_area, max_speck_area=self.max_sprinkle_area
        )

    # ------------------------------------------------------------------ checks

    def _check_frame(self, frame: int) -> None:
        if not isinstance(frame, (int, np.integer)) or not 0 <= frame < self.num_frames:
            raise ValueError(f"frame must be an int in [0, {self.num_frames}), got {frame!r}")

    def _track(self, obj_id: int) -> ObjectTrack:
        if obj_id not in self._tracks:
            raise ValueError(f"unknown object id {obj_id}; known: {self.object_ids}")
        return self._tracks[obj_id]
