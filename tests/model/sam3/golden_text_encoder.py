"""Golden outputs of SAM 3's text encoder (`sam3.model.text_encoder_ve.VETextEncoder`).

`make()` builds the oracle's text encoder as `model_builder._create_text_encoder` does
(d_model 256, context 32, its tokenizer) at two reduced sizes, `SIZES`: width 64, 2
layers, 4 heads (head dim 16) and the released width 1024, 1 layer, 16 heads (head dim
64). Weights come from `text_weights` (by checkpoint name; the oracle's uninitialised
`positional_embedding` and `text_projection` filled like the rest), and it encodes
`PHRASES` through `SAM3VLBackbone.forward_text`. Stored per size: the token ids and the
backbone outputs `language_features` (L, B, 256), `language_mask` (B, L) and, at the
small size, `language_embeds` (L, B, width).
"""

from __future__ import annotations

import hashlib

import torch
from sam3_oracle import seeded_value

from model.sam3.tokenizer import VOCABULARY_PATH

# Where the checkpoint (the oracle's Sam3Image) holds the text encoder.
PREFIX = "backbone.language_backbone."
SIZES: dict[str, dict[str, int]] = {
    "small": {"width": 64, "heads": 4, "layers": 2},
    "wide": {"width": 1024, "heads": 16, "layers": 1},
}
PHRASES = ("a red bicycle", "yellow school bus", "word " * 40, "🐶 café &amp; crème")


def _fast_seeded(name: str, shape: tuple[int, ...]) -> torch.Tensor:
    """`seeded_value`'s scale drawn in float32, and the token embedding (49,408 rows) as
    a product of two seeded factors of rank 64: the released width's weights in a
    fraction of a second rather than several."""
    digest = hashlib.sha256(f"{name}:{tuple(shape)}".encode()).digest()
    gen = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))
    fan_in = 1
    for d in shape[1:]:
        fan_in *= d
    scale = fan_in**-0.5 if len(shape) > 1 else 0.1
    if name.endswith("token_embedding.weight"):
        rows = torch.rand(shape[0], 64, generator=gen).sub_(0.5)
        cols = torch.rand(64, shape[1], generator=gen).sub_(0.5)
        return (rows @ cols).mul_(scale * 12 / 64**0.5)
    value = torch.rand(shape, generator=gen).mul_(2 * scale).sub_(scale)
    if len(shape) == 1 and "ln" in name and name.endswith("weight"):
        value += 1.0
    return value


def text_weights(template: dict[str, torch.Tensor], size: str) -> dict[str, torch.Tensor]:
    """Weights for a text encoder whose state dict is `template` (keys without `PREFIX`),
    seeded by their checkpoint names (`PREFIX` + key)."""
    seed = seeded_value if size == "small" else _fast_seeded
    return {k: seed(PREFIX + k, tuple(v.shape)) for k, v in template.items()}


def build_oracle(size: str) -> torch.nn.Module:
    """The oracle's text encoder at `SIZES[size]`, weights from `text_weights`."""
    from sam3_oracle import import_sam3, on_cpu, shrunk

    builder = import_sam3()
    with on_cpu(), shrunk(builder, VETextEncoder=SIZES[size]):
        encoder = builder._create_text_encoder(str(VOCABULARY_PATH))
    encoder.load_state_dict(text_weights(encoder.state_dict(), size), strict=True)
    return encoder.eval()


def run_oracle(encoder: torch.nn.Module, phrases: list[str]) -> dict[str, torch.Tensor]:
    """What `SAM3VLBackbone.forward_text` puts in the backbone output for `phrases`."""
    from sam3.model.vl_combiner import SAM3VLBackbone
    from sam3_oracle import on_cpu

    # The text half of the detector's backbone; its image half is not called.
    backbone = SAM3VLBackbone(visual=torch.nn.Identity(), text=encoder, scalp=1)
    with on_cpu(), torch.inference_mode():
        out = backbone.forward_text(phrases, device="cpu")
        out["ids"] = encoder.tokenizer(phrases, context_length=encoder.context_length)
    return out


def make() -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for size in SIZES:
        result = run_oracle(build_oracle(size), list(PHRASES))
        out[f"{size}_ids"] = result["ids"].to(torch.int32)
        out[f"{size}_language_features"] = result["language_features"]
        out[f"{size}_language_mask"] = result["language_mask"]
        if size == "small":
            out[f"{size}_language_embeds"] = result["language_embeds"]
    return out
