"""Typed configs for every SAM 2 component and the eight official variants.

Every field has the value used by Meta's released checkpoints; a variant only
overrides what differs. `Sam2Config.with_image_size` gives a reduced-resolution
model (same weights, smaller inputs) for speed and tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class HieraConfig:
    """Hiera trunk (hierarchical ViT with windowed attention and query pooling)."""

    embed_dim: int = 96
    num_heads: int = 1
    stages: tuple[int, ...] = (1, 2, 7, 2)
    global_att_blocks: tuple[int, ...] = (5, 7, 9)
    window_spec: tuple[int, ...] = (8, 4, 14, 7)
    window_pos_embed_bkg_spatial_size: tuple[int, int] = (7, 7)
    q_pool: int = 3
    q_stride: tuple[int, int] = (2, 2)
    dim_mul: float = 2.0
    head_mul: float = 2.0
    mlp_ratio: float = 4.0

    @property
    def stage_dims(self) -> tuple[int, ...]:
        """Channel width of each stage's output, high resolution first."""
        return tuple(int(self.embed_dim * self.dim_mul**i) for i in range(len(self.stages)))


@dataclass(frozen=True)
class NeckConfig:
    """FPN neck turning trunk stages into `d_model`-wide feature levels."""

    d_model: int = 256
    # Trunk channels, lowest resolution first (the order of the official `convs`).
    backbone_channel_list: tuple[int, ...] = (768, 384, 192, 96)
    fpn_top_down_levels: tuple[int, ...] = (2, 3)
    fpn_interp_model: str = "nearest"
    # Number of lowest-resolution levels dropped after the neck.
    scalp: int = 1


@dataclass(frozen=True)
class PromptEncoderConfig:
    embed_dim: int = 256
    mask_in_chans: int = 16


@dataclass(frozen=True)
class MaskDecoderConfig:
    transformer_dim: int = 256
    transformer_depth: int = 2
    transformer_mlp_dim: int = 2048
    transformer_num_heads: int = 8
    attention_downsample_rate: int = 2
    num_multimask_outputs: int = 3
    iou_head_depth: int = 3
    iou_head_hidden_dim: int = 256
    use_high_res_features: bool = True
    iou_prediction_use_sigmoid: bool = True
    pred_obj_scores: bool = True
    pred_obj_scores_mlp: bool = True
    use_multimask_token_for_obj_ptr: bool = True
    # The video predictor turns these on; they pick the best of the three masks
    # when the single-mask output is unstable.
    dynamic_multimask_via_stability: bool = True
    dynamic_multimask_stability_delta: float = 0.05
    dynamic_multimask_stability_thresh: float = 0.98


@dataclass(frozen=True)
class MemoryEncoderConfig:
    in_dim: int = 256
    out_dim: int = 64
    # Mask downsampler: repeated strided convs until `total_stride` is reached.
    downsampler_kernel_size: int = 3
    downsampler_stride: int = 2
    downsampler_padding: int = 1
    downsampler_total_stride: int = 16
    # Fuser: ConvNeXt-style blocks.
    fuser_num_layers: int = 2
    fuser_kernel_size: int = 7
    fuser_padding: int = 3
    fuser_layer_scale_init_value: float = 1e-6
    fuser_use_dwconv: bool = True


@dataclass(frozen=True)
class MemoryAttentionConfig:
    d_model: int = 256
    num_layers: int = 4
    num_heads: int = 1
    dim_feedforward: int = 2048
    kv_in_dim: int = 64
    rope_theta: float = 10000.0
    pos_enc_at_input: bool = True
    pos_enc_at_attn: bool = False
    pos_enc_at_cross_attn_keys: bool = True
    pos_enc_at_cross_attn_queries: bool = False


@dataclass(frozen=True)
class Sam2Config:
    """The whole SAM 2 model: components plus the tracking behaviour switches."""

    name: str = "sam2.1-tiny"
    image_size: int = 1024
    backbone_stride: int = 16
    hiera: HieraConfig = field(default_factory=HieraConfig)
    neck: NeckConfig = field(default_factory=NeckConfig)
    prompt_encoder: PromptEncoderConfig = field(default_factory=PromptEncoderConfig)
    mask_decoder: MaskDecoderConfig = field(default_factory=MaskDecoderConfig)
    memory_encoder: MemoryEncoderConfig = field(default_factory=MemoryEncoderConfig)
    memory_attention: MemoryAttentionConfig = field(default_factory=MemoryAttentionConfig)

    num_maskmem: int = 7
    sigmoid_scale_for_mem_enc: float = 20.0
    sigmoid_bias_for_mem_enc: float = -10.0
    binarize_mask_from_pts_for_mem_enc: bool = True
    use_mask_input_as_output_without_sam: bool = True
    max_cond_frames_in_attn: int = -1
    directly_add_no_mem_embed: bool = True
    multimask_output_in_sam: bool = True
    multimask_min_pt_num: int = 0
    multimask_max_pt_num: int = 1
    multimask_output_for_tracking: bool = True
    memory_temporal_stride_for_eval: int = 1
    non_overlap_masks_for_mem_enc: bool = False
    use_obj_ptrs_in_encoder: bool = True
    max_obj_ptrs_in_encoder: int = 16
    add_tpos_enc_to_obj_ptrs: bool = True
    proj_tpos_enc_in_obj_ptrs: bool = True
    use_signed_tpos_enc_to_obj_ptrs: bool = True
    only_obj_ptrs_in_the_past_for_eval: bool = True
    # High-res skips, IoU sigmoid, object-score head and multimask pointer
    # token live in `mask_decoder`; the tracker reads them from there.
    fixed_no_obj_ptr: bool = True
    soft_no_obj_ptr: bool = False
    use_mlp_for_obj_ptr_proj: bool = True
    # SAM 2.1 learns a spatial embedding added to memories of frames where the
    # object is absent; SAM 2 has none.
    no_obj_embed_spatial: bool = True

    @property
    def feat_size(self) -> int:
        """Side of the lowest-resolution feature map used by attention and memory."""
        return self.image_size // self.backbone_stride

    @property
    def hidden_dim(self) -> int:
        return self.mask_decoder.transformer_dim

    @property
    def mem_dim(self) -> int:
        return self.memory_encoder.out_dim

    def with_image_size(self, image_size: int) -> Sam2Config:
        """Same architecture and weights, run at another input resolution."""
        if image_size <= 0 or image_size % 32:
            raise ValueError(f"image_size must be a positive multiple of 32, got {image_size}")
        return replace(self, image_size=image_size)


def _hiera_tiny() -> HieraConfig:
    return HieraConfig()


def _hiera_small() -> HieraConfig:
    return HieraConfig(stages=(1, 2, 11, 2), global_att_blocks=(7, 10, 13))


def _hiera_base_plus() -> HieraConfig:
    return HieraConfig(
        embed_dim=112,
        num_heads=2,
        stages=(2, 3, 16, 3),
        global_att_blocks=(12, 16, 20),
        window_pos_embed_bkg_spatial_size=(14, 14),
    )


def _hiera_large() -> HieraConfig:
    return HieraConfig(
        embed_dim=144,
        num_heads=2,
        stages=(2, 6, 36, 4),
        global_att_blocks=(23, 33, 43),
        window_spec=(8, 4, 16, 8),
    )


_TRUNKS = {
    "tiny": _hiera_tiny,
    "small": _hiera_small,
    "base-plus": _hiera_base_plus,
    "large": _hiera_large,
}


def _variant(version: str, size: str) -> Sam2Config:
    hiera = _TRUNKS[size]()
    neck = NeckConfig(backbone_channel_list=tuple(reversed(hiera.stage_dims)))
    sam21 = version == "sam2.1"
    return Sam2Config(
        name=f"{version}-{size}",
        hiera=hiera,
        neck=neck,
        no_obj_embed_spatial=sam21,
        add_tpos_enc_to_obj_ptrs=sam21,
        proj_tpos_enc_in_obj_ptrs=sam21,
        use_signed_tpos_enc_to_obj_ptrs=sam21,
    )


VARIANTS: dict[str, Sam2Config] = {
    f"{version}-{size}": _variant(version, size)
    for version in ("sam2.1", "sam2")
    for size in _TRUNKS
}

# Official file names of the released checkpoints, for the download dialog.
CHECKPOINT_FILES: dict[str, str] = {
    "sam2.1-tiny": "sam2.1_hiera_tiny.pt",
    "sam2.1-small": "sam2.1_hiera_small.pt",
    "sam2.1-base-plus": "sam2.1_hiera_base_plus.pt",
    "sam2.1-large": "sam2.1_hiera_large.pt",
    "sam2-tiny": "sam2_hiera_tiny.pt",
    "sam2-small": "sam2_hiera_small.pt",
    "sam2-base-plus": "sam2_hiera_base_plus.pt",
    "sam2-large": "sam2_hiera_large.pt",
}


def get_config(name: str, *, image_size: int | None = None) -> Sam2Config:
    """Config of an official variant by name, optionally at a reduced image size."""
    if name not in VARIANTS:
        raise ValueError(f"unknown SAM 2 variant {name!r}; known: {', '.join(VARIANTS)}")
    cfg = VARIANTS[name]
    return cfg if image_size is None else cfg.with_image_size(image_size)
