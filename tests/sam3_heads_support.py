"""Shared by the SAM 3 detector heads' parity tests and golden fixtures.

A golden fixture records, besides inputs and outputs, the oracle's parameter names and
shapes for the part (entries `param/<checkpoint name>`, the shape as an int64 tensor): CI,
where the oracle is not installed, still checks that a state dict with exactly those names
and shapes loads strictly into ours, and fills both sides with the same name-seeded weights.
"""

from __future__ import annotations

import torch
from sam3_oracle import seeded_value
from torch import nn

PARAM = "param/"


def oracle_params(module: nn.Module, prefix: str) -> dict[str, torch.Tensor]:
    """`param/<prefix><name>` -> shape of each floating state-dict entry of the oracle's
    `module`, whose checkpoint names start with `prefix`."""
    return {
        PARAM + prefix + name: torch.tensor(tuple(t.shape), dtype=torch.int64)
        for name, t in module.state_dict().items()
        if t.is_floating_point()
    }


def seed_oracle(module: nn.Module, prefix: str) -> nn.Module:
    """Fill the oracle's `module` with `seeded_value(prefix + name)`; eval mode."""
    state = {
        name: seeded_value(prefix + name, tuple(t.shape)) if t.is_floating_point() else t
        for name, t in module.state_dict().items()
    }
    module.load_state_dict(state, strict=True)
    return module.eval()


def load_seeded(ours: nn.Module, fixture: dict[str, torch.Tensor], prefix: str) -> nn.Module:
    """Load into `ours`, strictly, a state dict with the oracle's names and shapes as
    recorded in `fixture` under `prefix`, valued by `seeded_value(prefix + name)`; eval."""
    start = PARAM + prefix
    state = {
        key.removeprefix(start): seeded_value(key.removeprefix(PARAM), tuple(shape.tolist()))
        for key, shape in fixture.items()
        if key.startswith(start)
    }
    assert state, f"the fixture records no parameters under {prefix}"
    ours.load_state_dict(state, strict=True)
    return ours.eval()


def assert_informative(t: torch.Tensor, name: str = "") -> None:
    """What a parity test compares must be finite and vary: not blanked, empty or constant."""
    assert t.numel() > 0, f"{name}: empty"
    assert torch.isfinite(t).all(), f"{name}: not finite"
    t = t.double()
    assert t.std() > 1e-3 * max(t.abs().max().item(), 1e-12), f"{name}: (nearly) constant"
