"""SAM 3's query scores: dot products of the decoder's queries with the pooled prompt,
and their combination with the presence logit into each instance's score.

The prompt tokens go through a residual MLP with an output LayerNorm, are mean-pooled
over the valid (unpadded) tokens and projected; each query is projected too; the logit
is their dot product / sqrt(d_proj), clamped to +-12. An instance's score is
sigmoid(logit) * sigmoid(presence logit), as Meta's image processor computes it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from model.kernels.cpu_gemm import Linear
from model.sam3.common import MLP


@dataclass(frozen=True)
class ScoringConfig:
    d_model: int = 256
    d_proj: int = 256
    prompt_hidden_dim: int = 2048
    clamp: float = 12.0


class DotProductScoring(nn.Module):
    """`dot_prod_scoring` of the detector."""

    def __init__(self, *, cfg: ScoringConfig = ScoringConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.prompt_mlp = MLP(
            input_dim=cfg.d_model,
            hidden_dim=cfg.prompt_hidden_dim,
            output_dim=cfg.d_model,
            num_layers=2,
            residual=True,
            out_norm=True,
        )
        self.prompt_proj = Linear(cfg.d_model, cfg.d_proj)
        self.hs_proj = Linear(cfg.d_model, cfg.d_proj)

    def forward(
        self, queries: torch.Tensor, prompt: torch.Tensor, prompt_mask: torch.Tensor
    ) -> torch.Tensor:
        """queries (..., B, Q, C), prompt (B, S, C), prompt_mask (B, S) bool (True = pad)
        -> logits (..., B, Q)."""
        prompt = self.prompt_mlp(prompt)
        valid = (~prompt_mask).to(prompt.dtype)[..., None]
        pooled = (prompt * valid).sum(dim=1) / valid.sum(dim=1).clamp(min=1.0)
        pooled = self.prompt_proj(pooled)  # (B, d_proj)
        logits = (self.hs_proj(queries) @ pooled[:, :, None]).squeeze(-1)
        logits = logits * (1.0 / math.sqrt(self.cfg.d_proj))
        return logits.clamp(-self.cfg.clamp, self.cfg.clamp)


def detection_scores(logits: torch.Tensor, presence_logit: torch.Tensor) -> torch.Tensor:
    """Each query's score: logits (B, Q), presence_logit (B,) -> (B, Q) in [0, 1]."""
    return logits.sigmoid() * presence_logit.sigmoid()[:, None]
