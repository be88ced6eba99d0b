"""Choosing the compute device: CUDA, then Apple MPS, then CPU, unless told otherwise."""

from __future__ import annotations

import contextlib
import ctypes
import sys

import torch


def pick_device(override: str | torch.device | None = None) -> torch.device:
    """The device to run on; `override` ("cpu", "cuda:1", ...) wins when given."""
    if override is not None:
        device = torch.device(override)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {device} requested but CUDA is not available")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError("device mps requested but MPS is not available")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def release_free_memory() -> None:
    """Hand freed heap pages back to the OS (glibc only; a no-op elsewhere).

    A long propagation keeps a small record per frame between large short-lived
    tensors; glibc then cannot shrink its heap and the process's resident size
    creeps up although nothing is in use. `malloc_trim` returns those pages.
    """
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
