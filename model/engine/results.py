"""Storing the model's outputs as the session's results, and reading them back per frame.

A frame's output per object is kept twice over: as a packed (H, W) bit mask at video size
(what the app reads) and as the low-resolution `Tensors` later frames' memories need (kept
in the `MemoryBank`, which spills old ones to disk exactly).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from model.engine.mask_store import PackedMask
from model.engine.memory_bank import FrameOutput, MemoryBank, ObjectTrack, Tensors
from model.engine.prompts import FrameResult, ObjectResult
from model.sam2.types import SamOutput


def store_outputs(
    bank: MemoryBank,
    tracks: dict[int, ObjectTrack],
    video_size: tuple[int, int],
    ids: list[int],
    frame: int,
    logits: torch.Tensor,
    sam: SamOutput,
    memory: torch.Tensor | None,
    *,
    is_cond: bool = False,
) -> list[ObjectResult]:
    """Store one frame's batched outputs, row i for object `ids[i]`; returns their results.

    `logits`: (B, 1, 4h, 4w) low-res mask logits; `memory`: (B, C, h, w) or None when the
    frame's memory is encoded later (a prompted frame's, at the next propagation).
    """
    h, w = video_size
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
        bank.put(o, tracks[o], frame, output)
        results.append(ObjectResult(obj_id=o, mask=video_np[i], score=score, iou=ious[i]))
    return results


def restore_output(
    bank: MemoryBank,
    video_size: tuple[int, int],
    obj_id: int,
    track: ObjectTrack,
    frame: int,
    stashed: tuple[bool, Tensors, float],
) -> None:
    """Put back an output stashed before a prompt replaced it: (is_cond, tensors, iou)."""
    is_cond, tensors, iou = stashed
    h, w = video_size
    video = F.interpolate(tensors.logits, size=(h, w), mode="bilinear", align_corners=False)
    old = FrameOutput(
        mask=PackedMask.pack(video[0, 0].cpu().numpy() > 0),
        score=float(tensors.score),
        iou=iou,
        is_cond=is_cond,
        tensors=tensors,
    )
    bank.put(obj_id, track, frame, old)


def frame_result(tracks: dict[int, ObjectTrack], frame: int) -> FrameResult:
    """Every object's stored result on `frame` (objects not computed there are left out)."""
    objects = {}
    for o, t in tracks.items():
        output = t.outputs.get(frame)
        if output is not None:
            objects[o] = ObjectResult(
                obj_id=o, mask=output.mask.unpack(), score=output.score, iou=output.iou
            )
    return FrameResult(frame=frame, objects=objects)
