"""The assembled SAM 2 model: image features, SAM heads, memory conditioning, memory encoding.

`Sam2Model` owns the five components and the tracker's own parameters (memory
temporal encodings, no-memory / no-object embeddings, object-pointer projections).
It holds no per-video state: the tracking session decides which past frames are
remembered, asks `plan_memories` which of them the model would read for a frame,
and passes the resolved tensors to `condition_on_memories`. Keeping the selection
(pure integers) apart from the tensor maths lets the session know in advance which
frames it must keep or recompute.

Tensor conventions: images (B, 3, S, S); feature maps (B, C, h, w) with h = S / 16;
low-resolution mask logits (B, 1, 4h, 4w); high-resolution ones (B, 1, S, S).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from model.kernels.cpu_gemm import Linear
from model.sam2.common import MLP
from model.sam2.config import Sam2Config
from model.sam2.image_encoder import ImageEncoder
from model.sam2.mask_decoder import MaskDecoder
from model.sam2.memory_attention import MemoryAttention
from model.sam2.memory_encoder import MemoryEncoder
from model.sam2.memory_selection import MemoryPlan, plan_memories, select_closest_cond_frames
from model.sam2.memory_tokens import pointer_tokens, spatial_memory_tokens
from model.sam2.prompt_encoder import PromptEncoder
from model.sam2.types import ImageFeatures, Memory, PointInputs, SamOutput, TrackOutput

__all__ = [
    "ImageFeatures",
    "Memory",
    "MemoryPlan",
    "NO_OBJ_SCORE",
    "PointInputs",
    "Sam2Model",
    "SamOutput",
    "TrackOutput",
    "select_closest_cond_frames",
]

# Mask logit standing for "object absent": far below any real prediction.
NO_OBJ_SCORE = -1024.0
# A mask used directly as output becomes logits of -10 / +10 (sigmoid ~0 / ~1).
_MASK_OUT_SCALE, _MASK_OUT_BIAS = 20.0, -10.0


class Sam2Model(nn.Module):
    """SAM 2 / 2.1 with official parameter names; inference building blocks only."""

    def __init__(
        self,
        *,
        cfg: Sam2Config,
        image_encoder: ImageEncoder,
        prompt_encoder: PromptEncoder,
        mask_decoder: MaskDecoder,
        memory_encoder: MemoryEncoder,
        memory_attention: MemoryAttention,
    ) -> None:
        super().__init__()
        dec = cfg.mask_decoder
        if dec.transformer_dim != cfg.memory_attention.d_model:
            raise ValueError("mask decoder and memory attention widths differ")
        if cfg.fixed_no_obj_ptr and not (dec.pred_obj_scores and cfg.use_obj_ptrs_in_encoder):
            raise ValueError("fixed_no_obj_ptr needs pred_obj_scores and use_obj_ptrs_in_encoder")
        if cfg.proj_tpos_enc_in_obj_ptrs and not cfg.add_tpos_enc_to_obj_ptrs:
            raise ValueError("proj_tpos_enc_in_obj_ptrs needs add_tpos_enc_to_obj_ptrs")
        self.cfg = cfg
        hidden, mem = cfg.hidden_dim, cfg.mem_dim
        self.image_encoder = image_encoder
        self.sam_prompt_encoder = prompt_encoder
        self.sam_mask_decoder = mask_decoder
        self.memory_encoder = memory_encoder
        self.memory_attention = memory_attention

        self.maskmem_tpos_enc = nn.Parameter(_trunc_normal(cfg.num_maskmem, 1, 1, mem))
        self.no_mem_embed = nn.Parameter(_trunc_normal(1, 1, hidden))
        self.no_mem_pos_enc = nn.Parameter(_trunc_normal(1, 1, hidden))
        if dec.pred_obj_scores and cfg.use_obj_ptrs_in_encoder:
            self.no_obj_ptr = nn.Parameter(_trunc_normal(1, hidden))
        if cfg.no_obj_embed_spatial:
            self.no_obj_embed_spatial = nn.Parameter(_trunc_normal(1, mem))
        if cfg.use_obj_ptrs_in_encoder:
            # Brings a mask prompt to the decoder's low-res logit scale (stride 4).
            self.mask_downsample = nn.Conv2d(1, 1, kernel_size=4, stride=4)
            if cfg.use_mlp_for_obj_ptr_proj:
                self.obj_ptr_proj: nn.Module = MLP(
                    input_dim=hidden, hidden_dim=hidden, output_dim=hidden, num_layers=3
                )
            else:
                self.obj_ptr_proj = Linear(hidden, hidden)
        else:
            self.obj_ptr_proj = nn.Identity()
        self.obj_ptr_tpos_proj: nn.Module = (
            Linear(hidden, mem) if cfg.proj_tpos_enc_in_obj_ptrs else nn.Identity()
        )

    @property
    def device(self) -> torch.device:
        return self.no_mem_embed.device

    @property
    def image_size(self) -> int:
        return self.cfg.image_size

    @property
    def low_res_size(self) -> int:
        """Side of the decoder's low-resolution mask logits."""
        return 4 * self.cfg.feat_size

    # ------------------------------------------------------------------ image features

    def encode_image(self, images: torch.Tensor) -> ImageFeatures:
        """(B, 3, S, S) normalised images -> features for the heads and the memory."""
        out = self.image_encoder(images)
        fpn, pos = list(out.backbone_fpn), list(out.vision_pos_enc)
        high_res: tuple[torch.Tensor, ...] = ()
        if self.cfg.mask_decoder.use_high_res_features:
            # Projected once per frame here rather than on every click in the decoder.
            high_res = (
                self.sam_mask_decoder.conv_s0(fpn[0]),
                self.sam_mask_decoder.conv_s1(fpn[1]),
            )
        return ImageFeatures(vision=fpn[-1], vision_pos=pos[-1], high_res=high_res)

    # ------------------------------------------------------------------ SAM heads

    def use_multimask(self, *, is_init_cond_frame: bool, num_points: int) -> bool:
        """Whether the decoder should propose three masks for this prompt."""
        cfg = self.cfg
        return (
            cfg.multimask_output_in_sam
            and (is_init_cond_frame or cfg.multimask_output_for_tracking)
            and cfg.multimask_min_pt_num <= num_points <= cfg.multimask_max_pt_num
        )

    def forward_sam_heads(
        self,
        backbone_features: torch.Tensor,
        *,
        points: PointInputs | None = None,
        mask_inputs: torch.Tensor | None = None,
        high_res: tuple[torch.Tensor, ...] = (),
        multimask_output: bool = False,
    ) -> SamOutput:
        """Prompt encoder + mask decoder on (B, C, h, w) features.

        `mask_inputs` is a (B, 1, H', W') mask or logit map, resized to the prompt
        encoder's mask size when needed.
        """
        b, device = backbone_features.shape[0], backbone_features.device
        if points is None:
            # The decoder always gets at least one token: a padding point.
            points = PointInputs(
                coords=torch.zeros(b, 1, 2, device=device),
                labels=-torch.ones(b, 1, dtype=torch.int32, device=device),
            )
        sparse, dense = self.sam_prompt_encoder(
            points=(points.coords, points.labels), boxes=None, masks=self._mask_prompt(mask_inputs)
        )
        low_multi, ious, tokens, score_logits = self.sam_mask_decoder(
            image_embeddings=backbone_features,
            image_pe=self.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=multimask_output,
            repeat_image=False,
            high_res_features=list(high_res) if high_res else None,
        )
        present = score_logits > 0  # (B, 1)
        if self.cfg.mask_decoder.pred_obj_scores:
            # Masks are a hard present/absent choice, consistent with the memories.
            low_multi = torch.where(present[:, :, None, None], low_multi, NO_OBJ_SCORE)
        low_multi = low_multi.float()
        high_multi = self.upsample_logits(low_multi)
        token = tokens[:, 0]
        if multimask_output:
            best = torch.argmax(ious, dim=-1)
            rows = torch.arange(b, device=device)
            low, high = low_multi[rows, best].unsqueeze(1), high_multi[rows, best].unsqueeze(1)
            if tokens.shape[1] > 1:
                token = tokens[rows, best]
        else:
            low, high = low_multi, high_multi
        obj_ptr = self._mix_no_object_pointer(self.obj_ptr_proj(token), score_logits, present)
        return SamOutput(low_multi, high_multi, ious, low, high, obj_ptr, score_logits)

    def _mask_prompt(self, mask_inputs: torch.Tensor | None) -> torch.Tensor | None:
        """A mask or logit map resized (antialiased) to the prompt encoder's mask size."""
        target = tuple(self.sam_prompt_encoder.mask_input_size)
        if mask_inputs is None or tuple(mask_inputs.shape[-2:]) == target:
            return mask_inputs
        return F.interpolate(mask_inputs.float(), size=target, mode="bilinear", antialias=True)

    def _mix_no_object_pointer(
        self, obj_ptr: torch.Tensor, score_logits: torch.Tensor, present: torch.Tensor
    ) -> torch.Tensor:
        cfg = self.cfg
        if not cfg.mask_decoder.pred_obj_scores:
            return obj_ptr
        weight = score_logits.sigmoid() if cfg.soft_no_obj_ptr else present.float()
        if cfg.fixed_no_obj_ptr:
            obj_ptr = weight * obj_ptr
        return obj_ptr + (1 - weight) * self.no_obj_ptr

    def upsample_logits(self, low_res: torch.Tensor) -> torch.Tensor:
        """(B, M, 4h, 4w) -> (B, M, S, S) bilinear, as the heads and the memory see masks."""
        size = (self.image_size, self.image_size)
        return F.interpolate(low_res, size=size, mode="bilinear", align_corners=False)

    def use_mask_as_output(
        self,
        backbone_features: torch.Tensor,
        high_res: tuple[torch.Tensor, ...],
        mask: torch.Tensor,
    ) -> SamOutput:
        """Take a (B, 1, S, S) binary mask prompt as the prediction itself."""
        mask = mask.float()
        high = mask * _MASK_OUT_SCALE + _MASK_OUT_BIAS
        low = F.interpolate(
            high, size=(high.shape[-2] // 4, high.shape[-1] // 4), mode="bilinear", antialias=True
        )
        ious = mask.new_ones(mask.shape[0], 1)
        if self.cfg.use_obj_ptrs_in_encoder:
            # The pointer still comes from the decoder, prompted with the mask.
            obj_ptr = self.forward_sam_heads(
                backbone_features, mask_inputs=self.mask_downsample(mask), high_res=high_res
            ).obj_ptr
        else:
            obj_ptr = mask.new_zeros(mask.shape[0], self.cfg.hidden_dim)
        # Presence follows the mask itself, not the decoder's object score.
        present = (mask.flatten(1) > 0).any(dim=1, keepdim=True)  # (B, 1)
        score_logits = _MASK_OUT_SCALE * present.float() + _MASK_OUT_BIAS
        if self.cfg.mask_decoder.pred_obj_scores:
            weight = present.float()
            if self.cfg.fixed_no_obj_ptr:
                obj_ptr = weight * obj_ptr
            obj_ptr = obj_ptr + (1 - weight) * self.no_obj_ptr
        return SamOutput(low, high, ious, low, high, obj_ptr, score_logits)

    # ------------------------------------------------------------------ memory selection

    def plan_memories(
        self, frame: int, cond_frames: Collection[int], *, num_frames: int, reverse: bool = False
    ) -> MemoryPlan:
        """Which frames' memories tracking `frame` reads (see `model.sam2.memory_selection`)."""
        return plan_memories(self.cfg, frame, cond_frames, num_frames=num_frames, reverse=reverse)

    # ------------------------------------------------------------------ memory attention

    def condition_on_memories(
        self,
        features: ImageFeatures,
        *,
        is_init_cond_frame: bool,
        memories: Sequence[tuple[int, Memory]] = (),
        pointers: Sequence[tuple[int, torch.Tensor]] = (),
        max_pointers: int = 1,
        first_layer: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Fuse the frame's features with its memories -> (B, C, h, w).

        memories: (temporal position 0..num_maskmem-1, memory), conditioning frames at 0.
        pointers: (temporal distance, (B, C) object pointer).
        first_layer: `shared_first_layer(features)`, when the frame's objects run in
            several calls.
        """
        x = features.vision
        b, c, h, w = x.shape
        if self.cfg.num_maskmem == 0:
            return x
        if is_init_cond_frame:
            if self.cfg.directly_add_no_mem_embed:
                return x + self.no_mem_embed.reshape(1, c, 1, 1)
            tokens = [self.no_mem_embed.expand(1, b, -1)]
            tokens_pos = [self.no_mem_pos_enc.expand(1, b, -1)]
            num_ptr_tokens = 0
        else:
            if not memories:
                raise ValueError("a frame that is not an initial conditioning frame needs memories")
            tokens, tokens_pos = spatial_memory_tokens(
                memories,
                self.memory_encoder.position_encoding,
                self.maskmem_tpos_enc,
                device=self.device,
                dtype=x.dtype,
            )
            num_ptr_tokens = 0
            if self.cfg.use_obj_ptrs_in_encoder and pointers:
                ptr_tokens, ptr_pos = pointer_tokens(
                    pointers, max_pointers, b, self.cfg, self.obj_ptr_tpos_proj, device=self.device
                )
                tokens.append(ptr_tokens.to(x.dtype))
                tokens_pos.append(ptr_pos.to(x.dtype))
                num_ptr_tokens = ptr_tokens.shape[0]
        fused = self.memory_attention(
            curr=x.flatten(2).permute(2, 0, 1),  # (hw, B, C)
            curr_pos=features.vision_pos.flatten(2).permute(2, 0, 1),
            memory=torch.cat(tokens, dim=0),
            memory_pos=torch.cat(tokens_pos, dim=0),
            num_obj_ptr_tokens=num_ptr_tokens,
            first_layer=first_layer,
        )
        return fused.permute(1, 2, 0).reshape(b, c, h, w)

    def shared_first_layer(self, features: ImageFeatures) -> torch.Tensor:
        """Memory attention's first self-attention for one frame, (1, hw, C): it sees no
        memory, so every object of the frame shares it (`condition_on_memories`)."""
        return self.memory_attention.first_self_attention(
            features.vision[:1].flatten(2).permute(2, 0, 1),
            features.vision_pos[:1].flatten(2).permute(2, 0, 1),
        )

    # ------------------------------------------------------------------ memory encoding

    def encode_memory(
        self,
        vision: torch.Tensor,
        high_res_masks: torch.Tensor,
        object_score_logits: torch.Tensor,
        *,
        is_mask_from_pts: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, h, w) features + (B, 1, S, S) logits -> memory (B, mem, h, w) and its pos."""
        cfg = self.cfg
        if cfg.non_overlap_masks_for_mem_enc:
            high_res_masks = non_overlapping(high_res_masks)
        if cfg.binarize_mask_from_pts_for_mem_enc and is_mask_from_pts:
            # Clicked frames are remembered exactly as the user saw them.
            mask = (high_res_masks > 0).float()
        else:
            mask = torch.sigmoid(high_res_masks)
        if cfg.sigmoid_scale_for_mem_enc != 1.0:
            mask = mask * cfg.sigmoid_scale_for_mem_enc
        if cfg.sigmoid_bias_for_mem_enc != 0.0:
            mask = mask + cfg.sigmoid_bias_for_mem_enc
        feats, pos = self.memory_encoder(vision, mask, skip_mask_sigmoid=True)
        if cfg.no_obj_embed_spatial:
            absent = (object_score_logits <= 0).to(feats.dtype)  # (B, 1)
            feats = feats + absent[:, :, None, None] * self.no_obj_embed_spatial[:, :, None, None]
        return feats, pos

    # ------------------------------------------------------------------ one tracking step

    def track_step(
        self,
        features: ImageFeatures,
        *,
        is_init_cond_frame: bool,
        points: PointInputs | None = None,
        mask_inputs: torch.Tensor | None = None,
        memories: Sequence[tuple[int, Memory]] = (),
        pointers: Sequence[tuple[int, torch.Tensor]] = (),
        max_pointers: int = 1,
        prev_logits: torch.Tensor | None = None,
        run_memory_encoder: bool = True,
        conditioned: torch.Tensor | None = None,
    ) -> TrackOutput:
        """Segment B objects on one frame from prompts and memories; optionally remember it.

        `conditioned`: the output of `condition_on_memories` for these features and
        memories when the caller already has it (a correction click on a tracked frame);
        the memories are then not read again.
        """
        if points is not None and mask_inputs is not None:
            raise ValueError("points and a mask prompt cannot be given on the same step")
        if mask_inputs is not None and self.cfg.use_mask_input_as_output_without_sam:
            sam = self.use_mask_as_output(features.vision, features.high_res, mask_inputs)
        else:
            fused = conditioned
            if fused is None:
                fused = self.condition_on_memories(
                    features,
                    is_init_cond_frame=is_init_cond_frame,
                    memories=memories,
                    pointers=pointers,
                    max_pointers=max_pointers,
                )
            if prev_logits is not None:
                if points is None or mask_inputs is not None:
                    raise ValueError("previous logits refine a point prompt, and only that")
                mask_inputs = prev_logits
            num_points = 0 if points is None else points.num_points
            sam = self.forward_sam_heads(
                fused,
                points=points,
                mask_inputs=mask_inputs,
                high_res=features.high_res,
                multimask_output=self.use_multimask(
                    is_init_cond_frame=is_init_cond_frame, num_points=num_points
                ),
            )
        mem_feats = mem_pos = None
        if run_memory_encoder and self.cfg.num_maskmem > 0:
            mem_feats, mem_pos = self.encode_memory(
                features.vision,
                sam.high_res_masks,
                sam.object_score_logits,
                is_mask_from_pts=points is not None,
            )
        return TrackOutput(sam=sam, memory_features=mem_feats, memory_pos=mem_pos)


def non_overlapping(logits: torch.Tensor) -> torch.Tensor:
    """Keep each pixel only for its highest-scoring object: (B, 1, H, W) -> same."""
    if logits.shape[0] == 1:
        return logits
    winner = torch.argmax(logits, dim=0, keepdim=True)
    index = torch.arange(logits.shape[0], device=logits.device)[:, None, None, None]
    # -10 keeps the losers' sigmoid near zero while preserving their order.
    return torch.where(winner == index, logits, logits.clamp(max=-10.0))


def _trunc_normal(*shape: int, std: float = 0.02) -> torch.Tensor:
    return nn.init.trunc_normal_(torch.empty(*shape), std=std)
