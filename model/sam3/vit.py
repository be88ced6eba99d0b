"""SAM 3's image trunk: a plain ViT (ViTDet style) with windowed attention and 2-D RoPE.

At the released size a 1008 px image becomes a 72 x 72 grid of 14 px patches, 1024
channels wide, that runs through 32 pre-norm blocks of 16 heads: 28 of them attend
within 24 x 24 windows, blocks 7, 15, 23 and 31 over the whole grid. Every block rotates
its queries and keys by an axial rotary embedding (RoPE): the first half of each head's
channel pairs turns with the token's column, the second half with its row. Windowed
blocks number positions 0..23 inside their window; global blocks number 0..71 scaled by
24/72, so their angles span the same range as the windows' ("interpolated" RoPE). Before
the blocks the patches get an absolute position embedding learnt at 336 px (24 x 24
positions and a class token, which is dropped), repeated over the grid, and a LayerNorm.
The trunk returns the last block's tokens as one feature map.

Tokens travel channels-last, (B, H, W, C), so each linear layer acts on the last axis.
The linears go through `model.kernels.cpu_gemm` (oneDNN where it pays on a CPU), the global
blocks' attention through `model.kernels.attention`'s routes (blocked float32, bf16 blocks on
CPUs) and the windows' through routes measured for them (`_attend`). Windows
cost no copy of their own: the qkv projection runs on the whole grid, and the pass that
rotates queries and keys by the RoPE also writes them window by window, heads first,
in the layout attention takes; the pass that gathers the heads back for the output
projection undoes the windows (`Attention.forward`).

State-dict keys are those of Meta's checkpoint under `detector.backbone.vision_backbone.
trunk.` (including each block's `attn.freqs_cis`, the complex RoPE table, which the
checkpoint stores and which is used as loaded).
"""

from __future__ import annotations

import platform
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from model.kernels import bf16_attention, blocked_attention
from model.kernels.attention import attention
from model.kernels.cpu_gemm import Linear, linear, mlp
from model.sam3.cancel import poll

# The image normalisation of the released models: pixels in [0, 1] mapped to [-1, 1].
IMAGE_MEAN = 0.5
IMAGE_STD = 0.5
# Fast mode's windows attend on CPUs in groups of (window, head) slices whose bf16 weights
# take at most this many values (4 MB; 6 slices of 576 keys: groups of 1 to 16 slices
# measured within 5% of each other on one thread), see `_attend`.
_GROUP_ELEMENTS = 1 << 21


@dataclass(frozen=True)
class ViTConfig:
    """The trunk's sizes; the defaults are SAM 3's released ones.

    Fixed by SAM 3's design rather than configured: qkv biases, no patch-embedding bias,
    a LayerNorm before the blocks and none after, the absolute position embedding with a
    class-token slot tiled over the grid, RoPE interpolated from the window size to the
    global blocks' grid.
    """

    img_size: int = 1008
    patch_size: int = 14
    # The position embedding's grid is pretrain_img_size // patch_size on a side.
    pretrain_img_size: int = 336
    embed_dim: int = 1024
    depth: int = 32
    num_heads: int = 16
    mlp_ratio: float = 4.625
    window_size: int = 24
    # Blocks attending over the whole grid; the last block must be one (its output is
    # the trunk's).
    global_att_blocks: tuple[int, ...] = (7, 15, 23, 31)
    rope_theta: float = 10000.0
    layer_norm_eps: float = 1e-5

    @property
    def grid_size(self) -> int:
        """Tokens on a side of the input grid (72 at 1008 px)."""
        return self.img_size // self.patch_size

    @property
    def pretrain_grid_size(self) -> int:
        """Positions on a side of the learnt absolute position embedding (24)."""
        return self.pretrain_img_size // self.patch_size

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads

    @property
    def mlp_hidden_dim(self) -> int:
        return int(self.embed_dim * self.mlp_ratio)

    def validate(self) -> None:
        """Raises ValueError for sizes the trunk cannot be built with."""
        if self.img_size % self.patch_size or self.pretrain_img_size % self.patch_size:
            raise ValueError(
                f"img_size {self.img_size} and pretrain_img_size {self.pretrain_img_size} "
                f"must be multiples of patch_size {self.patch_size}"
            )
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim {self.embed_dim} is not divisible by {self.num_heads}")
        if self.head_dim % 4:
            # Axial RoPE turns head_dim / 4 channel pairs with each of x and y.
            raise ValueError(f"head_dim {self.head_dim} must be a multiple of 4 for 2-D RoPE")
        blocks = self.global_att_blocks
        if not blocks or list(blocks) != sorted(set(blocks)) or blocks[0] < 0:
            raise ValueError(f"global_att_blocks must be increasing indices, got {blocks}")
        if blocks[-1] != self.depth - 1:
            raise ValueError(
                f"the last block ({self.depth - 1}) must be global, got global_att_blocks={blocks}"
            )
        if self.window_size < 1:
            raise ValueError(f"window_size must be positive, got {self.window_size}")


def axial_rope_table(*, head_dim: int, side: int, scale: float, theta: float) -> torch.Tensor:
    """The complex rotations of a side x side grid -> (side * side, head_dim // 2) complex64.

    Row t (tokens row-major, t = y * side + x) holds head_dim / 4 rotations by x * scale
    times each frequency, then as many by y * scale; the frequencies are
    theta^(-4i / head_dim), i < head_dim / 4.
    """
    n = head_dim // 4
    freqs = 1.0 / theta ** (torch.arange(0, head_dim, 4)[:n].float() / head_dim)
    token = torch.arange(side * side, dtype=torch.float32)
    cols = token % side
    rows = torch.div(token, side, rounding_mode="floor")
    angles = torch.cat((torch.outer(cols * scale, freqs), torch.outer(rows * scale, freqs)), dim=-1)
    return torch.polar(torch.ones_like(angles), angles)


def tile_pos_embed(pos_embed: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """The absolute position embedding repeated over a token grid.

    pos_embed (1, 1 + P * P, C), a class-token slot first (dropped) -> (1, H, W, C) with
    position (i, j) taking the learnt (i mod P, j mod P).
    """
    table = pos_embed[:, 1:]
    side = int(round(table.shape[1] ** 0.5))
    if side * side != table.shape[1]:
        raise ValueError(f"position embedding of {table.shape[1]} positions is not square")
    h, w = grid
    table = table.reshape(1, side, side, -1)
    if (h, w) == (side, side):
        return table
    reps = (1, -(-h // side), -(-w // side), 1)
    return table.repeat(reps)[:, :h, :w]


class Attention(nn.Module):
    """Multi-head self-attention over windows (or the whole grid) with axial RoPE."""

    def __init__(self, *, dim: int, num_heads: int, rope: torch.Tensor, windowed: bool) -> None:
        """rope: the (side * side, head_dim // 2) complex table (`axial_rope_table`) of the
        square window this attention sees (the whole grid for a global block, `windowed`
        False)."""
        super().__init__()
        self.num_heads = num_heads
        self.windowed = windowed
        self.qkv = Linear(dim, dim * 3)
        self.proj = Linear(dim, dim)
        self.register_buffer("freqs_cis", rope)

    @property
    def window(self) -> int:
        """Side of the square window the RoPE table covers."""
        return int(round(self.freqs_cis.shape[0] ** 0.5))

    def forward(self, x: torch.Tensor, window_grid: tuple[int, int]) -> torch.Tensor:
        """x (B, Hp, Wp, C), normed and padded to whole windows -> (B, Hp, Wp, C).

        window_grid (gh, gw): windows down and across (Hp = gh * window); (1, 1) for a
        global block.
        """
        b, hp, wp, c = x.shape
        gh, gw = window_grid
        side, heads = self.window, self.num_heads
        if (gh * side, gw * side) != (hp, wp):
            raise ValueError(f"grid {(hp, wp)} is not {window_grid} windows of {side}")
        head_dim = c // heads
        qkv = self.qkv(x)  # (B, Hp, Wp, 3C)
        poll()  # the long rows' attention after the projection is most of a global block
        q, k = _rotate_into_windows(qkv, self.freqs_cis, window_grid, heads)  # (N, heads, L, d)
        # (B, gh, side, gw, side, heads, d) -> (N, heads, L, d), N = B * gh * gw windows
        v = qkv.view(b, gh, side, gw, side, 3, heads, head_dim)[:, :, :, :, :, 2]
        v = v.permute(0, 1, 3, 5, 2, 4, 6).reshape(b * gh * gw, heads, side * side, head_dim)
        out = _attend(q, k, v, windowed=self.windowed)  # (N, heads, L, d)
        # Heads gathered and windows undone in one copy: (B, Hp, Wp, C).
        out = out.view(b, gh, gw, heads, side, side, head_dim).permute(0, 1, 4, 2, 5, 3, 6)
        return self.proj(out.reshape(b, hp, wp, c))


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, windowed: bool) -> torch.Tensor:
    """Softmax attention of (N, heads, L, d) windows (or the whole grid) -> (N, heads, L, d).

    The global blocks' long rows (5,184 keys at 1008 px) take `model.kernels.attention.attention`'s
    routes (float32 in `model.kernels.blocked_attention` where oneDNN pays, bf16 in its bf16
    blocks), windows (576 keys) routes of their own on CPUs, measured on one thread of a
    2-core AMD EPYC (Zen 4, AVX512-BF16), CPU time while the machine was shared:
    - float32 windows go to torch's fused kernel: 144 x 16 slices of 576 keys took
      160-178 ms there against 293-326 ms in float32 blocks on oneDNN (207 on BLAS), where
      each slice is a few small products;
    - bf16 windows (fast mode, no AMX) take `model.kernels.bf16_attention`'s route a few (window,
      head) slices at a time, so that each group's weights stay in cache, not in chunks
      spanning every window whose weights go out to memory: 102-106 ms against 167 ms
      (151 in bf16 blocks, 174 in torch's bf16 kernel);
    - bf16 global rows take the bf16 blocks: 0.93 s against 1.67 s in chunks (1.42 s in
      torch's bf16 kernel).
    """
    if not windowed:
        if bf16_attention.uses_bf16_route(q, k, v):
            return blocked_attention.blocked_attention(q, k, v)
        return attention(q, k, v)
    if not bf16_attention.uses_bf16_route(q, k, v):
        if q.device.type == "cpu" and q.dtype == torch.float32:
            return F.scaled_dot_product_attention(q, k, v)
        return attention(q, k, v)
    n, heads, length, d = q.shape
    q, k, v = (x.reshape(n * heads, length, -1) for x in (q, k, v))
    group = max(1, _GROUP_ELEMENTS // (length * length))
    out = torch.cat(
        [
            bf16_attention.chunked_bf16_attention(
                q[i : i + group], k[i : i + group], v[i : i + group]
            )
            for i in range(0, n * heads, group)
        ]
    )
    return out.view(n, heads, length, -1)


def _rotate_into_windows(
    qkv: torch.Tensor, rope: torch.Tensor, window_grid: tuple[int, int], heads: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Queries and keys of qkv (B, Hp, Wp, 3C), rotated by the window's RoPE table and
    laid out window by window -> q, k, each (B * gh * gw, heads, side * side, head_dim).

    One complex multiply reads them from the projection's output and writes them in
    attention's layout; the rotation is computed in float32 (complex64) and rounded once
    to the projection's dtype (bf16 in fast mode).
    """
    if not rope.is_complex():
        # `module.to(dtype)` casts complex buffers to real ones, dropping the imaginary
        # parts; `.bfloat16()` and the like leave them alone.
        raise TypeError(f"the RoPE table must stay complex, got {rope.dtype}")
    b, hp, wp, c3 = qkv.shape
    gh, gw = window_grid
    side = hp // gh
    pairs = c3 // 3 // heads // 2
    qk = qkv.view(b, gh, side, gw, side, 3, heads, pairs, 2)[:, :, :, :, :, :2]
    # Pairs of channels as complex numbers: (B, gh, side, gw, side, 2, heads, pairs)
    z = torch.view_as_complex(qk if qk.dtype == torch.float64 else qk.float())
    # -> (2, B, gh, gw, heads, side, side, pairs), the rope broadcast over the last three
    z = z.permute(5, 0, 1, 3, 6, 2, 4, 7)
    out = torch.empty(z.shape, dtype=z.dtype, device=z.device)
    torch.mul(z, rope.to(z.dtype).view(side, side, pairs), out=out)
    qk = torch.view_as_real(out).view(2, b * gh * gw, heads, side * side, pairs * 2)
    if qk.dtype != qkv.dtype:
        qk = qk.to(qkv.dtype)
    return qk[0], qk[1]


def block_rope(cfg: ViTConfig, window: int) -> torch.Tensor:
    """The RoPE table of a block attending in windows of `window` a side (0: the whole grid)."""
    side = window or cfg.grid_size
    # RoPE positions interpolated so that every block's angles span the window's range.
    scale = cfg.window_size / side
    return axial_rope_table(head_dim=cfg.head_dim, side=side, scale=scale, theta=cfg.rope_theta)


class Block(nn.Module):
    """Pre-norm transformer block: (windowed) attention with RoPE, then a GELU MLP."""

    def __init__(self, *, cfg: ViTConfig, window: int) -> None:
        """window: the side of the attention windows, 0 for attention over the whole grid."""
        super().__init__()
        self.window = window
        rope = block_rope(cfg, window)
        self.norm1 = nn.LayerNorm(cfg.embed_dim, eps=cfg.layer_norm_eps)
        self.attn = Attention(
            dim=cfg.embed_dim, num_heads=cfg.num_heads, rope=rope, windowed=window > 0
        )
        self.norm2 = nn.LayerNorm(cfg.embed_dim, eps=cfg.layer_norm_eps)
        self.mlp = Mlp(dim=cfg.embed_dim, hidden_dim=cfg.mlp_hidden_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, H, W, C) -> (B, H, W, C)."""
        h, w = x.shape[1:3]
        y = self.norm1(x)
        if self.window:
            # Padded tokens (zeros after the norm) take part as keys, as in the released model.
            pad_h, pad_w = -h % self.window, -w % self.window
            if pad_h or pad_w:
                y = F.pad(y, (0, 0, 0, pad_w, 0, pad_h))
            grid = ((h + pad_h) // self.window, (w + pad_w) // self.window)
        else:
            grid = (1, 1)
        y = self.attn(y, grid)
        if y.shape[1:3] != (h, w):
            y = y[:, :h, :w]
        x = x + y
        poll()  # a cancelled find stops here too: a global block is over a second exact
        return x + self.mlp(self.norm2(x))


class Mlp(nn.Module):
    """fc1 -> exact GELU -> fc2 (keys `fc1`, `fc2` as timm's Mlp names them)."""

    def __init__(self, *, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = Linear(dim, hidden_dim)
        self.fc2 = Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., C) -> (..., C); the GELU fused into fc1's product where oneDNN computes it."""
        return mlp(x, self.fc1, self.fc2, "gelu")


class PatchEmbed(nn.Module):
    """Non-overlapping patches to channels-last tokens, without bias (key `proj.weight`)."""

    def __init__(self, *, cfg: ViTConfig, in_chans: int = 3) -> None:
        super().__init__()
        p = cfg.patch_size
        self.patch_size = p
        self.proj = nn.Conv2d(in_chans, cfg.embed_dim, kernel_size=p, stride=p, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, H / p, W / p, C).

        A stride-p convolution with a p x p kernel is one product of the (B * H/p * W/p,
        3 * p * p) patches by the (C, 3 * p * p) weight: computed so, by `model.kernels.cpu_gemm`,
        straight into channels-last tokens.
        """
        b, c, h, w = x.shape
        p = self.patch_size
        gh, gw = h // p, w // p
        patches = x.reshape(b, c, gh, p, gw, p).permute(0, 2, 4, 1, 3, 5).reshape(b, gh, gw, -1)
        weight = self.proj.weight
        return linear(patches, weight.reshape(weight.shape[0], -1))


class ViT(nn.Module):
    """Normalised images -> the last block's feature map: [(B, C, H / p, W / p)]."""

    def __init__(self, *, cfg: ViTConfig) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.patch_embed = PatchEmbed(cfg=cfg)
        positions = cfg.pretrain_grid_size**2 + 1  # and a class token's, unused
        self.pos_embed = nn.Parameter(torch.zeros(1, positions, cfg.embed_dim))
        global_blocks = frozenset(cfg.global_att_blocks)
        self.blocks = nn.ModuleList(
            Block(cfg=cfg, window=0 if i in global_blocks else cfg.window_size)
            for i in range(cfg.depth)
        )
        self.ln_pre = nn.LayerNorm(cfg.embed_dim, eps=cfg.layer_norm_eps)
        self.channels = cfg.embed_dim
        self._pos_cache: tuple[tuple, torch.Tensor] | None = None

    def _pos_embed(self, grid: tuple[int, int]) -> torch.Tensor:
        """`tile_pos_embed` of the parameter, (1, H, W, C); without autograd kept (as a
        contiguous copy) until the parameter's storage or version changes."""
        p = self.pos_embed
        if torch.is_grad_enabled() and p.requires_grad:
            return tile_pos_embed(p, grid)
        version = None if p.is_inference() else p._version
        key = (grid, p.data_ptr(), version, p.dtype, p.device)
        if self._pos_cache is None or self._pos_cache[0] != key:
            with torch.inference_mode(False), torch.no_grad():
                self._pos_cache = (key, tile_pos_embed(p, grid).contiguous())
        return self._pos_cache[1]

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, S, S) normalised images, S = cfg.img_size -> [(B, C, S / p, S / p)], a
        channels-last view of the tokens."""
        size = self.cfg.img_size
        if images.ndim != 4 or tuple(images.shape[1:]) != (3, size, size):
            raise ValueError(
                f"expected images of shape (B, 3, {size}, {size}), got {tuple(images.shape)}"
            )
        x = self.patch_embed(images)  # (B, G, G, C)
        x = self.ln_pre(x + self._pos_embed(x.shape[1:3]))
        for block in self.blocks:
            poll()
            x = block(x)
        return [x.permute(0, 3, 1, 2)]


def preprocess(frame: np.ndarray | torch.Tensor, size: int = 1008) -> torch.Tensor:
    """An (H, W, 3) uint8 RGB frame -> the (1, 3, size, size) float32 input of `ViT`.

    As the released models take it: resized (aspect ratio not kept) by antialiased
    bilinear interpolation to a uint8 image, then mapped to [-1, 1] with mean and std 0.5.
    Where torch resizes uint8 natively (x86 with AVX2 or AVX-512, Arm) the uint8 image is
    resized as is, elsewhere in float32 and rounded, as torchvision's transform does.
    """
    if isinstance(frame, np.ndarray):
        frame = torch.from_numpy(np.ascontiguousarray(frame))
    if not isinstance(frame, torch.Tensor):
        raise TypeError(f"expected an (H, W, 3) uint8 array, got {type(frame).__name__}")
    if frame.dtype != torch.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(
            f"expected an (H, W, 3) uint8 frame, got {tuple(frame.shape)} {frame.dtype}"
        )
    if frame.shape[0] < 1 or frame.shape[1] < 1:
        raise ValueError(f"empty frame of shape {tuple(frame.shape)}")
    image = frame.permute(2, 0, 1).contiguous()[None]  # (1, 3, H, W) uint8
    if tuple(image.shape[-2:]) != (size, size):
        if _native_uint8_resize():
            image = F.interpolate(
                image, size=(size, size), mode="bilinear", align_corners=False, antialias=True
            )
        else:
            image = (
                F.interpolate(
                    image.float(),
                    size=(size, size),
                    mode="bilinear",
                    align_corners=False,
                    antialias=True,
                )
                .round_()
                .to(torch.uint8)
            )
    return image.float().mul_(1 / 255).sub_(IMAGE_MEAN).div_(IMAGE_STD)


def _native_uint8_resize() -> bool:
    """Whether uint8 images are resized as uint8 here (torchvision's choice on CPUs)."""
    if platform.machine().lower() in ("aarch64", "arm64"):
        return True
    return torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")
