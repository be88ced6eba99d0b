"""Golden fixture: the oracle's DETR decoder (`transformer.decoder`, 2 layers, 12 queries,
d 256) and dot-product scoring (`dot_prod_scoring`) on a 5 x 6 grid for a batch of two
prompts (the second padded), with the boxes and scores its image model derives."""

from __future__ import annotations

import torch
from sam3_heads_support import oracle_params, seed_oracle
from sam3_oracle import import_sam3, on_cpu, shrunk

DECODER = "transformer.decoder."
SCORING = "dot_prod_scoring."
LAYERS, QUERIES = 2, 12
B, C, H, W, S = 2, 256, 5, 6, 7


def inputs() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(260)
    mask = torch.zeros(B, S, dtype=torch.bool)
    mask[1, 3:] = True
    return {
        "memory": torch.randn(B, H * W, C, generator=gen),
        "memory_pos": torch.randn(B, H * W, C, generator=gen) * 0.5,
        "prompt": torch.randn(B, S, C, generator=gen),
        "prompt_mask": mask,
    }


def build_oracle():
    mb = import_sam3()
    decoder_size = {"num_layers": LAYERS, "num_queries": QUERIES, "resolution": None}
    with on_cpu(), shrunk(mb, TransformerDecoder=decoder_size):
        decoder = mb._create_transformer_decoder()
        scoring = mb._create_dot_product_scoring()
    return seed_oracle(decoder, DECODER), seed_oracle(scoring, SCORING)


def make() -> dict[str, torch.Tensor]:
    from sam3.model.model_misc import inverse_sigmoid

    decoder, scoring = build_oracle()
    t = inputs()
    seq = lambda x: x.transpose(0, 1)  # noqa: E731 - batch first -> sequence first
    with on_cpu(), torch.no_grad():
        hs, ref_boxes, presence, _ = decoder(
            tgt=decoder.query_embed.weight[:, None].repeat(1, B, 1),
            memory=seq(t["memory"]),
            memory_key_padding_mask=None,
            pos=seq(t["memory_pos"]),
            reference_boxes=None,
            level_start_index=torch.tensor([0]),
            spatial_shapes=torch.tensor([[H, W]]),
            valid_ratios=torch.ones(B, 1, 2),
            tgt_mask=None,
            memory_text=seq(t["prompt"]),
            text_attention_mask=t["prompt_mask"],
            apply_dac=False,
        )
        # As Sam3Image._update_scores_and_boxes and Sam3Processor derive them.
        hs, ref_boxes = hs.transpose(1, 2), ref_boxes.transpose(1, 2)
        logits = scoring(hs, seq(t["prompt"]), t["prompt_mask"])  # (L, B, Q, 1)
        boxes = (inverse_sigmoid(ref_boxes) + decoder.bbox_embed(hs)).sigmoid()
        presence = presence.transpose(1, 2)  # (L, B, 1)
        scores = logits[-1].sigmoid() * presence[-1].sigmoid().unsqueeze(1)
    return {
        **t,
        "hidden": hs.contiguous(),
        "boxes": boxes.contiguous(),
        "presence_logits": presence.squeeze(-1).contiguous(),
        "logits": logits.squeeze(-1).contiguous(),
        "scores": scores.squeeze(-1).contiguous(),
        **oracle_params(decoder, DECODER),
        **oracle_params(scoring, SCORING),
    }
