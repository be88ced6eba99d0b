"""Meta's `sam3==0.1.4` as a test-only oracle on a CPU, at random init.

The package is not installed in CI (its dependencies pull a CUDA-built torchvision); tests that
need it call `require_sam3()` and skip where it is missing, and golden fixtures made from it by
`scripts/make_sam3_fixtures.py` cover CI. Three things stop it from running on a CPU as
shipped, each worked around here rather than by editing the package:
- a CUDA-built torchvision registers fake kernels for two operators whose schemas only its CUDA
  library defines, so its import fails until the schemas exist;
- `sam3/model/edt.py` imports `triton` at module level (training only): that module is stubbed;
- about 70 sites create tensors with `device="cuda"`, call `.cuda()` or `.pin_memory()`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import sys
import types
from collections.abc import Iterator
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

_TV_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_tv_library: Any = None


def _define_torchvision_schemas() -> None:
    global _tv_library
    if _tv_library is not None:
        return
    with contextlib.suppress(Exception):
        torch.ops.torchvision.nms  # noqa: B018 - exists only with a CPU-built torchvision
        return
    _tv_library = torch.library.Library("torchvision", "DEF")
    for schema in _TV_SCHEMAS:
        _tv_library.define(schema)


def _stub_edt() -> None:
    """`sam3.model.edt` (a Triton distance transform for training) as an empty stand-in.

    A stubbed `triton` would confuse torch's own Triton detection, so the one module that
    imports it is replaced instead; the detector never calls it.
    """
    if "sam3.model.edt" in sys.modules:
        return
    edt = types.ModuleType("sam3.model.edt")

    def edt_triton(*_args: Any, **_kwargs: Any) -> None:
        raise NotImplementedError("sam3.model.edt is stubbed in tests")

    edt.edt_triton = edt_triton  # type: ignore[attr-defined]
    sys.modules["sam3.model.edt"] = edt


def import_sam3() -> types.ModuleType:
    """`sam3.model_builder`, importable on a CPU torch; raises ImportError where not installed."""
    _define_torchvision_schemas()
    _stub_edt()
    return importlib.import_module("sam3.model_builder")


def require_sam3() -> types.ModuleType:
    """`sam3.model_builder`, or skip the test where the oracle is not installed."""
    import pytest  # here: benchmarks use seeded_value where pytest is not installed

    try:
        return import_sam3()
    except ImportError as exc:
        pytest.skip(f"sam3==0.1.4 oracle not installed: {exc}")


class CpuOnly(TorchFunctionMode):
    """Maps the oracle's hard-coded CUDA placements to the CPU."""

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = dict(kwargs or {})
        name = getattr(func, "__name__", "")
        if name in ("cuda", "pin_memory"):
            return args[0]
        device = kwargs.get("device")
        if device is not None and "cuda" in str(device):
            kwargs["device"] = "cpu"
        if name == "to":
            args = tuple("cpu" if isinstance(a, str) and "cuda" in a else a for a in args)
            args = tuple(
                torch.device("cpu") if isinstance(a, torch.device) and a.type == "cuda" else a
                for a in args
            )
        return func(*args, **kwargs)


@contextlib.contextmanager
def on_cpu() -> Iterator[None]:
    """Run oracle code (construction and forward) with CUDA placements sent to the CPU."""
    with CpuOnly():
        yield


@contextlib.contextmanager
def shrunk(builder: types.ModuleType, **overrides: dict[str, Any]) -> Iterator[None]:
    """Within the block, `builder.<Class>(...)` gets `overrides[<Class>]` as extra kwargs.

    E.g. `shrunk(mb, ViT={"embed_dim": 64, "depth": 2})`: the builders call the classes by
    name with the full-size arguments, which these replace.
    """
    saved = {name: getattr(builder, name) for name in overrides}
    try:
        for name, extra in overrides.items():
            cls = saved[name]

            def make(*args: Any, _cls: Any = cls, _extra: dict = extra, **kwargs: Any) -> Any:
                return _cls(*args, **{**kwargs, **_extra})

            setattr(builder, name, make)
        yield
    finally:
        for name, cls in saved.items():
            setattr(builder, name, cls)


def seeded_value(name: str, shape: tuple[int, ...], *, scale: float | None = None) -> torch.Tensor:
    """A float32 tensor that depends only on (name, shape): the same in ours and the oracle.

    Weights for parity tests: the same names (the oracle's, i.e. the checkpoint's) give the
    same values in any process, so golden fixtures need not store weights. Values are
    uniform in +-scale, scale = 1/sqrt(fan-in) by default, so activations keep their size
    through deep stacks; norms' weights centre on 1.
    """
    digest = hashlib.sha256(f"{name}:{tuple(shape)}".encode()).digest()
    gen = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))
    if scale is None:
        fan_in = functools.reduce(lambda a, b: a * b, shape[1:], 1) if len(shape) > 1 else 1
        scale = fan_in**-0.5 if len(shape) > 1 else 0.1
    value = (torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1) * scale
    if (
        len(shape) == 1
        and ("norm" in name or name.endswith("ln.weight"))
        and name.endswith("weight")
    ):
        value = value + 1.0
    return value.float()


def seeded_state_dict(template: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`seeded_value` for every floating entry of `template` (names and shapes); others kept."""
    return {
        name: seeded_value(name, tuple(t.shape)) if t.is_floating_point() else t.clone()
        for name, t in template.items()
    }
