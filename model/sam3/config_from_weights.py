"""The finder's sizes read off a checkpoint's state dict: any size of SAM 3's design loads.

`infer_config(state)` takes the finder's keys (`detector.*` already stripped, as
`model.sam3.checkpoint.detector_state_dict` gives them) and returns the `FinderConfig` whose
`Sam3Finder` has exactly those keys and shapes; for the released checkpoint it is
`FinderConfig()`. What the shapes say:

- ViT: the patch embedding (patch size, width), the absolute position embedding (its
  pretraining grid), the blocks' count and MLP width, and each block's RoPE table
  (`attn.freqs_cis`, (side * side, head_dim / 2)): its columns give the head width, windowed
  blocks' sides the window, the global blocks' side the input grid (so the image size). When
  every table has one side, windows and grid coincide and only the last block is global
  (a window as large as the grid attends as a global block does).
- text encoder: width and vocabulary (token embedding), context (position embedding),
  layers, MLP width, CLIP's projection and the resizer to the detector's width.
- detector heads: widths, layers of the geometry encoder, fusion encoder and decoder, the
  decoder's queries, feed-forward widths, the scoring MLP, the pixel decoder's stages.

Head counts leave no trace in the shapes (the attention projections are width x width
whatever the split). The ViT's come from its RoPE tables; elsewhere they follow the
released model's head widths: 64 for the text encoder (1024 wide, 16 heads), 32 for the
detector heads (256 wide, 8 heads). A checkpoint trained with other head counts computes
something else under these: such files must be loaded with their `FinderConfig` given.

Keys that are absent leave the default in place, so the strict comparison of
`finder_from_state_dict` names them as missing rather than this module guessing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace

import torch

from model.sam3.decoder import DecoderConfig
from model.sam3.finder import FinderConfig
from model.sam3.fusion_encoder import FusionEncoderConfig
from model.sam3.geometry_encoder import GeometryEncoderConfig
from model.sam3.heads import HeadsConfig
from model.sam3.neck import NeckConfig
from model.sam3.text_encoder import TextEncoderConfig
from model.sam3.vit import ViTConfig

__all__ = ["DETECTOR_HEAD_DIM", "MAX_LAYERS", "TEXT_HEAD_DIM", "infer_config"]

# Layers of one stack at most (the released model's deepest has 32).
MAX_LAYERS = 256
# Head widths of the released model where the weights do not say (see the module docstring).
TEXT_HEAD_DIM = 64
DETECTOR_HEAD_DIM = 32

_TRUNK = "backbone.vision_backbone.trunk."
_TEXT = "backbone.language_backbone."
_State = Mapping[str, torch.Tensor]


def infer_config(state: _State) -> FinderConfig:
    """The `FinderConfig` of a finder state dict (keys without `detector.`)."""
    default = FinderConfig()
    d_model = _dim(state, "geometry_encoder.cls_embed.weight", 1, default.heads.geometry.d_model)
    return FinderConfig(
        vit=_vit(state, default.vit),
        neck=_neck(state, default.neck),
        text=_text(state, default.text),
        heads=_heads(state, default.heads, d_model),
        max_exemplars=default.max_exemplars,
        cached_frames=default.cached_frames,
    )


def _dim(state: _State, key: str, axis: int, default: int) -> int:
    tensor = state.get(key)
    return default if tensor is None or tensor.ndim <= axis else int(tensor.shape[axis])


def _count(state: _State, prefix: str, default: int) -> int:
    """How many numbered children `prefix.N.` the state holds (the default if none). A
    count past MAX_LAYERS is refused: one key `blocks.99999999.x` would otherwise build a
    hundred million modules (tens of GB of Python objects, even on the meta device)."""
    pattern = re.compile(re.escape(prefix) + r"\.(\d+)\.")
    found = {int(m.group(1)) for key in state if (m := pattern.match(key))}
    count = max(found) + 1 if found else default
    if count > MAX_LAYERS:
        raise ValueError(f"{prefix} numbers {count} layers, over the limit of {MAX_LAYERS}")
    return count


def _vit(state: _State, default: ViTConfig) -> ViTConfig:
    width = _dim(state, _TRUNK + "patch_embed.proj.weight", 0, default.embed_dim)
    patch = _dim(state, _TRUNK + "patch_embed.proj.weight", 2, default.patch_size)
    depth = _count(state, _TRUNK + "blocks", default.depth)
    positions = _dim(state, _TRUNK + "pos_embed", 1, 0) - 1  # less the class token
    pretrain_side = round(positions**0.5) if positions > 0 else default.pretrain_grid_size
    hidden = _dim(state, _TRUNK + "blocks.0.mlp.fc1.weight", 0, default.mlp_hidden_dim)
    cfg = replace(
        default,
        patch_size=patch,
        embed_dim=width,
        depth=depth,
        pretrain_img_size=pretrain_side * patch,
        mlp_ratio=hidden / width,
    )
    tables = [state.get(f"{_TRUNK}blocks.{i}.attn.freqs_cis") for i in range(depth)]
    if any(t is None or t.ndim != 2 for t in tables):
        return replace(cfg, num_heads=max(1, width // default.head_dim))
    sides = [round(int(t.shape[0]) ** 0.5) for t in tables]
    head_dim = 2 * int(tables[0].shape[1])
    grid, window = max(sides), min(sides)
    global_blocks = tuple(i for i, s in enumerate(sides) if s == grid and grid != window)
    return replace(
        cfg,
        num_heads=max(1, width // head_dim),
        img_size=grid * patch,
        window_size=window,
        global_att_blocks=global_blocks or (depth - 1,),
    )


def _neck(state: _State, default: NeckConfig) -> NeckConfig:
    key = "backbone.vision_backbone.convs.0.conv_1x1.weight"
    return replace(default, d_model=_dim(state, key, 0, default.d_model))


def _text(state: _State, default: TextEncoderConfig) -> TextEncoderConfig:
    enc = _TEXT + "encoder."
    width = _dim(state, enc + "token_embedding.weight", 1, default.width)
    hidden = _dim(
        state, enc + "transformer.resblocks.0.mlp.c_fc.weight", 0, int(width * default.mlp_ratio)
    )
    return replace(
        default,
        width=width,
        heads=max(1, width // TEXT_HEAD_DIM),
        layers=_count(state, enc + "transformer.resblocks", default.layers),
        context_length=_dim(state, enc + "positional_embedding", 0, default.context_length),
        vocab_size=_dim(state, enc + "token_embedding.weight", 0, default.vocab_size),
        d_model=_dim(state, _TEXT + "resizer.weight", 0, default.d_model),
        mlp_ratio=hidden / width,
        projection_dim=_dim(state, enc + "text_projection", 1, default.projection_dim),
    )


def _heads(state: _State, default: HeadsConfig, d_model: int) -> HeadsConfig:
    heads = max(1, d_model // DETECTOR_HEAD_DIM)
    geo, fusion, dec = "geometry_encoder.", "transformer.encoder.", "transformer.decoder."
    seg = "segmentation_head.pixel_decoder."
    return HeadsConfig(
        geometry=GeometryEncoderConfig(
            d_model=d_model,
            num_layers=_count(state, geo + "encode", default.geometry.num_layers),
            num_heads=heads,
            dim_feedforward=_dim(
                state, geo + "encode.0.linear1.weight", 0, default.geometry.dim_feedforward
            ),
            roi_size=_dim(state, geo + "boxes_pool_project.weight", 2, default.geometry.roi_size),
        ),
        fusion=FusionEncoderConfig(
            d_model=d_model,
            num_layers=_count(state, fusion + "layers", default.fusion.num_layers),
            num_heads=heads,
            dim_feedforward=_dim(
                state, fusion + "layers.0.linear1.weight", 0, default.fusion.dim_feedforward
            ),
        ),
        decoder=DecoderConfig(
            d_model=d_model,
            num_layers=_count(state, dec + "layers", default.decoder.num_layers),
            num_queries=_dim(state, dec + "query_embed.weight", 0, default.decoder.num_queries),
            num_heads=heads,
            dim_feedforward=_dim(
                state, dec + "layers.0.linear1.weight", 0, default.decoder.dim_feedforward
            ),
        ),
        scoring=replace(
            default.scoring,
            d_model=d_model,
            d_proj=_dim(state, "dot_prod_scoring.prompt_proj.weight", 0, default.scoring.d_proj),
            prompt_hidden_dim=_dim(
                state,
                "dot_prod_scoring.prompt_mlp.layers.0.weight",
                0,
                default.scoring.prompt_hidden_dim,
            ),
        ),
        segmentation=replace(
            default.segmentation,
            d_model=d_model,
            num_heads=heads,
            upsampling_stages=_count(
                state, seg + "conv_layers", default.segmentation.upsampling_stages
            ),
        ),
    )
