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
made, so memory never holds two copies of the model. A checkpoint read memory-mapped
(`model.sam2.checkpoint.read_state_dict`) stays mapped until its last tensor goes, and
the pages of every tensor read count in the process's memory until then: so each converted
tensor's pages are handed back to the kernel at once (`madvise(MADV_PAGEOUT)`, Linux 5.4
and later; clean file pages are dropped, to be read again from the file if ever needed,
and memory that is not a file's is left alone where there is no swap). Loading `sam3.pt`
in bf16 then peaks near the bf16 model rather than the file plus the bf16 model (measured
on 512 MB of float32 matrices: 322 MB over the start against 770 MB).

A finder held in bf16 computes only in fast mode (`Sam3Finder.find` refuses exact mode
with a one-line message): its weights have lost the bits that exact mode would compute with.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import mmap
import sys
from collections.abc import MutableMapping

import torch
from torch import nn

# Elements from which a weight is held in the low-precision dtype (a 256 x 256 matrix).
HELD_MIN_ELEMENTS = 1 << 16
HELD_DTYPES = (torch.float32, torch.bfloat16)
_MADV_PAGEOUT = 21  # linux/mman.h, Linux 5.4+


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
            release_pages(tensor)
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


def release_pages(tensor: torch.Tensor) -> None:
    """Hand the pages under a CPU tensor about to be dropped back to the kernel (see the
    module docstring); nothing where that cannot be done."""
    libc = _libc()
    if libc is None or tensor.device.type != "cpu" or tensor.numel() == 0:
        return
    page = mmap.PAGESIZE
    start = tensor.data_ptr() // page * page
    end = tensor.data_ptr() + tensor.numel() * tensor.element_size()
    libc.madvise(ctypes.c_void_p(start), ctypes.c_size_t(end - start), _MADV_PAGEOUT)


@functools.cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None
    libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    return libc
