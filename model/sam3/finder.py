"""SAM 3's finder: every instance of a phrase (and/or exemplar boxes) in one frame.

`Sam3Finder` is the whole image detector: the vision backbone (ViT trunk and neck) and the
text encoder under `backbone.`, then the detector heads (`model.sam3.heads`). Its
`state_dict()` keys are the official checkpoint's under `detector.`, so loading strips that
prefix and nothing else (`model.sam3.checkpoint`).

`find` gives what Meta's `Sam3Processor` gives after `set_image`, `set_text_prompt` and
`add_geometric_prompt`: per query, score = sigmoid(logit) x sigmoid(presence logit), its box
in frame pixels and its mask, the mask logits resized bilinearly to the frame. Only the
queries over the threshold are kept, best first, and only their masks are drawn.

The backbone is most of the cost (a minute of CPU per frame at full size), the text
encoder and the heads a fraction: so a frame's features are cached (by a hash of its bytes,
or a key the caller gives) with what the heads compute from the frame alone
(`heads.FramePrep`), and the text encoder caches phrases (encoded up to their last real
token), so that another phrase or another exemplar on the same frame runs only the text
encoder (once per phrase) and the rest of the heads.

A find can be cancelled part-way (`cancel=`, `model.sam3.cancel`): nothing half-computed is
cached. Fast mode may run on weights held in bf16 (`hold_in`, `model.sam3.weights`), which
then refuse exact mode.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from model.sam3.cancel import CancelEvent, FindCancelled, cancellable, poll
from model.sam3.find_input import check_boxes, check_frame, check_points
from model.sam3.heads import Detection, DetectorHeads, FramePrep, HeadsConfig, Prompt
from model.sam3.neck import NeckConfig, VisionBackbone, VisionFeatures
from model.sam3.text_encoder import TextEncoder, TextEncoderConfig
from model.sam3.vit import ViT, ViTConfig, preprocess
from model.sam3.weights import hold_in

__all__ = [
    "FindCancelled",
    "FinderConfig",
    "Instances",
    "Sam3Finder",
    "check_boxes",
    "check_frame",
    "check_points",
    "small_finder_config",
]

Precision = Literal["exact", "fast"]
# The phrase Meta's processor encodes when only exemplar boxes are given.
VISUAL_PHRASE = "visual"
# Masks resized to the frame at a time.
_MASK_CHUNK = 16


@dataclass(frozen=True)
class FinderConfig:
    """The detector's parts; the defaults are SAM 3's released sizes."""

    vit: ViTConfig = field(default_factory=ViTConfig)
    neck: NeckConfig = field(default_factory=NeckConfig)
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    heads: HeadsConfig = field(default_factory=HeadsConfig)
    # Exemplar boxes one prompt may hold (as many as an interactive user would give).
    max_exemplars: int = 16
    # Frames whose features are kept (the current one and the one before it).
    cached_frames: int = 2


def small_finder_config() -> FinderConfig:
    """A small finder (29 M parameters, most of them its vocabulary; a 168 px input; a fraction of
    a second a frame)
    of the released design: for tests, screenshots and benchmarks of the app at random init.
    Its heads are as wide as the released ones (64 channels in the ViT and the text encoder),
    so that a checkpoint of it loads with its sizes read off the weights
    (`model.sam3.config_from_weights`).
    Full-size (`FinderConfig()`) cost is measured in `scripts/bench_sam3_find.py`."""
    from model.sam3.decoder import DecoderConfig
    from model.sam3.fusion_encoder import FusionEncoderConfig

    return FinderConfig(
        vit=ViTConfig(
            img_size=168,
            pretrain_img_size=70,
            embed_dim=128,
            depth=4,
            num_heads=2,
            global_att_blocks=(1, 3),
            window_size=6,
        ),
        text=TextEncoderConfig(width=128, heads=2, layers=2),
        heads=HeadsConfig(
            fusion=FusionEncoderConfig(num_layers=2),
            decoder=DecoderConfig(num_layers=2, num_queries=20),
        ),
    )


@dataclass(frozen=True)
class Instances:
    """K instances found in an (H, W) frame, best first: `masks` (K, H, W) bool, `boxes`
    (K, 4) float32 x0, y0, x1, y1 in frame pixels, `scores` (K,) in [0, 1]; `truncated`:
    whether the phrase had words past the text encoder's context (those were ignored);
    `queries` (K,) int64 the detector query each came from (the order of Meta's outputs)."""

    masks: torch.Tensor
    boxes: torch.Tensor
    scores: torch.Tensor
    truncated: bool = False
    queries: torch.Tensor | None = None


class Backbone(nn.Module):
    """The image and text encoders, under the checkpoint's `backbone.`."""

    def __init__(self, *, cfg: FinderConfig) -> None:
        super().__init__()
        self.vision_backbone = VisionBackbone(trunk=ViT(cfg=cfg.vit), cfg=cfg.neck)
        self.language_backbone = TextEncoder(cfg=cfg.text)


class Sam3Finder(DetectorHeads):
    """The backbone and the detector heads (which it is, so that the heads' parameters keep
    their checkpoint names at the top level: `transformer.*`, `geometry_encoder.*`, ...)."""

    def __init__(self, *, cfg: FinderConfig | None = None) -> None:
        cfg = cfg or FinderConfig()
        super().__init__(cfg=cfg.heads)
        self.finder_cfg = cfg
        self.backbone = Backbone(cfg=cfg)
        self._frames: collections.OrderedDict[tuple, FrameFeatures] = collections.OrderedDict()
        # The dtype `hold_in` converted the large weights to (float32: as built or loaded).
        self.held_dtype = torch.float32

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> Any:
        """As `nn.Module.load_state_dict`; cached frame features are of the old weights."""
        self._frames.clear()
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def clear_cache(self) -> None:
        """Forget cached frame features and phrase features."""
        self._frames.clear()
        self.backbone.language_backbone.clear_cache()

    def hold_in(self, dtype: torch.dtype) -> Sam3Finder:
        """Hold the large weights in `dtype` (bf16 for fast mode, float32 again), converted
        one tensor at a time: never a second copy of the model. See `model.sam3.weights`."""
        hold_in(self, dtype)
        self.held_dtype = dtype
        self.clear_cache()
        return self

    def image_features(
        self, frame: torch.Tensor, frame_key: object = None, precision: Precision = "exact"
    ) -> VisionFeatures:
        """The pyramid of an (H, W, 3) uint8 frame, from the cache where it was seen last."""
        return self._frame(frame, frame_key, precision).vision

    def _frame(self, frame: torch.Tensor, frame_key: object, precision: Precision) -> FrameFeatures:
        """The frame's features and the heads' `FramePrep`, computed once per frame and mode;
        cached only once complete (a cancelled frame leaves nothing behind)."""
        weight = self.geometry_encoder.cls_embed.weight
        device = weight.device
        # Features depend on the weights' device and dtype and the precision as well.
        mode = (str(device), weight.dtype, self.held_dtype, precision)
        key = (_frame_key(frame) if frame_key is None else ("key", frame_key), *mode)
        if key in self._frames:
            self._frames.move_to_end(key)
            return self._frames[key]
        images = preprocess(frame, self.finder_cfg.vit.img_size).to(device)
        feats = self.backbone.vision_backbone(images)
        poll()
        levels = list(feats.backbone_fpn)
        done = FrameFeatures(vision=feats, prep=self.prepare(levels, feats.vision_pos_enc[-1]))
        self._frames[key] = done
        while len(self._frames) > self.finder_cfg.cached_frames:
            self._frames.popitem(last=False)
        return done

    def find(
        self,
        frame: np.ndarray | torch.Tensor,
        phrase: str | None = None,
        boxes: np.ndarray | torch.Tensor | None = None,
        box_labels: np.ndarray | torch.Tensor | None = None,
        threshold: float = 0.5,
        *,
        points: np.ndarray | torch.Tensor | None = None,
        point_labels: np.ndarray | torch.Tensor | None = None,
        frame_key: object = None,
        precision: Precision = "exact",
        cancel: CancelEvent | None = None,
        max_instances: int | None = None,
    ) -> Instances:
        """Instances of `phrase` and/or like the exemplar `boxes` (N, 4) x0, y0, x1, y1 and
        `points` (M, 2) x, y in frame pixels, `box_labels` (N,) / `point_labels` (M,) bool
        (True: a positive exemplar; default all True), in `frame` (H, W, 3) uint8 RGB, whose
        score is over `threshold`. `frame_key` (hashable) names the frame for the feature
        cache instead of a hash of its bytes; `precision` "fast" computes under bf16
        autocast (the only mode of a finder held in bf16, `hold_in`). `cancel`: an event
        (`is_set()`) polled through the computation; once set, `FindCancelled` is raised
        within about a second (`model.sam3.cancel`). `max_instances`: at most this many,
        the best (masks are drawn for those only). Bad input: a one-line ValueError."""
        frame = check_frame(frame)
        size = frame.shape[:2]
        limit = self.finder_cfg.max_exemplars
        exemplars = check_boxes(boxes, box_labels, size, limit)
        clicks = check_points(points, point_labels, size, limit)
        if phrase is None and exemplars is None and clicks is None:
            raise ValueError("nothing to find: give a phrase, exemplar boxes or points")
        if phrase is not None and not isinstance(phrase, str):
            raise ValueError(f"the phrase must be text, got {type(phrase).__name__}")
        self._check_precision(precision)
        device = self.geometry_encoder.cls_embed.weight.device
        with cancellable(cancel), torch.inference_mode(), _autocast(device, precision):
            text = self.backbone.language_backbone.encode(
                VISUAL_PHRASE if phrase is None else phrase, trim=True
            )
            frame_feats = self._frame(frame, frame_key, precision)
            feats, prep = frame_feats.vision, frame_feats.prep
            prompt = make_prompt(text.features, text.padding, exemplars, clicks, size, device)
            found = self.detect(feats.vision_features, feats.vision_pos_enc[-1], prompt, prep)
            scores = found.scores[0].float()
            keep = (scores > threshold).nonzero()[:, 0]
            keep = keep[scores[keep].argsort(descending=True, stable=True)][:max_instances]
            masks = self._masks(found, frame_feats, keep, size)
            scale = torch.tensor([size[1], size[0]] * 2, dtype=torch.float32, device=device)
            return Instances(
                masks=masks,
                boxes=found.boxes_xyxy[0, keep].float() * scale,
                scores=scores[keep],
                truncated=bool(phrase is not None and text.truncated and text.truncated[0]),
                queries=keep,
            )

    def _check_precision(self, precision: str) -> None:
        if precision not in ("exact", "fast"):
            raise ValueError(f"unknown precision {precision!r}: expected 'exact' or 'fast'")
        if precision == "exact" and self.held_dtype != torch.float32:
            held = str(self.held_dtype).removeprefix("torch.")
            raise ValueError(
                f"this finder holds its weights in {held}, for fast mode only: find with "
                "precision='fast', or load it again in float32 for exact results"
            )

    def _masks(
        self, found: Detection, frame: FrameFeatures, keep: torch.Tensor, size: tuple[int, int]
    ) -> torch.Tensor:
        """(K, H, W) bool masks of the kept queries; the pixel decoder is skipped for none."""
        if keep.numel() == 0:
            return torch.zeros(0, *size, dtype=torch.bool, device=keep.device)
        levels = list(frame.vision.backbone_fpn[:-1])
        logits = self.segment(found, levels, keep[None], frame.prep).mask_logits  # (1, K, h, w)
        # As the processor: logits resized to the frame, then sigmoid > 0.5. A few at a
        # time: 200 float masks of a 4K frame would take 6.6 GB at once.
        out = torch.empty(len(keep), *size, dtype=torch.bool, device=keep.device)
        for i in range(0, len(keep), _MASK_CHUNK):
            poll()
            part = logits[0, i : i + _MASK_CHUNK, None].float()
            resized = F.interpolate(part, size, mode="bilinear", align_corners=False)
            out[i : i + _MASK_CHUNK] = resized[:, 0].sigmoid_() > 0.5
        return out


@dataclass(frozen=True)
class FrameFeatures:
    """A cached frame: the backbone's pyramid and the heads' `FramePrep` of it."""

    vision: VisionFeatures
    prep: FramePrep


def _frame_key(frame: torch.Tensor) -> tuple:
    """The cache key of a frame's pixels: its shape and a hash of its bytes (about 10 ms
    for a 1080p frame, against a minute of CPU for its features)."""
    digest = hashlib.blake2b(frame.contiguous().numpy(), digest_size=16).hexdigest()
    return ("pixels", tuple(frame.shape), digest)


def _autocast(device: torch.device, precision: Precision) -> contextlib.AbstractContextManager:
    if precision == "fast":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def make_prompt(
    text: torch.Tensor,
    padding: torch.Tensor,
    exemplars: tuple[torch.Tensor, torch.Tensor] | None,
    clicks: tuple[torch.Tensor, torch.Tensor] | None,
    size: tuple[int, int],
    device: torch.device,
) -> Prompt:
    """The heads' prompt: text features, exemplar boxes normalised cx, cy, w, h and points
    normalised x, y (frame pixels over the frame's size, as the processor normalises)."""
    h, w = size
    extra: dict[str, torch.Tensor] = {}
    if exemplars is not None:
        boxes, labels = exemplars
        scale = torch.tensor([w, h, w, h], dtype=torch.float64)
        x0, y0, x1, y1 = (boxes.double() / scale).unbind(-1)
        normalised = torch.stack(((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0), -1).float()
        extra["boxes"] = normalised[None].to(device)
        extra["box_labels"] = labels.long()[None].to(device)
    if clicks is not None:
        points, labels = clicks
        normalised = (points.double() / torch.tensor([w, h], dtype=torch.float64)).float()
        extra["points"] = normalised[None].to(device)
        extra["point_labels"] = labels.long()[None].to(device)
    return Prompt(text=text, text_mask=padding, **extra)
