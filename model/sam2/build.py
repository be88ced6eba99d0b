"""Assembling a `Sam2Model` from its config."""

from __future__ import annotations

from model.sam2.config import Sam2Config
from model.sam2.image_encoder import build_image_encoder
from model.sam2.mask_decoder import MaskDecoder
from model.sam2.memory_attention import MemoryAttention
from model.sam2.memory_encoder import MemoryEncoder
from model.sam2.model import Sam2Model
from model.sam2.prompt_encoder import PromptEncoder


def build_model(cfg: Sam2Config) -> Sam2Model:
    """A SAM 2 model of the given variant at random init, in eval mode."""
    model = Sam2Model(
        cfg=cfg,
        image_encoder=build_image_encoder(cfg),
        prompt_encoder=PromptEncoder(
            cfg=cfg.prompt_encoder, image_size=cfg.image_size, backbone_stride=cfg.backbone_stride
        ),
        mask_decoder=MaskDecoder(cfg=cfg.mask_decoder),
        memory_encoder=MemoryEncoder(cfg=cfg.memory_encoder),
        memory_attention=MemoryAttention(cfg=cfg.memory_attention),
    )
    return model.eval()
