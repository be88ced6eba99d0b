"""SAM 3's text encoder: a causal CLIP-style transformer over a phrase's 32 tokens.

Token ids (`model.sam3.tokenizer`) are embedded, added to a learnt position embedding,
run through pre-norm transformer blocks with causal self-attention (a token sees itself
and the tokens before it) and a GELU MLP, normalised, and projected from the
transformer's width to the detector's d_model (`resizer`). The detector receives, per
phrase, every token's projected features and the padding mask (True where the id is
the padding id 0), and keeps the raw token embeddings beside them; SAM 3 computes no
pooled phrase vector for it (the CLIP projection `encoder.text_projection` is in the
checkpoint, but SAM 3 applies it to every token and discards the result, so it is held
for loading and never computed here).

Submodules are named as the official checkpoint names them under
`detector.backbone.language_backbone.`, so those weights load with the prefix stripped.

`TextEncoder.encode(phrases)` tokenizes, runs the network under `torch.inference_mode`
and keeps each phrase's result in a bounded LRU cache: a phrase seen before costs a
lookup. The cache is keyed by phrase and by how the network would compute (device,
weight dtype, bf16 autocast or not), and emptied when the weights change.

Speed on a CPU: the products go through `model.kernels.cpu_gemm` (oneDNN where it measured
faster; the MLP's GELU applied as the product is written); exact float32, or bf16 under
autocast (fast mode), the residual stream and the norms in float32 either way. In fast
mode hold the weights in bf16 (`.to(torch.bfloat16)`: 0.7 GB rather than 1.4 GB at the
released size, and bf16 weights run under autocast by themselves): with float32 weights
autocast recasts every weight at every call, which costs about as much as it saves here
(a phrase's 32 tokens make products of 32 rows, whose time goes into reading weights).
One phrase at the released size, one thread of a busy 2-core AMD EPYC, CPU time:
the oracle 340-360 ms, ours exact 280-350 ms, fast with bf16 weights 160-170 ms
(`scripts/bench_sam3_text_encoder.py`); a cached phrase under 1 ms.
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from model.kernels.cpu_gemm import Linear, linear, mlp
from model.sam3.cancel import poll
from model.sam3.tokenizer import PAD_ID, PhraseError, Tokenizer


@dataclass(frozen=True)
class TextEncoderConfig:
    """SAM 3's text encoder; the defaults are the released model's."""

    width: int = 1024
    layers: int = 24
    heads: int = 16
    context_length: int = 32
    vocab_size: int = 49408
    # The detector's feature width, which `resizer` projects to.
    d_model: int = 256
    mlp_ratio: float = 4.0
    # Columns of CLIP's `text_projection` (held for the checkpoint, unused by SAM 3).
    projection_dim: int = 512
    layer_norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        if self.width % self.heads:
            raise ValueError(f"width {self.width} is not divisible by {self.heads} heads")


@dataclass(frozen=True)
class TextFeatures:
    """What the text encoder gives the detector for a batch of B phrases of L tokens.

    features: (B, L, d_model) every token's features, padding included (masked later).
    padding: (B, L) bool, True at padding tokens (SAM 3's `language_mask`).
    embeds: (B, L, width) the token embeddings before the transformer.
    truncated: per phrase, whether words past the context were dropped (empty where the
        encoder was given ids rather than phrases).
    """

    features: torch.Tensor
    padding: torch.Tensor
    embeds: torch.Tensor
    truncated: tuple[bool, ...] = ()

    def backbone_out(self) -> dict[str, torch.Tensor]:
        """The oracle's names and layouts: `language_features` (L, B, d_model),
        `language_mask` (B, L), `language_embeds` (L, B, width)."""
        return {
            "language_features": self.features.transpose(0, 1),
            "language_mask": self.padding,
            "language_embeds": self.embeds.transpose(0, 1),
        }

    @staticmethod
    def cat(parts: Sequence[TextFeatures]) -> TextFeatures:
        """Phrases of several results as one batch, in order; shorter (trimmed) ones padded
        to the longest with zeros marked as padding."""
        if len(parts) == 1:
            return parts[0]
        length = max(p.padding.shape[1] for p in parts)
        parts = [p.padded_to(length) for p in parts]
        return TextFeatures(
            features=torch.cat([p.features for p in parts]),
            padding=torch.cat([p.padding for p in parts]),
            embeds=torch.cat([p.embeds for p in parts]),
            truncated=tuple(t for p in parts for t in p.truncated),
        )

    def padded_to(self, length: int) -> TextFeatures:
        """These phrases with zero tokens marked as padding appended up to `length`."""
        extra = length - self.padding.shape[1]
        if extra <= 0:
            return self
        return TextFeatures(
            features=F.pad(self.features, (0, 0, 0, extra)),
            padding=F.pad(self.padding, (0, extra), value=True),
            embeds=F.pad(self.embeds, (0, 0, 0, extra)),
            truncated=self.truncated,
        )


def _layer_norm(x: torch.Tensor, norm: nn.LayerNorm) -> torch.Tensor:
    """`norm(x)` in float32 whatever the weights' dtype (bf16 weights in fast mode)."""
    weight, bias = norm.weight, norm.bias
    if weight.dtype != torch.float32:
        weight, bias = weight.float(), bias.float()
    with torch.autocast(x.device.type, enabled=False):
        return F.layer_norm(x.float(), norm.normalized_shape, weight, bias, norm.eps)


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where token i attends to tokens 0..i.

    Parameters as `nn.MultiheadAttention` names them (`in_proj_weight` (3 width, width),
    `in_proj_bias`, `out_proj`), so the checkpoint's keys load unchanged.
    """

    def __init__(self, *, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * width))
        self.out_proj = Linear(width, width)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.in_proj_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, L, width) -> (B, L, width)."""
        b, n, width = x.shape
        qkv = linear(x, self.in_proj_weight, self.in_proj_bias)
        q, k, v = qkv.view(b, n, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out_proj(out.transpose(1, 2).reshape(b, n, width))


class _MLP(nn.Module):
    """width -> mlp width (GELU) -> width, as `c_fc` and `c_proj`."""

    def __init__(self, *, width: int, hidden: int) -> None:
        super().__init__()
        self.c_fc = Linear(width, hidden)
        self.c_proj = Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return mlp(x, self.c_fc, self.c_proj, "gelu")


class ResidualAttentionBlock(nn.Module):
    """x + attn(ln_1(x)), then + mlp(ln_2(x)); the residual stream in float32."""

    def __init__(self, *, width: int, heads: int, mlp_ratio: float, eps: float) -> None:
        super().__init__()
        self.attn = CausalSelfAttention(width=width, heads=heads)
        self.ln_1 = nn.LayerNorm(width, eps=eps)
        self.ln_2 = nn.LayerNorm(width, eps=eps)
        self.mlp = _MLP(width=width, hidden=int(width * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, L, width) float32 -> (B, L, width) float32."""
        x = x + self.attn(_layer_norm(x, self.ln_1))
        return x + self.mlp(_layer_norm(x, self.ln_2))


class _Blocks(nn.Module):
    """`resblocks.{i}`, under the checkpoint's `transformer.` prefix."""

    def __init__(self, cfg: TextEncoderConfig) -> None:
        super().__init__()
        self.resblocks = nn.ModuleList(
            ResidualAttentionBlock(
                width=cfg.width, heads=cfg.heads, mlp_ratio=cfg.mlp_ratio, eps=cfg.layer_norm_eps
            )
            for _ in range(cfg.layers)
        )


class TextTransformer(nn.Module):
    """Token and position embeddings, the causal blocks and the final norm (CLIP's text
    tower; its `text_projection` is held, not used: see the module docstring)."""

    def __init__(self, cfg: TextEncoderConfig) -> None:
        super().__init__()
        self.positional_embedding = nn.Parameter(torch.empty(cfg.context_length, cfg.width))
        self.text_projection = nn.Parameter(torch.empty(cfg.width, cfg.projection_dim))
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.width)
        self.transformer = _Blocks(cfg)
        self.ln_final = nn.LayerNorm(cfg.width, eps=cfg.layer_norm_eps)
        nn.init.normal_(self.positional_embedding, std=0.01)
        nn.init.normal_(self.text_projection, std=cfg.width**-0.5)

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """ids (B, L) int64, L <= context -> (normalised tokens (B, L, width) float32,
        token embeddings (B, L, width) in the weights' dtype)."""
        embeds = self.token_embedding(ids)
        x = embeds.float() + self.positional_embedding[: ids.shape[1]].float()
        for block in self.transformer.resblocks:
            poll()
            x = block(x)
        return _layer_norm(x, self.ln_final), embeds


class TextEncoder(nn.Module):
    """Phrases -> `TextFeatures` for SAM 3's detector (module docstring).

    `forward` takes token ids; `encode` takes phrases and caches their features.
    """

    def __init__(
        self,
        *,
        cfg: TextEncoderConfig | None = None,
        tokenizer: Tokenizer | None = None,
        cache_size: int = 64,
    ) -> None:
        super().__init__()
        self.cfg = cfg = cfg or TextEncoderConfig()
        self.encoder = TextTransformer(cfg)
        self.resizer = Linear(cfg.width, cfg.d_model)
        self._tokenizer = tokenizer
        self.cache_size = cache_size
        self._cache: collections.OrderedDict[tuple, TextFeatures] = collections.OrderedDict()
        self._cache_weights: tuple = ()
        self.cache_hits = 0

    @property
    def tokenizer(self) -> Tokenizer:
        """The tokenizer, its vocabulary read on first use."""
        if self._tokenizer is None:
            self._tokenizer = Tokenizer(context_length=self.cfg.context_length)
        return self._tokenizer

    def forward(self, ids: torch.Tensor) -> TextFeatures:
        """ids (B, L) int64 token ids, `PAD_ID` after each phrase -> `TextFeatures`."""
        if ids.dim() != 2 or ids.shape[1] > self.cfg.context_length:
            raise ValueError(
                f"token ids must be (batch, <= {self.cfg.context_length}), got {tuple(ids.shape)}"
            )
        held = self.encoder.token_embedding.weight.dtype
        device = ids.device.type
        # Weights held in bf16 compute in bf16 whether or not the caller set autocast.
        bf16 = held == torch.bfloat16 and not torch.is_autocast_enabled(device)
        with torch.autocast(device, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
            tokens, embeds = self.encoder(ids)
            features = linear(tokens, self.resizer.weight, self.resizer.bias)
        return TextFeatures(features=features, padding=ids == PAD_ID, embeds=embeds)

    def encode(self, phrases: str | Sequence[str], *, trim: bool = False) -> TextFeatures:
        """Features of each phrase, (B, context, ...), computed once per phrase and mode.

        `trim`: only up to the batch's last real token, (B, L, ...) with L its length. The
        attention is causal, so the real tokens' features do not depend on the padding
        after them, and every consumer masks padding: the detector finds the same (to
        float32 summation order) for a sixth of the text encoder's work on a short phrase
        (SOT, three words, EOT: 5 of 32 tokens).

        Runs under `torch.inference_mode` on the weights' device, in fast mode when
        called under bf16 autocast. A phrase with nothing to tokenize is a
        `model.sam3.tokenizer.PhraseError` (a ValueError); truncated phrases are flagged
        in `TextFeatures.truncated`. The tensors returned are shared with the cache:
        read them, do not write to them.
        """
        if isinstance(phrases, str):
            phrases = [phrases]
        if not phrases:
            raise PhraseError("no phrase given: give a few words to find")
        for phrase in phrases:
            if not isinstance(phrase, str):
                raise PhraseError(f"a phrase must be text, got {type(phrase).__name__}")
        mode = (*self._mode(), trim)
        missing = list(dict.fromkeys(p for p in phrases if (p, *mode) not in self._cache))
        if missing:
            tokens = self.tokenizer(missing)
            ids = tokens.ids
            if trim:
                real = (ids != PAD_ID).any(dim=0).nonzero()
                ids = ids[:, : int(real[-1]) + 1 if len(real) else 1]
            with torch.inference_mode():
                out = self(ids.to(self.encoder.positional_embedding.device))
                for i, phrase in enumerate(missing):
                    # Each phrase's rows copied, so that one cached phrase does not keep
                    # a whole batch's tensors alive.
                    self._cache[(phrase, *mode)] = TextFeatures(
                        features=out.features[i : i + 1].clone(),
                        padding=out.padding[i : i + 1].clone(),
                        embeds=out.embeds[i : i + 1].clone(),
                        truncated=tokens.truncated[i : i + 1],
                    )
        self.cache_hits += len(phrases) - len(missing)
        rows = []
        for phrase in phrases:
            key = (phrase, *mode)
            self._cache.move_to_end(key)
            rows.append(self._cache[key])
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return TextFeatures.cat(rows)

    def clear_cache(self) -> None:
        self._cache.clear()

    def _mode(self) -> tuple:
        """What the cached features depend on besides the phrase: device, weight dtype,
        autocast; the cache is emptied first if the weights changed since it was filled."""
        params = list(self.parameters())
        weights = tuple((p.data_ptr(), _version(p)) for p in params)
        if weights != self._cache_weights:
            self._cache.clear()
            self._cache_weights = weights
        device = params[0].device
        autocast = torch.is_autocast_enabled(device.type)
        dtype = torch.get_autocast_dtype(device.type) if autocast else None
        return (str(device), params[0].dtype, dtype)


def _version(t: torch.Tensor) -> int:
    """`t`'s in-place modification counter (-1 for an inference tensor, which has none)."""
    try:
        return t._version
    except RuntimeError:
        return -1
