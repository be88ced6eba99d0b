"""SAM 3's detector heads chained as Meta's image model chains them for one prompt
(`Sam3Image.forward_grounding`): from the neck's levels and the prompt's text features
to every query's logit, box and mask, and the presence logit.

1. The geometry encoder turns the exemplar boxes and points (or none) into tokens, its
   CLS token always among them; the prompt is the text tokens then those, with their
   padding masks side by side.
2. The fusion encoder fuses the coarsest kept neck level (72 x 72 at 1008 px) with it.
3. The DETR decoder finds queries and boxes in the fused tokens; the dot-product scoring
   gives each query a logit against the prompt; score = sigmoid(logit) *
   sigmoid(presence logit).
4. The segmentation head gives each query a mask at the finest level (288 x 288).

`forward` runs all four for every query; `detect` (1-3) and `segment` (4) split them so
that masks are drawn only for the queries a caller keeps, and not at all where none passes.
`prepare` computes what of 2 and 4 depends on the frame alone (`FramePrep`), so that a
caller who keeps it with the frame's features runs less for each further prompt.

Parameters are named as the official checkpoint names them under `detector.`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from model.sam3.common import box_cxcywh_to_xyxy
from model.sam3.decoder import Decoder, DecoderConfig
from model.sam3.fusion_encoder import FusionEncoder, FusionEncoderConfig
from model.sam3.geometry_encoder import GeometryEncoder, GeometryEncoderConfig
from model.sam3.scoring import DotProductScoring, ScoringConfig, detection_scores
from model.sam3.segmentation import SegmentationConfig, SegmentationHead, SegmentationOutput


@dataclass(frozen=True)
class HeadsConfig:
    geometry: GeometryEncoderConfig = field(default_factory=GeometryEncoderConfig)
    fusion: FusionEncoderConfig = field(default_factory=FusionEncoderConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    segmentation: SegmentationConfig = field(default_factory=SegmentationConfig)


@dataclass(frozen=True)
class Prompt:
    """One prompt per batch row, batch first. `text` (B, L, C) and `text_mask` (B, L) (True
    on padding) from the text encoder; exemplar `boxes` (B, N, 4) normalised cx, cy, w, h
    and `points` (B, M, 2) normalised x, y, each with labels (1 positive, 0 negative) and
    padding masks, all optional (see `GeometryEncoder.forward`)."""

    text: torch.Tensor
    text_mask: torch.Tensor
    boxes: torch.Tensor | None = None
    box_labels: torch.Tensor | None = None
    box_mask: torch.Tensor | None = None
    points: torch.Tensor | None = None
    point_labels: torch.Tensor | None = None
    point_mask: torch.Tensor | None = None


@dataclass(frozen=True)
class HeadsOutput:
    """For Q queries: `logits` (B, Q), `presence_logit` (B,), `scores` (B, Q) in [0, 1],
    `boxes` (B, Q, 4) normalised cx, cy, w, h and `boxes_xyxy` (B, Q, 4) normalised x0, y0,
    x1, y1, `mask_logits` (B, Q, H0, W0) and `semantic_logits` (B, 1, H0, W0) at the finest
    neck level."""

    logits: torch.Tensor
    presence_logit: torch.Tensor
    scores: torch.Tensor
    boxes: torch.Tensor
    boxes_xyxy: torch.Tensor
    mask_logits: torch.Tensor
    semantic_logits: torch.Tensor


@dataclass(frozen=True)
class Detection:
    """`DetectorHeads.detect`'s result: `logits`, `presence_logit`, `scores`, `boxes`,
    `boxes_xyxy` as in `HeadsOutput`; and for `DetectorHeads.segment`: `queries` (B, Q, C)
    the decoder's last normed queries, `memory` (B, h*w, C) the fused image tokens on the
    grid `size` (h, w), `prompt` (B, S, C) the prompt tokens and `prompt_mask` (B, S)."""

    logits: torch.Tensor
    presence_logit: torch.Tensor
    scores: torch.Tensor
    boxes: torch.Tensor
    boxes_xyxy: torch.Tensor
    queries: torch.Tensor
    memory: torch.Tensor
    size: tuple[int, int]
    prompt: torch.Tensor
    prompt_mask: torch.Tensor


@dataclass(frozen=True)
class FramePrep:
    """What the heads compute from a frame's features alone, whatever the prompt:
    `fusion_start` (B, H*W, C) the image tokens after the fusion encoder's first
    self-attention (`FusionEncoder.start`), `projected` the pixel decoder's convolutions of
    the finer levels (`PixelDecoder.project_levels`). About 0.4 s of a 1.7-2.4 s prompt at
    the released size on a 2-core CPU; 110 MB a frame in float32."""

    fusion_start: torch.Tensor
    projected: tuple[torch.Tensor, ...]


class Transformer(nn.Module):
    """Holds the fusion encoder and the decoder under the checkpoint's `transformer.`."""

    def __init__(self, *, fusion: FusionEncoderConfig, decoder: DecoderConfig) -> None:
        super().__init__()
        self.encoder = FusionEncoder(cfg=fusion)
        self.decoder = Decoder(cfg=decoder)


class DetectorHeads(nn.Module):
    """Everything of the detector after the backbone (vision neck and text encoder)."""

    def __init__(self, *, cfg: HeadsConfig = HeadsConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.geometry_encoder = GeometryEncoder(cfg=cfg.geometry)
        self.transformer = Transformer(fusion=cfg.fusion, decoder=cfg.decoder)
        self.dot_prod_scoring = DotProductScoring(cfg=cfg.scoring)
        self.segmentation_head = SegmentationHead(cfg=cfg.segmentation)

    def encode_prompt(
        self, image: torch.Tensor, image_pos: torch.Tensor, prompt: Prompt
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The prompt tokens (B, L + S, C) and padding mask: text, then the geometry
        encoder's tokens for `prompt`'s boxes and points on `image` (B, C, H, W)."""
        geometry, geometry_mask = self.geometry_encoder(
            image,
            image_pos,
            boxes=prompt.boxes,
            box_labels=prompt.box_labels,
            box_mask=prompt.box_mask,
            points=prompt.points,
            point_labels=prompt.point_labels,
            point_mask=prompt.point_mask,
        )
        tokens = torch.cat((prompt.text.to(geometry.dtype), geometry), dim=1)
        return tokens, torch.cat((prompt.text_mask, geometry_mask), dim=1)

    def prepare(self, levels: list[torch.Tensor], image_pos: torch.Tensor) -> FramePrep:
        """`FramePrep` of the neck's kept levels (finest first) and the last one's position
        encoding; pass it to `detect` and `segment` for any prompt on the same frame."""
        return FramePrep(
            fusion_start=self.transformer.encoder.start(levels[-1], image_pos),
            projected=self.segmentation_head.pixel_decoder.project_levels(list(levels[:-1])),
        )

    def detect(
        self,
        image: torch.Tensor,
        image_pos: torch.Tensor,
        prompt: Prompt,
        prep: FramePrep | None = None,
    ) -> Detection:
        """Steps 1-3 on the coarsest kept neck level `image` (B, C, H, W) and its position
        encoding: every query's logit, score and box, and what `segment` needs. `prep`:
        this frame's `prepare`, where it was kept."""
        size = (image.shape[-2], image.shape[-1])
        tokens, mask = self.encode_prompt(image, image_pos, prompt)
        start = None if prep is None else prep.fusion_start
        memory = self.transformer.encoder(image, image_pos, tokens, mask, start)
        memory_pos = image_pos.flatten(2).transpose(1, 2)
        decoded = self.transformer.decoder(memory, memory_pos, size, tokens, mask)
        queries = decoded.hidden[-1]
        logits = self.dot_prod_scoring(queries, tokens, mask)
        presence = decoded.presence_logits[-1]
        boxes = decoded.boxes[-1]
        return Detection(
            logits=logits,
            presence_logit=presence,
            scores=detection_scores(logits, presence),
            boxes=boxes,
            boxes_xyxy=box_cxcywh_to_xyxy(boxes),
            queries=queries,
            memory=memory,
            size=size,
            prompt=tokens,
            prompt_mask=mask,
        )

    def segment(
        self,
        detection: Detection,
        fine_levels: list[torch.Tensor],
        select: torch.Tensor | None = None,
        prep: FramePrep | None = None,
    ) -> SegmentationOutput:
        """Step 4: masks at the finest level for every query, or for `select` (B, K) query
        indices per batch row (say, those whose score passes a threshold: each mask depends
        only on its own query). fine_levels: the neck's levels finer than `image`, finest
        first; `prep` as for `detect`. With nothing selected the pixel decoder, a third of
        the heads' work at the default size, need not run at all: that is the caller's to
        skip."""
        queries = detection.queries
        if select is not None:
            index = select[..., None].expand(-1, -1, queries.shape[-1])
            queries = queries.gather(1, index)
        return self.segmentation_head(
            fine_levels,
            detection.memory,
            detection.size,
            detection.prompt,
            detection.prompt_mask,
            queries,
            None if prep is None else prep.projected,
        )

    def forward(
        self, levels: list[torch.Tensor], image_pos: torch.Tensor, prompt: Prompt
    ) -> HeadsOutput:
        """levels: the neck's kept levels, finest first, each (B, C, Hi, Wi); image_pos
        (B, C, H, W) the position encoding of the last (coarsest) one. Every query's
        outputs, masks included."""
        found = self.detect(levels[-1], image_pos, prompt)
        masks = self.segment(found, levels[:-1])
        return HeadsOutput(
            logits=found.logits,
            presence_logit=found.presence_logit,
            scores=found.scores,
            boxes=found.boxes,
            boxes_xyxy=found.boxes_xyxy,
            mask_logits=masks.mask_logits,
            semantic_logits=masks.semantic_logits,
        )
