"""How the finder holds its weights: float32 as released, or the large ones in bf16.

Fast mode computes its products in bf16 under autocast. With float32 weights it keeps two
bytes a parameter it never computes with and rounds every weight at every call; holding
the large weights in bf16 halves the model's memory (about 1.7 GB rather than 3.4 GB at
the released size) and spares the rounding. "Large" is `HELD_MIN_ELEMENTS` or more in a
matrix or convolution kernel (a parameter named `*weight` of two or more dimensions): the
ViT's and text encoder's products, the token embedding, the neck's and heads'
convolutions and projections. The rest stays float32: norms, biases, position embeddings,
the decoder's queries and reference boxes (whose sigmoid feeds box refinement), the RoPE
tables (complex), a few MB in all; under autocast products round them as they always did.

Conversion goes one tensor at a time, each float32 tensor released as its bf16 copy is
made, so memory never holds two copies of the model. A finder held in bf16 computes only
in fast mode (`Sam3Finder.find` refuses exact mode with a one-line message): its weights
have lost the bits that exact mode would compute with.
"""

from __future__ import annotations

from collections.abc import MutableMapping

import torch
from torch import nn

# Elements from which a weight is held in the low-precision dtype (a 256 x 256 matrix).
HELD_MIN_ELEMENTS = 1 << 16
HELD_DTYPES = (torch.float32, torch.bfloat16)


def is_held_low(name: str, tensor: torch.Tensor) -> bool:
    """Whether the parameter `name` is one of the large weights held in bf16 (see above)."""
    return (
        name.endswith("weight")
        and tensor.is_floating_point()
        and tensor.dim() >= 2
        and tensor.numel() >= HELD_MIN_ELEMENTS
    )


def _check(dtype: torch.dtype) -> None:
    if dtype not in HELD_DTYPES:
        raise ValueError(f"weights are held in float32 or bfloat16, not {dtype}")


def convert_state(state: MutableMapping[str, torch.Tensor], dtype: torch.dtype) -> None:
    """Convert a state dict's large weights to `dtype` in place, entry by entry.

    To bf16, the float32 tensors kept are copied too (a few MB): a checkpoint read
    memory-mapped stays mapped while any tensor of it lives, and the pages of the converted
    weights, read once, would count in the process's memory as long as it does.
    """
    _check(dtype)
    for name in list(state):
        tensor = state[name]
        if is_held_low(name, tensor) and tensor.dtype != dtype:
            state[name] = tensor.to(dtype)
        elif dtype != torch.float32:
            state[name] = tensor.clone()
        del tensor


def hold_in(module: nn.Module, dtype: torch.dtype) -> None:
    """Convert `module`'s large weights to `dtype` (bf16, or back to float32), one
    parameter at a time, in place of the old ones."""
    _check(dtype)
    for name, param in module.named_parameters():
        if is_held_low(name, param) and param.dtype != dtype:
            with torch.no_grad():
                param.data = param.data.to(dtype)
