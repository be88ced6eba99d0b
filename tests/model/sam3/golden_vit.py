"""Golden fixture: the oracle's vision backbone (ViT trunk and detector neck) at a reduced
size, from a uint8 frame through the oracle's preprocessing to the kept pyramid levels.

The size keeps every feature of the released one: windows and global blocks, RoPE
interpolated for the global blocks, and a position embedding tiled with a ragged edge
(5 x 5 learnt positions over a 12 x 12 grid). Also stored: the checkpoint's key names
and shapes (`shape:<key>`), the RoPE tables it holds (`state:<key>`, complex), which
are not name-seeded, and the frame's resized uint8 image.
"""

from __future__ import annotations

import torch
from sam3_oracle import import_sam3, on_cpu, seeded_state_dict, shrunk

from model.sam3.vit import ViTConfig

VIT = ViTConfig(
    img_size=168,
    pretrain_img_size=70,
    embed_dim=64,
    depth=4,
    num_heads=4,
    global_att_blocks=(1, 3),
    window_size=6,
)
D_MODEL = 8
FRAME_HW = (120, 180)


def oracle_overrides(vit: ViTConfig = VIT, d_model: int = D_MODEL) -> dict[str, dict]:
    """`shrunk` arguments that build the oracle's vision backbone at these sizes."""
    sizes = {
        "img_size": vit.img_size,
        "pretrain_img_size": vit.pretrain_img_size,
        "embed_dim": vit.embed_dim,
        "depth": vit.depth,
        "num_heads": vit.num_heads,
        "global_att_blocks": vit.global_att_blocks,
        "window_size": vit.window_size,
    }
    return {
        "ViT": sizes,
        "PositionEmbeddingSine": {"precompute_resolution": None, "num_pos_feats": d_model},
        "Sam3DualViTDetNeck": {"d_model": d_model},
    }


def build_oracle(vit: ViTConfig = VIT, d_model: int = D_MODEL) -> torch.nn.Module:
    """The oracle's `backbone.vision_backbone` (no SAM 2 neck), name-seeded, in eval mode
    (its blocks have stochastic depth in training mode)."""
    mb = import_sam3()
    with on_cpu(), shrunk(mb, **oracle_overrides(vit, d_model)):
        neck = mb._create_vision_backbone(enable_inst_interactivity=False)
    neck.load_state_dict(seeded_state_dict(neck.state_dict()), strict=True)
    return neck.eval()


def frame(h: int = FRAME_HW[0], w: int = FRAME_HW[1]) -> torch.Tensor:
    """A (h, w, 3) uint8 frame with smooth regions and edges, like a photo's."""
    y = torch.linspace(0, 1, h)[:, None]
    x = torch.linspace(0, 1, w)[None, :]
    r = 200 * x + 40 * torch.sin(9 * y)
    g = 180 * y * (1 - x) + 50 * ((x - 0.6) ** 2 + (y - 0.4) ** 2 < 0.05)
    b = 120 + 100 * torch.cos(7 * x * y) * (x > 0.3)
    image = torch.stack([r, g, b], dim=-1).clamp(0, 255).round().to(torch.uint8)
    noise = torch.randint(0, 12, image.shape, generator=torch.Generator().manual_seed(3))
    return (image.int() + noise - 6).clamp(0, 255).to(torch.uint8)


def oracle_preprocess(image: torch.Tensor, size: int) -> torch.Tensor:
    """The oracle's preprocessing (`Sam3Processor`'s transform) of an (H, W, 3) uint8 frame."""
    import_sam3()
    from sam3.model.sam3_image_processor import Sam3Processor
    from torchvision.transforms.v2 import functional as tvf

    processor = Sam3Processor.__new__(Sam3Processor)
    Sam3Processor.__init__(processor, model=None, resolution=size, device="cpu")
    return processor.transform(tvf.to_image(image.numpy())).unsqueeze(0)


def make() -> dict[str, torch.Tensor]:
    neck = build_oracle()
    pixels = frame()
    image = oracle_preprocess(pixels, VIT.img_size)
    resized = ((image * 0.5 + 0.5) * 255).round().to(torch.uint8)
    assert torch.equal((resized.float() * (1 / 255) - 0.5) / 0.5, image)  # stored exactly
    with on_cpu(), torch.inference_mode():
        (trunk,) = neck.trunk(image)
        feats, pos, _, _ = neck(image)
    out = {"frame": pixels, "resized": resized, "trunk": trunk.contiguous()}
    # SAM3VLBackbone(scalp=1) keeps all but the coarsest level.
    for i, (f, p) in enumerate(zip(feats[:-1], pos[:-1], strict=True)):
        out[f"fpn.{i}"] = f.contiguous()
        out[f"pos.{i}"] = p.contiguous()
    for key, value in neck.state_dict().items():
        out[f"shape:{key}"] = torch.tensor(value.shape, dtype=torch.int64)
        if not value.is_floating_point():
            out[f"state:{key}"] = value.clone()
    return out
