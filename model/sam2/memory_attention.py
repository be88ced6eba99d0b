"""Memory attention: conditions the current frame's features on the memory bank.

Each layer runs self-attention over the current frame's tokens, cross-attention
from those tokens to the memories of past frames (plus object-pointer tokens), and
an MLP. Both attentions use 2D axial rotary position encoding (RoPE) on the
feature grid; memories of several frames share the grid's rotations, and the
object-pointer tokens, which have no grid position, are not rotated.

Tensors are sequence-first at the public boundary, like the tracker that calls
this: tokens (L, B, C); internally batch-first (B, L, C).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from model.kernels.attention import attention, narrow_values_pay
from model.kernels.cpu_gemm import Linear, linear, mlp
from model.sam2.config import MemoryAttentionConfig


class AxialRotaryEncoding:
    """2D axial RoPE for tokens of a row-major (h, w) grid.

    Channel pairs of a head are rotated by angles proportional to the token's x
    coordinate (first half of the pairs) or y coordinate (second half). Each pair
    is treated as a complex number and multiplied by a unit phase, one complex
    multiply per element; the phase tables are cached per grid and device. It
    holds no parameters (a plain
    object, not a module), so one instance serves every attention module of the
    same head size and nothing of it appears in the state dict.
    """

    def __init__(self, *, head_dim: int, theta: float = 10000.0) -> None:
        if head_dim % 4:
            raise ValueError(f"axial RoPE needs a head_dim divisible by 4, got {head_dim}")
        self.head_dim = head_dim
        self.theta = theta
        self._cache: dict[tuple[int, int, torch.device], torch.Tensor] = {}

    def phases(self, h: int, w: int, device: torch.device) -> torch.Tensor:
        """complex64 unit phases of shape (h * w, head_dim / 2)."""
        key = (h, w, torch.device(device))
        if key not in self._cache:
            # Built as ordinary tensors even when first called under inference_mode,
            # so a later autograd-enabled call can still use them.
            with torch.inference_mode(False), torch.no_grad():
                self._cache[key] = self._build(h, w, key[2])
        return self._cache[key]

    def _build(self, h: int, w: int, device: torch.device) -> torch.Tensor:
        n_freqs = self.head_dim // 4
        exponents = torch.arange(n_freqs, dtype=torch.float32, device=device) * 4 / self.head_dim
        inv_freq = 1.0 / (self.theta**exponents)  # (head_dim / 4,)
        index = torch.arange(h * w, device=device)
        xs = (index % w).to(torch.float32)
        ys = torch.div(index, w, rounding_mode="floor").to(torch.float32)
        angles = torch.cat((xs[:, None] * inv_freq, ys[:, None] * inv_freq), dim=1)
        return torch.polar(torch.ones_like(angles), angles)  # (h * w, head_dim / 2)

    def rotate(self, x: torch.Tensor, phases: torch.Tensor) -> torch.Tensor:
        """Rotate (..., N, head_dim) tokens whose grid positions are those of `phases`.

        N may be a whole multiple of the table length (several frames on the same
        grid); every block of `h * w` tokens gets the same phases. The maths runs
        in float32 and the result is cast back to x's dtype (bf16 under autocast).
        """
        n, grid = x.shape[-2], phases.shape[0]
        if n % grid:
            raise ValueError(f"{n} rotated tokens are not whole frames of {grid} grid tokens")
        pairs = x.float().unflatten(-2, (n // grid, grid)).unflatten(-1, (-1, 2))
        if not _complex_view_fits(pairs):
            pairs = pairs.contiguous()
        rotated = torch.view_as_complex(pairs) * phases  # (..., frames, grid, head_dim / 2)
        return torch.view_as_real(rotated).flatten(-2).flatten(-3, -2).to(x.dtype)

    def rotate_in_place(self, x: torch.Tensor, phases: torch.Tensor) -> bool:
        """`x.copy_(self.rotate(x, phases))` without the copies, where x is float32 whose
        (re, im) pairs a complex view can take and nothing asks for its gradient; returns
        whether it did (else x is unchanged)."""
        n, grid = x.shape[-2], phases.shape[0]
        if x.dtype != torch.float32 or x.requires_grad or n % grid:
            return False
        pairs = x.unflatten(-2, (n // grid, grid)).unflatten(-1, (-1, 2))
        if not _complex_view_fits(pairs):
            return False
        torch.view_as_complex(pairs).mul_(phases)
        return True


def _complex_view_fits(pairs: torch.Tensor) -> bool:
    """Whether `torch.view_as_complex` takes (..., 2) `pairs` as they lie: (re, im)
    adjacent and every other stride and the offset even."""
    strides = pairs.stride()
    even = pairs.storage_offset() % 2 == 0 and all(st % 2 == 0 for st in strides[:-1])
    return strides[-1] == 1 and even


class RoPEAttention(nn.Module):
    """Multi-head attention with axial RoPE on queries and (the first) keys.

    Queries are the current frame's grid tokens; keys are one or more frames on
    the same grid, optionally followed by `num_k_exclude_rope` unrotated tokens.
    """

    def __init__(
        self,
        *,
        embedding_dim: int,
        num_heads: int,
        rope: AxialRotaryEncoding,
        kv_in_dim: int | None = None,
        rope_k_repeat: bool = False,
    ) -> None:
        super().__init__()
        if embedding_dim % num_heads:
            raise ValueError(f"num_heads {num_heads} must divide embedding_dim {embedding_dim}")
        if rope.head_dim != embedding_dim // num_heads:
            raise ValueError("the RoPE head_dim must equal embedding_dim / num_heads")
        kv_in_dim = embedding_dim if kv_in_dim is None else kv_in_dim
        self.num_heads = num_heads
        self.rope_k_repeat = rope_k_repeat
        self.q_proj = Linear(embedding_dim, embedding_dim)
        self.k_proj = Linear(kv_in_dim, embedding_dim)
        self.v_proj = Linear(kv_in_dim, embedding_dim)
        self.out_proj = Linear(embedding_dim, embedding_dim)
        self.rope = rope

    def forward(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        *,
        num_k_exclude_rope: int = 0,
    ) -> torch.Tensor:
        """q: (B, Nq, C), k and v: (B, Nk, kv_in_dim) -> (B, Nq, C).

        Nq must be a square grid's token count; the first Nk - num_k_exclude_rope
        keys must be whole frames on that grid (one frame unless rope_k_repeat).
        """
        q = self._split_heads(self.q_proj(q))  # (B, heads, Nq, head_dim)
        k = self._split_heads(self.k_proj(k))  # (B, heads, Nk, head_dim)
        q, k = self._apply_rope(q, k, num_k_exclude_rope)
        if self._values_after_weights(q, v):
            out = self._attend_then_project_values(q, k, v)
        else:
            out = attention(q, k, self._split_heads(self.v_proj(v)))  # (B, heads, Nq, head_dim)
        return self.out_proj(out.transpose(1, 2).flatten(2))

    def _values_after_weights(self, q: torch.Tensor, v: torch.Tensor) -> bool:
        """Whether to project the values after weighting them: where the attention route
        takes narrow values well (`model.kernels.attention.narrow_values_pay`), raw values narrower
        than a head make the weights-times-values matmul cheaper (a quarter of it for
        memory attention's 64-channel memories and 256-channel head)."""
        return v.shape[-1] < q.shape[-1] and narrow_values_pay(q)

    def _attend_then_project_values(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor
    ) -> torch.Tensor:
        """attention(q, k, v_proj(v)) computed as v_proj per head of attention(q, k, v).

        Equal maths: softmax rows sum to one, so weights @ (v W^T + b) = (weights @ v) W^T + b.
        v: (B, Nk, kv_in_dim) -> (B, heads, Nq, head_dim).
        """
        weighted = attention(q, k, v.unsqueeze(1).to(q.dtype))  # (B, heads, Nq, kv_in)
        weight = self.v_proj.weight.unflatten(0, (self.num_heads, -1))  # (heads, hd, kv_in)
        bias = self.v_proj.bias.unflatten(0, (self.num_heads, -1))
        heads = [linear(weighted[:, h], weight[h], bias[h]) for h in range(self.num_heads)]
        return torch.stack(heads, dim=1)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (self.num_heads, -1)).transpose(1, 2)

    def _apply_rope(
        self, q: torch.Tensor, k: torch.Tensor, num_k_exclude_rope: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        num_q, num_k = q.shape[-2], k.shape[-2]
        side = math.isqrt(num_q)
        if side * side != num_q:
            raise ValueError(f"{num_q} query tokens do not form a square feature grid")
        if not 0 <= num_k_exclude_rope <= num_k:
            raise ValueError(f"cannot exclude {num_k_exclude_rope} of {num_k} keys from RoPE")
        num_k_rope = num_k - num_k_exclude_rope
        if num_k_rope != num_q and not (self.rope_k_repeat and num_k_rope % num_q == 0):
            raise ValueError(
                f"{num_k_rope} rotated keys do not match {num_q} queries"
                + ("" if self.rope_k_repeat else " (rope_k_repeat is off)")
            )
        phases = self.rope.phases(side, side, q.device)
        q = self.rope.rotate(q, phases)
        if num_k_rope and self.rope.rotate_in_place(k[..., :num_k_rope, :], phases):
            return q, k  # k is the key projection's own output: no copy of 7 frames of keys
        if num_k_rope:
            k_rot = self.rope.rotate(k[..., :num_k_rope, :], phases)
            k = torch.cat((k_rot, k[..., num_k_rope:, :]), dim=-2) if num_k_exclude_rope else k_rot
        return q, k


class MemoryAttentionLayer(nn.Module):
    """Pre-norm self-attention, cross-attention to memories, and ReLU MLP, each residual.

    Dropout of the training recipe is omitted: this model is used for inference only.
    """

    def __init__(self, *, cfg: MemoryAttentionConfig, rope: AxialRotaryEncoding) -> None:
        super().__init__()
        self.cfg = cfg
        self.self_attn = RoPEAttention(
            embedding_dim=cfg.d_model, num_heads=cfg.num_heads, rope=rope
        )
        self.cross_attn_image = RoPEAttention(
            embedding_dim=cfg.d_model,
            num_heads=cfg.num_heads,
            rope=rope,
            kv_in_dim=cfg.kv_in_dim,
            rope_k_repeat=True,
        )
        self.linear1 = Linear(cfg.d_model, cfg.dim_feedforward)
        self.linear2 = Linear(cfg.dim_feedforward, cfg.d_model)
        self.norm1 = nn.LayerNorm(cfg.d_model)
        self.norm2 = nn.LayerNorm(cfg.d_model)
        self.norm3 = nn.LayerNorm(cfg.d_model)

    def forward(
        self,
        tgt: torch.Tensor,
        memory: torch.Tensor,
        *,
        pos: torch.Tensor,
        query_pos: torch.Tensor,
        num_k_exclude_rope: int = 0,
    ) -> torch.Tensor:
        """tgt/query_pos: (B, HW, C); memory/pos: (B, M, kv_in_dim) -> (B, HW, C)."""
        tgt = self.self_attention_block(tgt, query_pos)
        return self.cross_attention_and_mlp(
            tgt, memory, pos=pos, query_pos=query_pos, num_k_exclude_rope=num_k_exclude_rope
        )

    def self_attention_block(self, tgt: torch.Tensor, query_pos: torch.Tensor) -> torch.Tensor:
        """The residual self-attention over the frame's own tokens: (B, HW, C) -> same."""
        x = self.norm1(tgt)
        qk = x + query_pos if self.cfg.pos_enc_at_attn else x
        return tgt + self.self_attn(qk, qk, x)

    def cross_attention_and_mlp(
        self,
        tgt: torch.Tensor,
        memory: torch.Tensor,
        *,
        pos: torch.Tensor,
        query_pos: torch.Tensor,
        num_k_exclude_rope: int = 0,
    ) -> torch.Tensor:
        """The residual cross-attention to the memories, then the residual MLP."""
        cfg = self.cfg
        x = self.norm2(tgt)
        tgt = tgt + self.cross_attn_image(
            x + query_pos if cfg.pos_enc_at_cross_attn_queries else x,
            memory + pos if cfg.pos_enc_at_cross_attn_keys else memory,
            memory,
            num_k_exclude_rope=num_k_exclude_rope,
        )

        x = self.norm3(tgt)
        return tgt + mlp(x, self.linear1, self.linear2, "relu")


class MemoryAttention(nn.Module):
    """A stack of memory attention layers (`layers.{i}`) and a final LayerNorm (`norm`)."""

    def __init__(self, *, cfg: MemoryAttentionConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.rope = AxialRotaryEncoding(head_dim=cfg.d_model // cfg.num_heads, theta=cfg.rope_theta)
        self.layers = nn.ModuleList(
            MemoryAttentionLayer(cfg=cfg, rope=self.rope) for _ in range(cfg.num_layers)
        )
        self.norm = nn.LayerNorm(cfg.d_model)

    def forward(
        self,
        *,
        curr: torch.Tensor,
        curr_pos: torch.Tensor,
        memory: torch.Tensor,
        memory_pos: torch.Tensor,
        num_obj_ptr_tokens: int = 0,
        first_layer: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Condition the current frame on its memories.

        curr, curr_pos: (HW, B, d_model), the current frame's tokens on a square grid.
        memory, memory_pos: (M, B, kv_in_dim) with M = frames * HW + num_obj_ptr_tokens:
            the spatial memories of `frames` past frames, then the object-pointer tokens.
        first_layer: `first_self_attention(curr, curr_pos)` computed before, (1 or B,
            HW, d_model), for callers that run the objects of one frame in several calls.
        Returns (HW, B, d_model).
        """
        self._check_inputs(curr, curr_pos, memory, memory_pos, num_obj_ptr_tokens)
        batch = curr.shape[1]
        query_pos = curr_pos.transpose(0, 1)  # (B, HW, C)
        memory = memory.transpose(0, 1)  # (B, M, kv_in_dim)
        memory_pos = memory_pos.transpose(0, 1)
        first, *rest = self.layers
        if first_layer is not None:
            if (
                first_layer.shape[0] not in (1, batch)
                or first_layer.shape[1:] != query_pos.shape[1:]
            ):
                raise ValueError(
                    f"first_layer {tuple(first_layer.shape)} does not fit curr {tuple(curr.shape)}"
                )
            output = first_layer.expand(batch, -1, -1)
        elif _shared_across_batch(curr, curr_pos):
            output = self.first_self_attention(curr[:, :1], curr_pos[:, :1])
            output = output.expand(batch, -1, -1)
        else:
            output = self.first_self_attention(curr, curr_pos)
        output = first.cross_attention_and_mlp(
            output,
            memory,
            pos=memory_pos,
            query_pos=query_pos,
            num_k_exclude_rope=num_obj_ptr_tokens,
        )
        for layer in rest:
            output = layer(
                output,
                memory,
                pos=memory_pos,
                query_pos=query_pos,
                num_k_exclude_rope=num_obj_ptr_tokens,
            )
        return self.norm(output).transpose(0, 1)  # (HW, B, C)

    def first_self_attention(self, curr: torch.Tensor, curr_pos: torch.Tensor) -> torch.Tensor:
        """(HW, B, C) frame tokens -> (B, HW, C) after the input encoding and layer 0's
        self-attention: the only part of the stack that sees no memory."""
        output = curr
        if self.cfg.pos_enc_at_input:
            output = output + 0.1 * curr_pos
        first = self.layers[0]
        return first.self_attention_block(output.transpose(0, 1), curr_pos.transpose(0, 1))

    def _check_inputs(
        self,
        curr: torch.Tensor,
        curr_pos: torch.Tensor,
        memory: torch.Tensor,
        memory_pos: torch.Tensor,
        num_obj_ptr_tokens: int,
    ) -> None:
        cfg = self.cfg
        if curr.ndim != 3 or curr.shape[-1] != cfg.d_model:
            raise ValueError(f"curr must be (HW, B, {cfg.d_model}), got {tuple(curr.shape)}")
        if curr_pos.shape != curr.shape:
            raise ValueError(f"curr_pos {tuple(curr_pos.shape)} must match curr")
        if memory.ndim != 3 or memory.shape[-1] != cfg.kv_in_dim:
            raise ValueError(f"memory must be (M, B, {cfg.kv_in_dim}), got {tuple(memory.shape)}")
        if memory_pos.shape != memory.shape:
            raise ValueError(f"memory_pos {tuple(memory_pos.shape)} must match memory")
        if memory.shape[1] != curr.shape[1]:
            raise ValueError(
                f"batch size of memory ({memory.shape[1]}) and curr ({curr.shape[1]}) differ"
            )
        if not 0 <= num_obj_ptr_tokens <= memory.shape[0]:
            raise ValueError(
                f"num_obj_ptr_tokens={num_obj_ptr_tokens} is outside [0, {memory.shape[0]}]"
            )


def _shared_across_batch(curr: torch.Tensor, curr_pos: torch.Tensor) -> bool:
    """Whether every object of the batch has the same frame tokens: the batch dimension of
    (HW, B, C) was expanded from one frame (stride 0), as the tracking session does for
    several objects on one frame. Layer 0's self-attention then runs once, not B times."""
    return curr.shape[1] > 1 and curr.stride(1) == 0 and curr_pos.stride(1) == 0
