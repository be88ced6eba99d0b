"""Which compute devices this machine can run the model on, and why not when it cannot.

Plain Python (no Qt) so the GUI's device menu and the model dialog agree, and tests can
replace the answer. torch is imported lazily: asking must not slow the app's start.
"""

from __future__ import annotations

__all__ = ["DEVICES", "device_problems"]

DEVICES = ("cpu", "cuda", "mps")


def device_problems() -> dict[str, str | None]:
    """For each of DEVICES: None when usable here, else a sentence saying why not."""
    import torch

    problems: dict[str, str | None] = {"cpu": None, "cuda": None, "mps": None}
    if not torch.cuda.is_available():
        problems["cuda"] = (
            "No NVIDIA GPU that PyTorch can use was found."
            if torch.backends.cuda.is_built()
            else "This PyTorch was installed without CUDA support."
        )
    mps = getattr(torch.backends, "mps", None)
    if mps is None or not mps.is_available():
        problems["mps"] = "MPS needs a Mac with Apple silicon."
    return problems
