"""Builds the reference `sam2==1.1.0` model at random init: the test-only oracle.

Parity tests build the oracle here, perturb every weight with a fixed seed (so
zero-initialised parameters such as position embeddings are exercised too),
then load the same state dict into our model and compare outputs.
"""

from __future__ import annotations

import torch

REFERENCE_CONFIGS = {
    "sam2.1-tiny": "configs/sam2.1/sam2.1_hiera_t.yaml",
    "sam2.1-small": "configs/sam2.1/sam2.1_hiera_s.yaml",
    "sam2.1-base-plus": "configs/sam2.1/sam2.1_hiera_b+.yaml",
    "sam2.1-large": "configs/sam2.1/sam2.1_hiera_l.yaml",
    "sam2-tiny": "configs/sam2/sam2_hiera_t.yaml",
    "sam2-small": "configs/sam2/sam2_hiera_s.yaml",
    "sam2-base-plus": "configs/sam2/sam2_hiera_b+.yaml",
    "sam2-large": "configs/sam2/sam2_hiera_l.yaml",
}


_CACHE: dict[tuple, torch.nn.Module] = {}
_CACHE_SIZE = 12


def build_reference(
    name: str,
    *,
    image_size: int = 256,
    video: bool = False,
    seed: int = 0,
    overrides: tuple[str, ...] = (),
    fresh: bool = False,
):
    """The reference SAM2Base (or SAM2VideoPredictor with `video=True`), eval, CPU.

    Builds are shared across the whole test run (building the large variants
    takes seconds each), so callers must not modify the returned model; pass
    `fresh=True` for a private copy that may be modified.
    """
    key = (name, image_size, video, seed, tuple(overrides))
    if fresh:
        return _build(*key)
    if key not in _CACHE:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = _build(*key)
    return _CACHE[key]


def _build(name: str, image_size: int, video: bool, seed: int, overrides: tuple[str, ...]):
    from sam2.build_sam import build_sam2, build_sam2_video_predictor

    extra = [f"++model.image_size={image_size}", *overrides]
    builder = build_sam2_video_predictor if video else build_sam2
    torch.manual_seed(seed)
    model = builder(REFERENCE_CONFIGS[name], device="cpu", hydra_overrides_extra=extra)
    perturb_(model, seed=seed)
    return model.eval()


@torch.no_grad()
def perturb_(module: torch.nn.Module, *, seed: int, scale: float = 0.02) -> None:
    """Add small seeded noise to every floating-point parameter and buffer."""
    gen = torch.Generator().manual_seed(seed + 1)
    for _, tensor in sorted(module.state_dict(keep_vars=True).items()):
        if tensor.is_floating_point():
            noise = torch.randn(tensor.shape, generator=gen, dtype=tensor.dtype)
            tensor.add_(noise * scale)
