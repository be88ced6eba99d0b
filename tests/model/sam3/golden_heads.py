"""Golden fixture: the oracle's image model after its backbone (`Sam3Image.forward_grounding`
with the neck's levels and the text features given), geometry encoder, fusion encoder (2
layers), decoder (2 layers, 12 queries), scoring and segmentation head, for one image and
one prompt: text only, and text with a positive and a negative exemplar box."""

from __future__ import annotations

import torch
from sam3_heads_support import oracle_params, seed_oracle
from sam3_oracle import import_sam3, on_cpu, shrunk
from torch import nn

LAYERS, QUERIES = 2, 12
C, L = 256, 6
SIZES = ((12, 16), (6, 8), (3, 4))
CASES = ("text", "exemplar")
OUTPUTS = ("logits", "presence_logit", "scores", "boxes", "boxes_xyxy", "mask_logits")
OUTPUTS += ("semantic_logits",)


def inputs() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(26001)
    t = {f"level{i}": torch.randn(1, C, *size, generator=gen) for i, size in enumerate(SIZES)}
    t["image_pos"] = torch.randn(1, C, *SIZES[-1], generator=gen) * 0.5
    t["text"] = torch.randn(1, L, C, generator=gen)
    t["text_mask"] = torch.tensor([[False] * 4 + [True] * 2])
    t["boxes"] = torch.tensor([[[0.4, 0.5, 0.5, 0.6], [0.75, 0.3, 0.3, 0.4]]])
    t["box_labels"] = torch.tensor([[1, 0]])
    return t


def build_oracle(*, full_size: bool = False):
    """The oracle's image model without a backbone, reduced (or at Meta's default size)."""
    mb = import_sam3()
    decoder = {"num_layers": LAYERS, "num_queries": QUERIES, "resolution": None}
    encoder = {"num_layers": LAYERS}
    reduced = (
        {} if full_size else {"TransformerDecoder": decoder, "TransformerEncoderFusion": encoder}
    )
    with on_cpu(), shrunk(mb, **reduced):
        model = mb._create_sam3_model(
            nn.Identity(),  # the backbone: its outputs are given
            mb._create_sam3_transformer(),
            mb._create_geometry_encoder(),
            mb._create_segmentation_head(),
            mb._create_dot_product_scoring(),
            None,
            eval_mode=True,
        )
    return seed_oracle(model, "")


def make() -> dict[str, torch.Tensor]:
    model = build_oracle()
    from sam3.model.data_misc import FindStage
    from sam3.model.geometry_encoders import Prompt

    t = inputs()
    levels = [t[f"level{i}"] for i in range(len(SIZES))]
    backbone_out = {
        "backbone_fpn": levels,
        # Only the last level's position encoding is read.
        "vision_pos_enc": [torch.zeros_like(x) for x in levels[:-1]] + [t["image_pos"]],
        "language_features": t["text"].transpose(0, 1),
        "language_mask": t["text_mask"],
    }
    find = FindStage(
        img_ids=torch.tensor([0]),
        text_ids=torch.tensor([0]),
        input_boxes=None,
        input_boxes_mask=None,
        input_boxes_label=None,
        input_points=None,
        input_points_mask=None,
    )
    prompts = {
        "text": Prompt(
            box_embeddings=torch.zeros(0, 1, 4), box_mask=torch.zeros(1, 0, dtype=torch.bool)
        ),
        "exemplar": Prompt(
            box_embeddings=t["boxes"].transpose(0, 1),
            box_mask=torch.zeros(1, 2, dtype=torch.bool),
            box_labels=t["box_labels"].transpose(0, 1),
        ),
    }
    result = dict(t)
    for case in CASES:
        # torchvision's Python ROI align (what runs without its compiled ops) compiles itself
        # on first use: tens of seconds; eager gives the same values.
        with on_cpu(), torch.no_grad(), torch._dynamo.config.patch(disable=True):
            out = model.forward_grounding(
                backbone_out=dict(backbone_out),
                find_input=find,
                find_target=None,
                geometric_prompt=prompts[case],
            )
        # As Sam3Processor combines them.
        scores = out["pred_logits"].sigmoid() * out["presence_logit_dec"].sigmoid().unsqueeze(1)
        got = {
            "logits": out["pred_logits"].squeeze(-1),
            "presence_logit": out["presence_logit_dec"].squeeze(-1),
            "scores": scores.squeeze(-1),
            "boxes": out["pred_boxes"],
            "boxes_xyxy": out["pred_boxes_xyxy"],
            "mask_logits": out["pred_masks"],
            "semantic_logits": out["semantic_seg"],
        }
        result.update({f"{case}/{k}": v.contiguous() for k, v in got.items()})
    return {**result, **oracle_params(model, "")}
