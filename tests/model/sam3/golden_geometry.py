"""Golden fixture: the oracle's geometry encoder (`geometry_encoder`, 3 layers, d 256) on a
5 x 6 grid for two prompts of boxes and points, positive and negative, padded differently,
and for a prompt with neither (its CLS token alone); and torchvision's ROI align (the
oracle's) on boxes inside a 9 x 11 map."""

from __future__ import annotations

import torch
from sam3_heads_support import oracle_params, seed_oracle
from sam3_oracle import import_sam3, on_cpu

PREFIX = "geometry_encoder."
B, C, H, W = 2, 256, 5, 6


def inputs() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(26000)
    return {
        "image": torch.randn(B, C, H, W, generator=gen),
        "image_pos": torch.randn(B, C, H, W, generator=gen) * 0.5,
        # cx, cy, w, h; the last box of the second prompt is padding.
        "boxes": torch.tensor(
            [
                [[0.5, 0.5, 0.4, 0.6], [0.2, 0.3, 0.2, 0.2], [0.3, 0.3, 0.01, 0.01]],
                [[0.8, 0.6, 0.3, 0.5], [0.1, 0.1, 0.1, 0.1], [0.5, 0.5, 0.5, 0.5]],
            ]
        ),
        "box_labels": torch.tensor([[1, 0, 1], [1, 0, 1]]),
        "box_mask": torch.tensor([[False, False, False], [False, False, True]]),
        # x, y; the second point of the first prompt is padding.
        "points": torch.tensor([[[0.7, 0.2], [0.5, 0.5]], [[0.1, 0.9], [0.95, 0.05]]]),
        "point_labels": torch.tensor([[1, 1], [0, 1]]),
        "point_mask": torch.tensor([[False, True], [False, False]]),
        "roi_features": torch.randn(2, 5, 9, 11, generator=gen),
        # x0, y0, x1, y1 in map pixels: whole map, under a pixel, edges, odd sizes.
        "roi_boxes": torch.tensor(
            [
                [[0.0, 0.0, 11.0, 9.0], [0.2, 0.3, 0.5, 0.6], [1.3, 2.2, 7.9, 8.1]],
                [[3.0, 1.0, 3.0, 1.0], [9.5, 0.0, 11.0, 9.0], [2.5, 4.5, 10.9, 8.95]],
            ]
        ),
    }


def build_oracle():
    mb = import_sam3()
    with on_cpu():
        encoder = mb._create_geometry_encoder()
    return seed_oracle(encoder, PREFIX)


def make() -> dict[str, torch.Tensor]:
    encoder = build_oracle()  # first: it makes torchvision importable on a CPU torch
    import torchvision
    from sam3.model.geometry_encoders import Prompt

    t = inputs()
    seq = lambda x: x.flatten(2).permute(2, 0, 1)  # noqa: E731 - (B, C, H, W) -> (HW, B, C)
    image = {"img_feats": [seq(t["image"])], "img_sizes": [(H, W)]}
    image["img_pos_embeds"] = [seq(t["image_pos"])]
    prompt = Prompt(
        box_embeddings=t["boxes"].transpose(0, 1),
        box_mask=t["box_mask"],
        box_labels=t["box_labels"].transpose(0, 1),
        point_embeddings=t["points"].transpose(0, 1),
        point_mask=t["point_mask"],
        point_labels=t["point_labels"].transpose(0, 1),
    )
    empty = Prompt(
        box_embeddings=torch.zeros(0, B, 4), box_mask=torch.zeros(B, 0, dtype=torch.bool)
    )
    # torchvision's Python ROI align (what runs without its compiled ops) compiles itself
    # on first use: tens of seconds; eager gives the same values.
    with on_cpu(), torch.no_grad(), torch._dynamo.config.patch(disable=True):
        tokens, mask = encoder(geo_prompt=prompt, **image)
        cls_tokens, cls_mask = encoder(geo_prompt=empty, **image)
        rois = torchvision.ops.roi_align(t["roi_features"], list(t["roi_boxes"].unbind(0)), 7)
    return {
        **t,
        "tokens": tokens.transpose(0, 1).contiguous(),
        "mask": mask,
        "cls_tokens": cls_tokens.transpose(0, 1).contiguous(),
        "cls_mask": cls_mask,
        "roi": rois.view(2, 3, 5, 7, 7),
        **oracle_params(encoder, PREFIX),
    }
