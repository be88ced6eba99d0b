"""SAM's two-way transformer: prompt tokens and image tokens attend to each other.

Used by the mask decoder. Each block lets the tokens attend to themselves, then
to the image, runs an MLP on the tokens, and finally lets the image attend back
to the tokens; a last token-to-image attention follows the blocks.
"""

from __future__ import annotations

import torch
from torch import nn

from model.kernels.attention import attention
from model.kernels.cpu_gemm import Linear
from model.sam2.common import MLP


class Attention(nn.Module):
    """Multi-head attention whose heads work in `embedding_dim // downsample_rate` channels.

    Queries, keys and values are projected separately because in the decoder they
    come from different sources (tokens vs. image, with or without position).
    """

    def __init__(
        self,
        *,
        embedding_dim: int,
        num_heads: int,
        downsample_rate: int = 1,
        kv_in_dim: int | None = None,
    ) -> None:
        super().__init__()
        if downsample_rate <= 0 or embedding_dim % downsample_rate:
            raise ValueError(
                f"downsample_rate {downsample_rate} must divide embedding_dim {embedding_dim}"
            )
        internal_dim = embedding_dim // downsample_rate
        if num_heads <= 0 or internal_dim % num_heads:
            raise ValueError(f"num_heads {num_heads} must divide internal dim {internal_dim}")
        kv_in_dim = embedding_dim if kv_in_dim is None else kv_in_dim
        self.num_heads = num_heads
        self.internal_dim = internal_dim
        self.q_proj = Linear(embedding_dim, internal_dim)
        self.k_proj = Linear(kv_in_dim, internal_dim)
        self.v_proj = Linear(kv_in_dim, internal_dim)
        self.out_proj = Linear(internal_dim, embedding_dim)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        # (B, N, heads * c) -> (B, heads, N, c); a view, SDPA accepts the strides.
        return x.unflatten(-1, (self.num_heads, -1)).transpose(1, 2)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """q (B, Nq, C), k and v (B, Nk, C_kv) -> (B, Nq, C)."""
        q = self._split_heads(self.q_proj(q))
        k = self._split_heads(self.k_proj(k))
        v = self._split_heads(self.v_proj(v))
        out = attention(q, k, v)  # (B, heads, Nq, c)
        return self.out_proj(out.transpose(1, 2).flatten(2))


class TwoWayAttentionBlock(nn.Module):
    """Token self-attention, token-to-image, token MLP, image-to-token; post-norm."""

    def __init__(
        self,
        *,
        embedding_dim: int,
        num_heads: int,
        mlp_dim: int,
        attention_downsample_rate: int,
        skip_first_layer_pe: bool,
    ) -> None:
        super().__init__()
        self.self_attn = Attention(embedding_dim=embedding_dim, num_heads=num_heads)
        self.norm1 = nn.LayerNorm(embedding_dim)
        self.cross_attn_token_to_image = Attention(
            embedding_dim=embedding_dim,
            num_heads=num_heads,
            downsample_rate=attention_downsample_rate,
        )
        self.norm2 = nn.LayerNorm(embedding_dim)
        self.mlp = MLP(
            input_dim=embedding_dim,
            hidden_dim=mlp_dim,
            output_dim=embedding_dim,
            num_layers=2,
            activation=nn.ReLU,
        )
        self.norm3 = nn.LayerNorm(embedding_dim)
        self.norm4 = nn.LayerNorm(embedding_dim)
        self.cross_attn_image_to_token = Attention(
            embedding_dim=embedding_dim,
            num_heads=num_heads,
            downsample_rate=attention_downsample_rate,
        )
        self.skip_first_layer_pe = skip_first_layer_pe

    def forward(
        self,
        queries: torch.Tensor,
        keys: torch.Tensor,
        query_pe: torch.Tensor,
        key_pe: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """queries (B, N, C), keys (B, HW, C), query_pe like queries, key_pe (1 or B, HW, C)."""
        if self.skip_first_layer_pe:
            # The first block's tokens are the prompt embeddings themselves, which
            # already carry position, so it neither adds PE nor keeps a residual.
            queries = self.self_attn(queries, queries, queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q, q, queries)
        queries = self.norm1(queries)

        # Both cross attentions see the same positioned keys: `keys` only changes at the end.
        k = keys + key_pe  # (B, HW, C)
        q = queries + query_pe
        queries = self.norm2(queries + self.cross_attn_token_to_image(q, k, keys))
        queries = self.norm3(queries + self.mlp(queries))

        q = queries + query_pe
        keys = self.norm4(keys + self.cross_attn_image_to_token(k, q, queries))
        return queries, keys


class TwoWayTransformer(nn.Module):
    """`depth` two-way blocks, then a final token-to-image attention and norm."""

    def __init__(
        self,
        *,
        depth: int,
        embedding_dim: int,
        num_heads: int,
        mlp_dim: int,
        attention_downsample_rate: int = 2,
    ) -> None:
        super().__init__()
        if depth <= 0:
            raise ValueError(f"depth must be positive, got {depth}")
        self.layers = nn.ModuleList(
            TwoWayAttentionBlock(
                embedding_dim=embedding_dim,
                num_heads=num_heads,
                mlp_dim=mlp_dim,
                attention_downsample_rate=attention_downsample_rate,
                skip_first_layer_pe=i == 0,
            )
            for i in range(depth)
        )
        self.final_attn_token_to_image = Attention(
            embedding_dim=embedding_dim,
            num_heads=num_heads,
            downsample_rate=attention_downsample_rate,
        )
        self.norm_final_attn = nn.LayerNorm(embedding_dim)

    def forward(
        self,
        image_embedding: torch.Tensor,
        image_pe: torch.Tensor,
        point_embedding: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the blocks.

        image_embedding (B, C, H, W); image_pe (1 or B, C, H, W), broadcast over the
        batch rather than copied; point_embedding (B, N, C).
        Returns the updated tokens (B, N, C) and image tokens (B, HW, C).
        """
        if image_embedding.dim() != 4 or image_pe.dim() != 4:
            raise ValueError("image_embedding and image_pe must be (B, C, H, W)")
        if image_pe.shape[1:] != image_embedding.shape[1:]:
            raise ValueError(
                f"image_pe {tuple(image_pe.shape)} does not match "
                f"image_embedding {tuple(image_embedding.shape)}"
            )
        # Contiguous token layouts once here, so no later add or projection has to
        # walk a transposed tensor.
        keys = image_embedding.flatten(2).transpose(1, 2).contiguous()  # (B, HW, C)
        key_pe = image_pe.flatten(2).transpose(1, 2).contiguous()  # (1 or B, HW, C)
        queries = point_embedding
        for layer in self.layers:
            queries, keys = layer(queries, keys, point_embedding, key_pe)

        q = queries + point_embedding
        k = keys + key_pe
        queries = self.norm_final_attn(queries + self.final_attn_token_to_image(q, k, keys))
        return queries, keys
