"""Typed values passed between the SAM 2 model and the tracking session."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ImageFeatures:
    """Backbone features of one frame, batched over B (frames, or one frame per object)."""

    vision: torch.Tensor  # (B, C, h, w), the level memory attention and the decoder use
    vision_pos: torch.Tensor  # (B, C, h, w)
    # Decoder skip connections, already projected by conv_s0 / conv_s1:
    # ((B, C/8, 4h, 4w), (B, C/4, 2h, 2w)), or () without high-res features.
    high_res: tuple[torch.Tensor, ...] = ()

    @property
    def batch_size(self) -> int:
        return self.vision.shape[0]

    def expand(self, batch_size: int) -> ImageFeatures:
        """The same single frame seen by `batch_size` objects (views, no copies)."""
        if self.batch_size != 1:
            raise ValueError(f"only single-frame features can be expanded, got B={self.batch_size}")
        return ImageFeatures(
            vision=self.vision.expand(batch_size, -1, -1, -1),
            vision_pos=self.vision_pos.expand(batch_size, -1, -1, -1),
            high_res=tuple(x.expand(batch_size, -1, -1, -1) for x in self.high_res),
        )


@dataclass(frozen=True)
class PointInputs:
    """Clicks in model-input pixels (the S x S image)."""

    coords: torch.Tensor  # (B, N, 2) float x, y
    labels: torch.Tensor  # (B, N) int32: 1 positive, 0 negative, 2/3 box corners, -1 padding

    @property
    def num_points(self) -> int:
        return self.labels.shape[1]


@dataclass(frozen=True)
class SamOutput:
    """What the SAM heads predict for B objects on one frame."""

    low_res_multimasks: torch.Tensor  # (B, M, 4h, 4w), M = 3 with multimask output else 1
    high_res_multimasks: torch.Tensor  # (B, M, S, S)
    ious: torch.Tensor  # (B, M)
    low_res_masks: torch.Tensor  # (B, 1, 4h, 4w) the chosen mask
    high_res_masks: torch.Tensor  # (B, 1, S, S)
    obj_ptr: torch.Tensor  # (B, C)
    object_score_logits: torch.Tensor  # (B, 1), > 0 means the object is present

    @property
    def best_iou(self) -> torch.Tensor:
        """(B,) predicted IoU of the chosen mask."""
        return self.ious.max(dim=1).values


@dataclass(frozen=True)
class Memory:
    """A remembered frame as memory attention consumes it, batched over B objects."""

    features: torch.Tensor  # (B, mem_dim, h, w), possibly bf16 in storage
    obj_ptr: torch.Tensor  # (B, C)


@dataclass(frozen=True)
class TrackOutput:
    """One `track_step`: the SAM output and, when requested, the new memory."""

    sam: SamOutput
    memory_features: torch.Tensor | None  # (B, mem_dim, h, w)
    memory_pos: torch.Tensor | None  # (B, mem_dim, h, w)
