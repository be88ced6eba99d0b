"""Hiera trunk: a hierarchical ViT with windowed attention and query pooling.

Tokens travel channels-last, (B, H, W, C), so every linear layer acts on the
last axis without permutes. Stage `i` has `embed_dim * dim_mul**i` channels and
`num_heads * head_mul**i` heads; the first block of a stage widens the tokens
and, for the first `q_pool` stage changes, halves the grid by max-pooling the
attention queries (and the shortcut) with stride `q_stride`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from model.kernels.attention import attention
from model.kernels.cpu_gemm import Linear
from model.sam2.common import MLP
from model.sam2.config import HieraConfig

_PATCH_STRIDE = 4


@dataclass(frozen=True)
class _BlockPlan:
    dim_in: int
    dim_out: int
    num_heads: int
    # 0 means global attention over the whole grid.
    window: int
    pool: tuple[int, int] | None


def _plan_blocks(cfg: HieraConfig) -> list[_BlockPlan]:
    """Per-block widths, heads, windows and pooling, as the official checkpoints use them."""
    stage_of_block = [s for s, n in enumerate(cfg.stages) for _ in range(n)]
    dim, heads = cfg.embed_dim, cfg.num_heads
    plans = []
    for i, stage in enumerate(stage_of_block):
        first_of_stage = i > 0 and stage != stage_of_block[i - 1]
        # A stage's first block still sees the previous stage's grid, so it
        # keeps the previous stage's window.
        window = cfg.window_spec[stage - 1] if first_of_stage else cfg.window_spec[stage]
        if i in cfg.global_att_blocks:
            window = 0
        dim_out, pool = dim, None
        if first_of_stage:
            dim_out, heads = int(dim * cfg.dim_mul), int(heads * cfg.head_mul)
            pool = cfg.q_stride if stage <= cfg.q_pool else None
        plans.append(_BlockPlan(dim, dim_out, heads, window, pool))
        dim = dim_out
    return plans


def _max_pool(x: torch.Tensor, stride: tuple[int, int]) -> torch.Tensor:
    """Non-overlapping max-pool of a channels-last grid, dropping a ragged edge.

    (N, H, W, C) -> (N, H // sh, W // sw, C). The NCHW view keeps channels-last
    strides, which the pooling kernels handle natively and keep in the output.
    """
    return F.max_pool2d(x.permute(0, 3, 1, 2), stride, stride).permute(0, 2, 3, 1)


def _partition(x: torch.Tensor, window: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """(B, H, W, C) -> (B * gh * gw, window, window, C) and the window grid (gh, gw).

    The grid is zero-padded at the bottom/right to whole windows; padded tokens
    take part in attention as keys, exactly as in the released models.
    """
    b, h, w, c = x.shape
    pad_h, pad_w = -h % window, -w % window
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    gh, gw = (h + pad_h) // window, (w + pad_w) // window
    x = x.reshape(b, gh, window, gw, window, c).transpose(2, 3)
    return x.reshape(b * gh * gw, window, window, c), (gh, gw)


def _unpartition(windows: torch.Tensor, grid: tuple[int, int], hw: tuple[int, int]) -> torch.Tensor:
    """(B * gh * gw, wh, ww, C) -> (B, H, W, C), cropping the padding of `_partition`."""
    gh, gw = grid
    n, wh, ww, c = windows.shape
    b = n // (gh * gw)
    x = windows.view(b, gh, gw, wh, ww, c).transpose(2, 3).reshape(b, gh * wh, gw * ww, c)
    h, w = hw
    return x[:, :h, :w] if (gh * wh, gw * ww) != (h, w) else x


class MultiScaleAttention(nn.Module):
    """Multi-head self-attention whose queries may be max-pooled to a coarser grid."""

    def __init__(
        self, *, dim: int, dim_out: int, num_heads: int, pool: tuple[int, int] | None
    ) -> None:
        super().__init__()
        if dim_out % num_heads:
            raise ValueError(f"dim_out={dim_out} is not divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.pool = pool
        self.qkv = Linear(dim, dim_out * 3)
        self.proj = Linear(dim_out, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, H, W, C) -> (N, H', W', C_out), H' = H // stride when pooling."""
        n, h, w, _ = x.shape
        qkv = self.qkv(x).view(n, h * w, 3, self.num_heads, -1)  # (N, L, 3, heads, d)
        q, k, v = qkv.unbind(2)  # each (N, L, heads, d)
        if self.pool is not None:
            q = _max_pool(q.reshape(n, h, w, -1), self.pool)  # (N, H', W', heads * d)
            h, w = q.shape[1:3]
            q = q.reshape(n, h * w, self.num_heads, -1)
        out = attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        )  # (N, heads, L', d)
        return self.proj(out.transpose(1, 2).reshape(n, h, w, -1))


class MultiScaleBlock(nn.Module):
    """Pre-norm transformer block: (windowed) pooled attention, then an MLP."""

    def __init__(self, *, plan: _BlockPlan, mlp_ratio: float) -> None:
        super().__init__()
        if plan.pool is not None and (plan.window % plan.pool[0] or plan.window % plan.pool[1]):
            raise ValueError(
                f"window {plan.window} of a pooling block is not divisible by stride {plan.pool}"
            )
        self.window = plan.window
        self.pool = plan.pool
        self.norm1 = nn.LayerNorm(plan.dim_in, eps=1e-6)
        self.attn = MultiScaleAttention(
            dim=plan.dim_in, dim_out=plan.dim_out, num_heads=plan.num_heads, pool=plan.pool
        )
        self.norm2 = nn.LayerNorm(plan.dim_out, eps=1e-6)
        hidden = int(plan.dim_out * mlp_ratio)
        self.mlp = MLP(
            input_dim=plan.dim_out,
            hidden_dim=hidden,
            output_dim=plan.dim_out,
            num_layers=2,
            activation=nn.GELU,
        )
        # Widening blocks project the (normed) shortcut to the new width.
        self.proj = Linear(plan.dim_in, plan.dim_out) if plan.dim_in != plan.dim_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, H, W, C_in) -> (B, H', W', C_out)."""
        shortcut = x
        x = self.norm1(x)
        if self.proj is not None:
            shortcut = self.proj(x)
            if self.pool is not None:
                shortcut = _max_pool(shortcut, self.pool)
        out_hw = shortcut.shape[1:3]
        if self.window:
            windows, grid = _partition(x, self.window)
            x = _unpartition(self.attn(windows), grid, out_hw)
        else:
            x = self.attn(x)
        x = shortcut + x
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    """7x7 stride-4 convolution from pixels to channels-last tokens."""

    def __init__(self, *, embed_dim: int, in_chans: int = 3) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=7, stride=_PATCH_STRIDE, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, H / 4, W / 4, C), contiguous.

        Contiguous, not a permuted view of an NCHW result: elementwise ops keep their
        first input's memory order, so such a view leaves the whole first stage's token
        stream with its channels H * W apart, which every LayerNorm and Linear then reads
        across, and the neck's first convolution gets NCHW input, which oneDNN takes
        slowly in bf16 (82 against 14 ms at 1024). The pixels go in channels-last, so the
        convolution writes its output in that order (10 ms, against 25 for NCHW and a
        copy). SAM 2.1 tiny at 1024, 2-core Xeon: the first block 164 -> 127-141 ms in
        float32, 107 -> 66-72 ms in bf16; the whole image encoder 0.66 -> 0.55 s in bf16.
        """
        x = self.proj(x.contiguous(memory_format=torch.channels_last))
        return x.permute(0, 2, 3, 1).contiguous()  # already so: a no-op


class Hiera(nn.Module):
    """Image -> four feature maps at strides 4, 8, 16, 32 (high resolution first)."""

    def __init__(self, *, cfg: HieraConfig) -> None:
        super().__init__()
        if not cfg.stages or min(cfg.stages) < 1:
            raise ValueError(f"every stage needs at least one block, got stages={cfg.stages}")
        if len(cfg.window_spec) != len(cfg.stages):
            raise ValueError("window_spec needs one window size per stage")
        if not 0 <= cfg.q_pool < len(cfg.stages):
            raise ValueError(f"q_pool must be in [0, {len(cfg.stages) - 1}], got {cfg.q_pool}")
        self.cfg = cfg
        self.patch_embed = PatchEmbed(embed_dim=cfg.embed_dim)
        # Background embedding, resized to the token grid, plus a per-window
        # embedding tiled over it (Bolya et al., "Window Attention is Bugged").
        self.pos_embed = nn.Parameter(
            torch.zeros(1, cfg.embed_dim, *cfg.window_pos_embed_bkg_spatial_size)
        )
        first_window = cfg.window_spec[0]
        self.pos_embed_window = nn.Parameter(
            torch.zeros(1, cfg.embed_dim, first_window, first_window)
        )
        self.blocks = nn.ModuleList(
            MultiScaleBlock(plan=plan, mlp_ratio=cfg.mlp_ratio) for plan in _plan_blocks(cfg)
        )
        ends = [sum(cfg.stages[: i + 1]) - 1 for i in range(len(cfg.stages))]
        self._stage_ends = frozenset(ends)
        self.channels = cfg.stage_dims
        self._pos_cache: tuple[tuple, torch.Tensor] | None = None

    @property
    def min_input_multiple(self) -> int:
        """Image sides must be multiples of this so windows tile the token grid."""
        return _PATCH_STRIDE * self.cfg.window_spec[0]

    def _pos_embed(self, h: int, w: int) -> torch.Tensor:
        """Position embedding of an (h, w) token grid -> (1, h, w, C).

        Without autograd it is kept for the next frame: the bicubic resize alone takes
        about 50 ms at 1024 on a 2-core CPU. The key holds the parameters' storage and
        version counters, so moving or loading weights (in place) computes it again.
        """
        if torch.is_grad_enabled():
            return self._compute_pos_embed(h, w)
        params = (self.pos_embed, self.pos_embed_window)
        key = (
            h,
            w,
            *((p.data_ptr(), p._version, p.dtype, p.device) for p in params),
            torch.is_autocast_enabled(self.pos_embed.device.type),
        )
        if self._pos_cache is None or self._pos_cache[0] != key:
            self._pos_cache = (key, self._compute_pos_embed(h, w))
        return self._pos_cache[1]

    def _compute_pos_embed(self, h: int, w: int) -> torch.Tensor:
        ws = self.pos_embed_window.shape[-1]
        c = self.pos_embed.shape[1]
        bkg = F.interpolate(self.pos_embed, size=(h, w), mode="bicubic")  # (1, C, h, w)
        # Broadcasting over the window grid instead of materialising a tiled copy.
        tiled = bkg.view(1, c, h // ws, ws, w // ws, ws) + self.pos_embed_window.view(
            1, c, 1, ws, 1, ws
        )
        return tiled.view(1, c, h, w).permute(0, 2, 3, 1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W) -> [(B, C_i, H / 2^(i+2), W / 2^(i+2)) for the 4 stages]."""
        multiple = self.min_input_multiple
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected images of shape (B, 3, H, W), got {tuple(x.shape)}")
        if x.shape[-2] % multiple or x.shape[-1] % multiple:
            raise ValueError(
                f"image sides must be multiples of {multiple}, got {tuple(x.shape[-2:])}"
            )
        x = self.patch_embed(x)  # (B, H/4, W/4, C)
        x = x + self._pos_embed(x.shape[1], x.shape[2])
        outputs = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self._stage_ends:
                outputs.append(x.permute(0, 3, 1, 2))  # (B, C, H_i, W_i)
        return outputs
