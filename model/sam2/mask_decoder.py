"""SAM 2's mask decoder: prompt tokens + image embedding -> mask logits and scores.

Learned output tokens (object score, IoU, one single-mask and three multimask
tokens) are prepended to the prompt tokens and run through the two-way
transformer. The image tokens are then upsampled 4x (with the trunk's
high-resolution features added in) and each mask token, through its own
hypernetwork MLP, becomes a linear classifier over the upsampled pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model.kernels.cpu_gemm import Linear, linear
from model.sam2.common import MLP, LayerNorm2d
from model.sam2.config import MaskDecoderConfig
from model.sam2.transformer import TwoWayTransformer

# Logit given to "object present" when the decoder has no object-score head.
_OBJECT_PRESENT_LOGIT = 10.0


class MaskDecoder(nn.Module):
    """Predicts masks, their IoU, the SAM output tokens and an object-presence logit."""

    def __init__(self, *, cfg: MaskDecoderConfig) -> None:
        super().__init__()
        dim = cfg.transformer_dim
        if dim % 8:
            raise ValueError(f"transformer_dim must be a multiple of 8, got {dim}")
        self.cfg = cfg
        self.num_mask_tokens = cfg.num_multimask_outputs + 1
        self.transformer = TwoWayTransformer(
            depth=cfg.transformer_depth,
            embedding_dim=dim,
            num_heads=cfg.transformer_num_heads,
            mlp_dim=cfg.transformer_mlp_dim,
            attention_downsample_rate=cfg.attention_downsample_rate,
        )
        self.iou_token = nn.Embedding(1, dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, dim)
        if cfg.pred_obj_scores:
            self.obj_score_token = nn.Embedding(1, dim)

        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(dim, dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(dim // 4),
            nn.GELU(),
            nn.ConvTranspose2d(dim // 4, dim // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )
        if cfg.use_high_res_features:
            # Applied by the image-encoding path (not in `forward`) to the stride-4
            # and stride-8 backbone levels, so they can be cached with the embedding.
            self.conv_s0 = nn.Conv2d(dim, dim // 8, kernel_size=1)
            self.conv_s1 = nn.Conv2d(dim, dim // 4, kernel_size=1)

        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(input_dim=dim, hidden_dim=dim, output_dim=dim // 8, num_layers=3)
            for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = MLP(
            input_dim=dim,
            hidden_dim=cfg.iou_head_hidden_dim,
            output_dim=self.num_mask_tokens,
            num_layers=cfg.iou_head_depth,
            sigmoid_output=cfg.iou_prediction_use_sigmoid,
        )
        if cfg.pred_obj_scores:
            self.pred_obj_score_head = (
                MLP(input_dim=dim, hidden_dim=dim, output_dim=1, num_layers=3)
                if cfg.pred_obj_scores_mlp
                else Linear(dim, 1)
            )

    def forward(
        self,
        *,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
        multimask_output: bool,
        repeat_image: bool,
        high_res_features: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Decode masks for B prompts.

        image_embeddings (B, C, h, w), or (1, C, h, w) with `repeat_image` to decode
        B prompts against one image; image_pe (1, C, h, w);
        sparse_prompt_embeddings (B, N, C); dense_prompt_embeddings (B, C, h, w);
        high_res_features [(B or 1, C/8, 4h, 4w), (B or 1, C/4, 2h, 2w)], already passed
        through `conv_s0` / `conv_s1`, required when the config uses them.

        Returns masks (B, M, 4h, 4w) logits, iou_pred (B, M), sam_tokens_out (B, M', C)
        and object_score_logits (B, 1), with M = 3 for multimask output else 1, and
        M' = 3 only for multimask output with `use_multimask_token_for_obj_ptr`.
        """
        masks, iou_pred, mask_tokens_out, object_score_logits = self.predict_masks(
            image_embeddings=image_embeddings,
            image_pe=image_pe,
            sparse_prompt_embeddings=sparse_prompt_embeddings,
            dense_prompt_embeddings=dense_prompt_embeddings,
            repeat_image=repeat_image,
            high_res_features=high_res_features,
        )
        if multimask_output:
            masks, iou_pred = masks[:, 1:], iou_pred[:, 1:]
        elif self.cfg.dynamic_multimask_via_stability and not self.training:
            masks, iou_pred = self._select_stable_single_mask(masks, iou_pred)
        else:
            masks, iou_pred = masks[:, :1], iou_pred[:, :1]

        # The object pointer is trained on the single-mask token, except that with
        # `use_multimask_token_for_obj_ptr` a multimask call keeps one per mask.
        if multimask_output and self.cfg.use_multimask_token_for_obj_ptr:
            sam_tokens_out = mask_tokens_out[:, 1:]
        else:
            sam_tokens_out = mask_tokens_out[:, :1]
        return masks, iou_pred, sam_tokens_out, object_score_logits

    def predict_masks(
        self,
        *,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
        repeat_image: bool,
        high_res_features: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """All mask tokens' outputs: masks (B, 4, 4h, 4w), iou (B, 4), tokens (B, 4, C),
        object score logits (B, 1). See `forward` for the inputs."""
        if image_pe.dim() != 4 or image_pe.shape[0] != 1:
            raise ValueError(f"image_pe must be (1, C, h, w), got {tuple(image_pe.shape)}")
        if self.cfg.use_high_res_features and (
            high_res_features is None or len(high_res_features) != 2
        ):
            raise ValueError("this decoder needs high_res_features [feat_s0, feat_s1]")
        b = sparse_prompt_embeddings.shape[0]
        src = self._prompted_image(image_embeddings, dense_prompt_embeddings, b, repeat_image)

        output_tokens = [self.iou_token.weight, self.mask_tokens.weight]
        if self.cfg.pred_obj_scores:
            output_tokens.insert(0, self.obj_score_token.weight)
        first = int(self.cfg.pred_obj_scores)  # index of the IoU token
        output_tokens = torch.cat(output_tokens).expand(b, -1, -1)  # (B, T, C)
        tokens = torch.cat([output_tokens, sparse_prompt_embeddings], dim=1)

        hs, src = self.transformer(src, image_pe, tokens)  # (B, T+N, C), (B, hw, C)
        iou_token_out = hs[:, first]
        mask_tokens_out = hs[:, first + 1 : first + 1 + self.num_mask_tokens]  # (B, 4, C)

        h, w = image_embeddings.shape[-2:]
        upscaled = self._upscale(src.unflatten(1, (h, w)), high_res_features)  # (B, 4h, 4w, C/8)
        hyper_in = torch.stack(
            [mlp(mask_tokens_out[:, i]) for i, mlp in enumerate(self.output_hypernetworks_mlps)],
            dim=1,
        )  # (B, 4, C/8)
        masks = hyper_in @ upscaled.flatten(1, 2).transpose(1, 2)  # (B, 4, 16hw)
        masks = masks.unflatten(2, upscaled.shape[1:3])

        iou_pred = self.iou_prediction_head(iou_token_out)
        if self.cfg.pred_obj_scores:
            object_score_logits = self.pred_obj_score_head(hs[:, 0])
        else:
            object_score_logits = iou_pred.new_full((b, 1), _OBJECT_PRESENT_LOGIT)
        return masks, iou_pred, mask_tokens_out, object_score_logits

    @staticmethod
    def _prompted_image(
        image_embeddings: torch.Tensor, dense: torch.Tensor, b: int, repeat_image: bool
    ) -> torch.Tensor:
        """Image embedding plus the dense prompt, one per prompt -> (B, C, h, w)."""
        if image_embeddings.dim() != 4 or dense.shape[-3:] != image_embeddings.shape[-3:]:
            raise ValueError(
                f"dense prompt {tuple(dense.shape)} does not match "
                f"image embeddings {tuple(image_embeddings.shape)}"
            )
        n_img = image_embeddings.shape[0]
        if repeat_image and n_img != 1:
            raise ValueError(f"repeat_image needs one image embedding, got {n_img}")
        if not repeat_image and n_img != b:
            raise ValueError(f"{n_img} image embeddings for {b} prompts without repeat_image")
        # With repeat_image the single image broadcasts over the prompts, no copy.
        return image_embeddings + dense

    def _upscale(
        self, src: torch.Tensor, high_res_features: list[torch.Tensor] | None
    ) -> torch.Tensor:
        """(B, h, w, C) -> (B, 4h, 4w, C/8), adding the stride-8 and stride-4 skips.

        Works channels-last: the transformer already yields (B, hw, C) tokens, the
        2x2 transposed convs become matmuls and LayerNorm2d a plain layer_norm, which
        avoids two layout copies and CPU's slow transposed-conv kernels.
        """
        dc1, ln1, act1, dc2, act2 = self.output_upscaling
        skip_s0 = skip_s1 = None
        if self.cfg.use_high_res_features:
            assert high_res_features is not None
            skip_s0, skip_s1 = high_res_features
        x = _conv_transpose_2x2(src, dc1, skip=skip_s1)  # (B, 2h, 2w, C/4)
        x = act1(F.layer_norm(x, x.shape[-1:], ln1.weight, ln1.bias, ln1.eps))
        x = _conv_transpose_2x2(x, dc2, skip=skip_s0)  # (B, 4h, 4w, C/8)
        return act2(x)

    def _stability_scores(self, mask_logits: torch.Tensor) -> torch.Tensor:
        """IoU between the masks thresholded at +delta and -delta: (B, M, H, W) -> (B, M)."""
        delta = self.cfg.dynamic_multimask_stability_delta
        mask_logits = mask_logits.flatten(-2)
        area_i = (mask_logits > delta).sum(dim=-1).float()
        area_u = (mask_logits > -delta).sum(dim=-1).float()
        return torch.where(area_u > 0, area_i / area_u, 1.0)

    def _select_stable_single_mask(
        self, masks: torch.Tensor, iou_pred: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Single-mask output that falls back to the best-IoU multimask output when the
        single-mask token's logits are unstable: (B, 4, H, W), (B, 4) -> (B, 1, H, W), (B, 1).
        """
        best = iou_pred[:, 1:].argmax(dim=-1) + 1  # (B,) index among all 4 tokens
        rows = torch.arange(masks.shape[0], device=masks.device)
        best_masks = masks[rows, best].unsqueeze(1)
        best_iou = iou_pred[rows, best].unsqueeze(1)

        single_masks, single_iou = masks[:, :1], iou_pred[:, :1]
        stable = self._stability_scores(single_masks) >= self.cfg.dynamic_multimask_stability_thresh
        masks_out = torch.where(stable[..., None, None], single_masks, best_masks)
        iou_out = torch.where(stable, single_iou, best_iou)
        return masks_out, iou_out


def _conv_transpose_2x2(
    x: torch.Tensor, conv: nn.ConvTranspose2d, *, skip: torch.Tensor | None = None
) -> torch.Tensor:
    """A kernel-2, stride-2 transposed conv on channels-last input: (B, H, W, Cin) ->
    (B, 2H, 2W, Cout), plus `skip` (B or 1, Cout, 2H, 2W) when given. Each input pixel
    independently paints a 2x2 output patch, so the conv is one matmul followed by a
    pixel shuffle; the skip is added as the patches are laid out, one pass over the
    output instead of a copy and then an add."""
    cin, cout = conv.weight.shape[:2]
    weight = conv.weight.permute(2, 3, 1, 0).reshape(4 * cout, cin)  # rows ordered (dy, dx, o)
    bias = conv.bias.repeat(4) if conv.bias is not None else None
    b, h, w, _ = x.shape
    patches = linear(x, weight, bias).view(b, h, w, 2, 2, cout).permute(0, 1, 3, 2, 4, 5)
    if skip is None:
        return patches.reshape(b, 2 * h, 2 * w, cout)
    out = patches.new_empty((max(b, skip.shape[0]), h, 2, w, 2, cout))
    torch.add(patches, skip.permute(0, 2, 3, 1).unflatten(1, (h, 2)).unflatten(3, (w, 2)), out=out)
    return out.view(out.shape[0], 2 * h, 2 * w, cout)
