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
or a key the caller gives), and the text encoder caches phrases, so that another phrase or
another exemplar box on the same frame runs only the text encoder (once per phrase) and the
heads.
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

from model.sam3.heads import Detection, DetectorHeads, HeadsConfig, Prompt
from model.sam3.neck import NeckConfig, VisionBackbone, VisionFeatures
from model.sam3.text_encoder import TextEncoder, TextEncoderConfig
from model.sam3.vit import ViT, ViTConfig, preprocess

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
        self._frames: collections.OrderedDict[tuple, VisionFeatures] = collections.OrderedDict()

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

    def image_features(
        self, frame: torch.Tensor, frame_key: object = None, precision: Precision = "exact"
    ) -> VisionFeatures:
        """The pyramid of an (H, W, 3) uint8 frame, from the cache where it was seen last."""
        weight = self.geometry_encoder.cls_embed.weight
        device = weight.device
        # Features depend on the weights' device and dtype and the precision as well.
        mode = (str(device), weight.dtype, precision)
        key = (_frame_key(frame) if frame_key is None else ("key", frame_key), *mode)
        if key in self._frames:
            self._frames.move_to_end(key)
            return self._frames[key]
        images = preprocess(frame, self.finder_cfg.vit.img_size).to(device)
        feats = self.backbone.vision_backbone(images)
        self._frames[key] = feats
        while len(self._frames) > self.finder_cfg.cached_frames:
            self._frames.popitem(last=False)
        return feats

    def find(
        self,
        frame: np.ndarray | torch.Tensor,
        phrase: str | None = None,
        boxes: np.ndarray | torch.Tensor | None = None,
        box_labels: np.ndarray | torch.Tensor | None = None,
        threshold: float = 0.5,
        *,
        frame_key: object = None,
        precision: Precision = "exact",
    ) -> Instances:
        """Instances of `phrase` and/or like the exemplar `boxes` (N, 4) x0, y0, x1, y1 in
        frame pixels, `box_labels` (N,) bool (True: a positive exemplar; default all True),
        in `frame` (H, W, 3) uint8 RGB, whose score is over `threshold`. `frame_key`
        (hashable) names the frame for the feature cache instead of a hash of its bytes;
        `precision` "fast" computes under bf16 autocast. Bad input: a one-line ValueError."""
        frame = check_frame(frame)
        h, w = frame.shape[:2]
        exemplars = check_boxes(boxes, box_labels, (h, w), self.finder_cfg.max_exemplars)
        if phrase is None and exemplars is None:
            raise ValueError("nothing to find: give a phrase, exemplar boxes or both")
        if phrase is not None and not isinstance(phrase, str):
            raise ValueError(f"the phrase must be text, got {type(phrase).__name__}")
        device = self.geometry_encoder.cls_embed.weight.device
        with torch.inference_mode(), _autocast(device, precision):
            text = self.backbone.language_backbone.encode(
                VISUAL_PHRASE if phrase is None else phrase
            )
            feats = self.image_features(frame, frame_key, precision)
            prompt = _prompt(text.features, text.padding, exemplars, (h, w), device)
            found = self.detect(feats.vision_features, feats.vision_pos_enc[-1], prompt)
            scores = found.scores[0].float()
            keep = (scores > threshold).nonzero()[:, 0]
            keep = keep[scores[keep].argsort(descending=True, stable=True)]
            masks = self._masks(found, feats, keep, (h, w))
            scale = torch.tensor([w, h, w, h], dtype=torch.float32, device=device)
            return Instances(
                masks=masks,
                boxes=found.boxes_xyxy[0, keep].float() * scale,
                scores=scores[keep],
                truncated=bool(phrase is not None and text.truncated and text.truncated[0]),
                queries=keep,
            )

    def _masks(
        self, found: Detection, feats: VisionFeatures, keep: torch.Tensor, size: tuple[int, int]
    ) -> torch.Tensor:
        """(K, H, W) bool masks of the kept queries; the pixel decoder is skipped for none."""
        if keep.numel() == 0:
            return torch.zeros(0, *size, dtype=torch.bool, device=keep.device)
        levels = list(feats.backbone_fpn[:-1])
        logits = self.segment(found, levels, keep[None]).mask_logits  # (1, K, h, w)
        # As the processor: logits resized to the frame, then sigmoid > 0.5. A few at a
        # time: 200 float masks of a 4K frame would take 6.6 GB at once.
        out = torch.empty(len(keep), *size, dtype=torch.bool, device=keep.device)
        for i in range(0, len(keep), _MASK_CHUNK):
            part = logits[0, i : i + _MASK_CHUNK, None].float()
            resized = F.interpolate(part, size, mode="bilinear", align_corners=False)
            out[i : i + _MASK_CHUNK] = resized[:, 0].sigmoid_() > 0.5
        return out


def _frame_key(frame: torch.Tensor) -> tuple:
    """The cache key of a frame's pixels: its shape and a hash of its bytes (about 10 ms
    for a 1080p frame, against a minute of CPU for its features)."""
    digest = hashlib.blake2b(frame.contiguous().numpy(), digest_size=16).hexdigest()
    return ("pixels", tuple(frame.shape), digest)


def _autocast(device: torch.device, precision: Precision) -> contextlib.AbstractContextManager:
    if precision == "exact":
        return contextlib.nullcontext()
    if precision == "fast":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    raise ValueError(f"unknown precision {precision!r}: expected 'exact' or 'fast'")


def _prompt(
    text: torch.Tensor,
    padding: torch.Tensor,
    exemplars: tuple[torch.Tensor, torch.Tensor] | None,
    size: tuple[int, int],
    device: torch.device,
) -> Prompt:
    """The heads' prompt: text features, and exemplar boxes normalised cx, cy, w, h."""
    if exemplars is None:
        return Prompt(text=text, text_mask=padding)
    boxes, labels = exemplars
    h, w = size
    scale = torch.tensor([w, h, w, h], dtype=torch.float64)
    x0, y0, x1, y1 = (boxes.double() / scale).unbind(-1)
    normalised = torch.stack(((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0), -1).float()
    return Prompt(
        text=text,
        text_mask=padding,
        boxes=normalised[None].to(device),
        box_labels=labels.long()[None].to(device),
    )


def check_frame(frame: object) -> torch.Tensor:
    """An (H, W, 3) uint8 frame as a CPU tensor, or a one-line ValueError."""
    if isinstance(frame, np.ndarray):
        frame = torch.from_numpy(np.ascontiguousarray(frame))
    if not isinstance(frame, torch.Tensor):
        raise ValueError(f"the frame must be an (H, W, 3) uint8 array, got {type(frame).__name__}")
    if frame.dtype != torch.uint8:
        raise ValueError(f"the frame must be uint8 RGB, got {frame.dtype}")
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] < 1 or frame.shape[1] < 1:
        raise ValueError(f"the frame must be (H, W, 3), got {tuple(frame.shape)}")
    return frame.cpu()


def check_boxes(
    boxes: object, labels: object, size: tuple[int, int], limit: int
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Exemplar boxes (N, 4) float64 x0, y0, x1, y1 inside the (H, W) frame, each of some
    area, and their (N,) bool labels; None for none; else a one-line ValueError."""
    if boxes is None:
        if labels is not None:
            raise ValueError("box labels given without boxes")
        return None
    try:
        b = torch.as_tensor(np.asarray(boxes, dtype=np.float64))
    except (TypeError, ValueError):
        raise ValueError("boxes must be numbers, (N, 4) x0, y0, x1, y1") from None
    if b.ndim != 2 or b.shape[1] != 4 or b.shape[0] == 0:
        raise ValueError(f"boxes must be (N, 4) x0, y0, x1, y1 with N >= 1, got {tuple(b.shape)}")
    if b.shape[0] > limit:
        raise ValueError(f"{b.shape[0]} exemplar boxes: at most {limit} are taken")
    if not torch.isfinite(b).all():
        raise ValueError("boxes must be finite numbers")
    h, w = size
    inside = (b[:, 0] >= 0) & (b[:, 1] >= 0) & (b[:, 2] <= w) & (b[:, 3] <= h)
    if not inside.all():
        i = int((~inside).nonzero()[0])
        raise ValueError(f"box {i} {b[i].tolist()} is not inside the {w} x {h} frame")
    empty = (b[:, 2] <= b[:, 0]) | (b[:, 3] <= b[:, 1])
    if empty.any():
        i = int(empty.nonzero()[0])
        raise ValueError(f"box {i} {b[i].tolist()} has no area (need x0 < x1 and y0 < y1)")
    if labels is None:
        return b, torch.ones(b.shape[0], dtype=torch.bool)
    try:
        lab = torch.as_tensor(np.asarray(labels, dtype=bool)).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError("box labels must be booleans (True: a positive exemplar)") from None
    if lab.shape[0] != b.shape[0]:
        raise ValueError(f"{lab.shape[0]} box labels for {b.shape[0]} boxes")
    return b, lab.bool()
