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
- propagation is a generator, cancellable between frames, keeping what it did;
- results are kept as packed bit masks, and memory tensors beyond the window the
  memory selection reads are spilled to disk and read back exactly
  (see `model.engine.memory_bank` for the design and why it stays exact).

A prompt's own output is encoded into memory lazily, at the next propagation,
as the reference does; until then the frame's previous output is still what the
memory selection of other clicks sees.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from model.device import pick_device, release_free_memory
from model.engine.feature_cache import DEFAULT_WINDOW_FRAMES
from model.engine.frame_features import FrameFeatures
from model.engine.frames import FrameSource
from model.engine.mask_store import PackedMask
from model.engine.memory_bank import FrameOutput, MemoryBank, ObjectTrack, Tensors
from model.engine.postprocess import fill_holes_and_specks
from model.engine.prompts import (
    FrameResult,
    ObjectResult,
    Prompt,
    mask_input,
    point_inputs,
    validate_prompt,
)
from model.engine.schedule import full_order, local_order, local_spans
from model.engine.state_store import StateIdentity
from model.engine.state_store_session import (
    RestoreReport,
    SaveReport,
    restore_session_state,
    save_session_state,
    unchanged_prompt,
)
from model.sam2 import ImageFeatures, Memory, PointInputs, Sam2Model

__all__ = ["FrameResult", "FrameSource", "ObjectResult", "Prompt", "TrackingSession"]

_DIRECTIONS = {"forward": (False,), "backward": (True,), "both": (False, True)}
_MODES = ("local", "full")
# Frames between returning freed heap memory to the OS during long propagations.
_TRIM_EVERY = 100


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
    ) -> None:
        if len(source) == 0:
            raise ValueError("the video has no frames")
        if fill_hole_area < 0 or max_sprinkle_area < 0:
            raise ValueError("fill_hole_area and max_sprinkle_area must be >= 0")
        self.device = pick_device(device)
        self.model = model.to(self.device).eval()
        self.num_frames = len(source)
        self.fill_hole_area = fill_hole_area
        self.max_sprinkle_area = max_sprinkle_area
        self.autocast = self.device.type == "cuda" if autocast is None else autocast
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
        # Restored prompts the app has not re-sent yet (see `unchanged_prompt`).
        self._restored_prompts: set[tuple[int, int]] = set()

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
            )
        logits = self._postprocess(out.sam.low_res_masks.float())
        self._bank.stash(obj_id, track, frame)
        self._bank.drop(obj_id, track, frame)
        result = self._store_many([obj_id], frame, logits, out.sam, None, is_cond=True)[0]
        track.pending.add(frame)
        for dirty in track.dirty.values():
            dirty.add(frame)
        return result

    def clear_prompts(self, frame: int, obj_id: int) -> None:
        """Remove an object's prompts on a frame; the frame stops being a keyframe."""
        self._check_frame(frame)
        track = self._track(obj_id)
        track.points.pop(frame, None)
        track.masks.pop(frame, None)
        if frame in track.pending:
            track.pending.discard(frame)
            stashed = track.stash.pop(frame, None)
            self._bank.drop(obj_id, track, frame)
            if stashed is not None:
                self._restore(obj_id, track, frame, *stashed)
        output = track.outputs.get(frame)
        if output is not None and output.is_cond:
            # Kept as an ordinary tracked output, as the reference downgrades it.
            self._bank.set_cond(obj_id, track, frame, False)
            track.tracked.pop(frame, None)
        for dirty in track.dirty.values():
            dirty.add(frame)

    def remove_object(self, obj_id: int) -> None:
        track = self._track(obj_id)
        self._bank.forget_object(obj_id, track)
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
        if direction not in _DIRECTIONS:
            raise ValueError(f"direction must be one of {sorted(_DIRECTIONS)}, got {direction!r}")
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        if start is not None:
            self._check_frame(start)
        if not any(t.keyframes() for t in self._tracks.values()):
            raise ValueError("no object has a prompt yet; add one before propagating")
        return self._propagate(start, _DIRECTIONS[direction], mode, should_stop)

    @torch.inference_mode()
    def _propagate(
        self,
        start: int | None,
        directions: tuple[bool, ...],
        mode: str,
        should_stop: Callable[[], bool] | None,
    ) -> Iterator[FrameResult]:
        self._commit_pending()
        active = {o: t for o, t in self._tracks.items() if self._bank.cond_frames(t)}
        all_keys = sorted({k for o, t in active.items() for k in self._bank.cond_frames(t)})
        for reverse in directions:
            begin = start if start is not None else (all_keys[-1] if reverse else all_keys[0])
            if mode == "full":
                order = full_order(begin, self.num_frames, reverse=reverse)
                compute = {o: set(order) for o in active}
            else:
                compute, order = self._local_plan(active, start, reverse)
            for t in active.values():
                t.dirty[reverse].clear()
            done = 0
            try:
                for frame in order:
                    if should_stop is not None and should_stop():
                        return
                    self._step(frame, active, compute, reverse)
                    done += 1
                    if done % _TRIM_EVERY == 0:
                        release_free_memory()
                    yield self._frame_result(frame)
            finally:
                # Cancelled or abandoned: the next local pass resumes where this stopped.
                self._mark_unfinished(active, compute, order[done:], reverse)

    def _local_plan(
        self, active: dict[int, ObjectTrack], start: int | None, reverse: bool
    ) -> tuple[dict[int, set[int]], list[int]]:
        compute, starts = {}, {}
        for o, t in active.items():
            dirty = set(t.dirty[reverse]) | ({start} if start is not None else set())
            keys = self._bank.cond_frames(t)
            compute[o] = local_spans(keys, dirty, self.num_frames, reverse=reverse)
            starts[o] = {d for d in dirty if d in keys}
        return compute, local_order(compute, starts, reverse=reverse)

    def _mark_unfinished(self, active, compute, remaining: list[int], reverse: bool) -> None:
        for o, t in active.items():
            left = [f for f in remaining if f in compute[o]]
            if left:
                t.dirty[reverse].add(left[0])

    def _step(self, frame: int, active, compute, reverse: bool) -> None:
        to_track = []
        for o, t in active.items():
            if frame in self._bank.cond_frames(t):
                t.tracked[frame] = reverse
            elif frame in compute[o]:
                to_track.append(o)
        if to_track:
            self._track_objects(frame, to_track, reverse)
            for o in to_track:
                active[o].tracked[frame] = reverse

    def _track_objects(self, frame: int, obj_ids: list[int], reverse: bool) -> None:
        """Track several objects on one frame, batching those whose memories line up."""
        groups: dict[tuple, list] = defaultdict(list)
        for o in obj_ids:
            memories, pointers, max_ptrs = self._gather(o, self._tracks[o], frame, reverse)
            key = (tuple(p for p, _ in memories), tuple(d for d, _ in pointers), max_ptrs)
            groups[key].append((o, memories, pointers))
        # A pass reads each frame once: it must not fill the cache with them.
        feats = self._frames.get(frame, keep=False)
        for (_, _, max_ptrs), items in groups.items():
            first_mems, first_ptrs = items[0][1], items[0][2]
            memories = [
                (
                    p,
                    Memory(
                        features=torch.cat([it[1][i][1].features for it in items]),
                        obj_ptr=torch.cat([it[1][i][1].obj_ptr for it in items]),
                    ),
                )
                for i, (p, _) in enumerate(first_mems)
            ]
            pointers = [
                (d, torch.cat([it[2][i][1] for it in items])) for i, (d, _) in enumerate(first_ptrs)
            ]
            with self._autocast():
                out = self.model.track_step(
                    feats.expand(len(items)),
                    is_init_cond_frame=False,
                    memories=memories,
                    pointers=pointers,
                    max_pointers=max_ptrs,
                )
            logits = self._postprocess(out.sam.low_res_masks.float())
            ids = [it[0] for it in items]
            for o in ids:
                self._bank.drop(o, self._tracks[o], frame)
            self._store_many(ids, frame, logits, out.sam, out.memory_features)

    def _commit_pending(self) -> None:
        """Encode the memories of prompted frames, batched per frame (the reference's preflight)."""
        by_frame: dict[int, list[int]] = defaultdict(list)
        for o, t in self._tracks.items():
            for frame in t.pending:
                by_frame[frame].append(o)
        for frame, ids in sorted(by_frame.items()):
            tensors = [self._bank.tensors(o, self._tracks[o], frame) for o in ids]
            logits = torch.cat([x.logits for x in tensors])
            scores = torch.cat([x.score for x in tensors])
            with self._autocast():
                memory, _ = self.model.encode_memory(
                    self._frames.get(frame, keep=False).expand(len(ids)).vision,
                    self.model.upsample_logits(logits),
                    scores,
                    is_mask_from_pts=True,
                )
            for i, o in enumerate(ids):
                track = self._tracks[o]
                output = track.outputs[frame]
                output.tensors = replace(tensors[i], memory=memory[i : i + 1].to(torch.bfloat16))
                track.pending.discard(frame)
                track.stash.pop(frame, None)

    # ------------------------------------------------------------------ memory lookup

    def _gather(self, obj_id: int, track: ObjectTrack, frame: int, reverse: bool):
        """Memories and object pointers for tracking `frame`, per the model's plan."""
        cond = self._bank.cond_frames(track)
        plan = self.model.plan_memories(frame, cond, num_frames=self.num_frames, reverse=reverse)
        memories, pointers = self._bank.gather(obj_id, track, plan)
        return memories, pointers, plan.max_pointers

    # ------------------------------------------------------------------ storing results

    def _postprocess(self, logits: torch.Tensor) -> torch.Tensor:
        if self.fill_hole_area == 0 and self.max_sprinkle_area == 0:
            return logits
        return fill_holes_and_specks(
            logits, max_hole_area=self.fill_hole_area, max_speck_area=self.max_sprinkle_area
        )

    def _store_many(self, ids, frame, logits, sam, memory, *, is_cond: bool = False):
        h, w = self.video_size
        video = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False) > 0
        video_np = video[:, 0].cpu().numpy()
        scores = sam.object_score_logits.float()
        ious = sam.best_iou.float().tolist()
        results = []
        for i, o in enumerate(ids):
            tensors = Tensors(
                logits=logits[i : i + 1].clone(),
                obj_ptr=sam.obj_ptr[i : i + 1].float().clone(),
                score=scores[i : i + 1].clone(),
                memory=None if memory is None else memory[i : i + 1].to(torch.bfloat16),
            )
            score = float(tensors.score)
            output = FrameOutput(
                mask=PackedMask.pack(video_np[i]),
                score=score,
                iou=ious[i],
                is_cond=is_cond,
                tensors=tensors,
            )
            self._bank.put(o, self._tracks[o], frame, output)
            results.append(ObjectResult(obj_id=o, mask=video_np[i], score=score, iou=ious[i]))
        return results

    def _restore(self, obj_id, track, frame, is_cond: bool, tensors: Tensors, iou: float) -> None:
        h, w = self.video_size
        video = F.interpolate(tensors.logits, size=(h, w), mode="bilinear", align_corners=False)
        old = FrameOutput(
            mask=PackedMask.pack(video[0, 0].cpu().numpy() > 0),
            score=float(tensors.score),
            iou=iou,
            is_cond=is_cond,
            tensors=tensors,
        )
        self._bank.put(obj_id, track, frame, old)

    def _frame_result(self, frame: int) -> FrameResult:
        objects = {}
        for o, t in self._tracks.items():
            output = t.outputs.get(frame)
            if output is not None:
                objects[o] = ObjectResult(
                    obj_id=o, mask=output.mask.unpack(), score=output.score, iou=output.iou
                )
        return FrameResult(frame=frame, objects=objects)

    # ------------------------------------------------------------------ checks

    def _check_frame(self, frame: int) -> None:
        if not isinstance(frame, (int, np.integer)) or not 0 <= frame < self.num_frames:
            raise ValueError(f"frame must be an int in [0, {self.num_frames}), got {frame!r}")

    def _track(self, obj_id: int) -> ObjectTrack:
        if obj_id not in self._tracks:
            raise ValueError(f"unknown object id {obj_id}; known: {self.object_ids}")
        return self._tracks[obj_id]
