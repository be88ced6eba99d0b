"""SAM 3's vision backbone (ViT trunk and detector neck) at full size: ours against the oracle.

    /path/to/python-with-sam3 scripts/bench_sam3_vit.py [--threads N] [--skip-oracle]

Builds Meta's `sam3==0.1.4` vision backbone (the test oracle, `tests/sam3_oracle.py`) and
ours at the released size (1008 px, 32 blocks of width 1024) with the same name-seeded
weights, preprocesses one synthetic 1080p frame, and runs one forward of each: the oracle in
float32, ours exact (float32) and fast (bf16 autocast). Prints each one's wall and CPU
time, the largest difference of our levels from the oracle's (relative to each level's
scale), and the load average before and after, since on a shared machine the wall times
mean little. The FLOP floor is the trunk's and neck's multiply-adds at the float32 and
bf16 throughput of one 4096 x 1024 by 1024 x 4736 product (`model.kernels.cpu_gemm.best_seconds`).

Each forward costs about a minute of one core in float32; peak memory about 5 GB with the
oracle (two copies of the 446 M weights), 2.5 GB without. On a 2-core machine that other
processes share, `--threads 1` measures the kernels: two threads wait at every barrier for
whichever one another process has taken the core from (a fast-mode forward took 90 s with
two threads at a load of 3.5, 35 s with one).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "model" / "sam3")]

from model.kernels.allocator import retain_freed_memory  # noqa: E402
from model.kernels.cpu_gemm import best_seconds, linear, onednn_fp32_pays  # noqa: E402
from model.sam3.neck import build_vision_backbone  # noqa: E402
from model.sam3.vit import ViTConfig, preprocess  # noqa: E402

ROUTE_NOTE = "MASKLET_CPU_GEMM=onednn or =blas fixes it"


def flops(cfg: ViTConfig | None = None, d_model: int = 256) -> float:
    """Multiply-adds x 2 of the trunk and the kept neck levels for one frame."""
    cfg = cfg or ViTConfig()
    g, c, hid = cfg.grid_size, cfg.embed_dim, cfg.mlp_hidden_dim
    tokens = g * g
    linears = 2 * tokens * c * (3 * c + c + 2 * hid) * cfg.depth
    window_tokens = cfg.window_size**2
    windows = (-(-g // cfg.window_size)) ** 2
    global_blocks = len(cfg.global_att_blocks)
    attention = (
        4
        * c
        * (global_blocks * tokens**2 + (cfg.depth - global_blocks) * windows * window_tokens**2)
    )
    patches = 2 * tokens * 3 * cfg.patch_size**2 * c
    neck = 2 * (
        tokens * c * (c // 2) * 4  # x4: first transposed conv
        + 4 * tokens * (c // 2) * (c // 4) * 4  # x4: second
        + 16 * tokens * d_model * (c // 4 + 9 * d_model)  # x4: 1x1 and 3x3
        + tokens * c * (c // 2) * 4  # x2: transposed conv
        + 4 * tokens * d_model * (c // 2 + 9 * d_model)  # x2: 1x1 and 3x3
        + tokens * d_model * (c + 9 * d_model)  # x1
    )
    return float(linears + attention + patches + neck)


def gemm_gflops(dtype: torch.dtype) -> float:
    a = torch.randn(4096, 1024).to(dtype)
    b = torch.randn(4736, 1024).to(dtype)
    with torch.inference_mode():
        return 2 * 4096 * 1024 * 4736 / best_seconds(linear, a, b) / 1e9


def frame() -> torch.Tensor:
    """A 1080p uint8 frame with smooth regions and edges."""
    y = torch.linspace(0, 1, 1080)[:, None]
    x = torch.linspace(0, 1, 1920)[None, :]
    r = 200 * x + 40 * torch.sin(9 * y)
    g = 180 * y * (1 - x) + 50 * ((x - 0.6) ** 2 + (y - 0.4) ** 2 < 0.05)
    b = 120 + 100 * torch.cos(7 * x * y) * (x > 0.3)
    return torch.stack([r, g, b], dim=-1).clamp(0, 255).round().to(torch.uint8)


def timed(name: str, fn):
    load = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{name:>14}: {wall:6.1f} s wall, {cpu:6.1f} s CPU (load {load:.1f})", flush=True)
    return out, wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--skip-oracle", action="store_true")
    args = parser.parse_args()
    retain_freed_memory()  # as the app does, before any thread allocates
    torch.set_num_threads(args.threads)
    print(f"threads {args.threads}, load {os.getloadavg()}", flush=True)

    ours = build_vision_backbone().eval()
    ref = None
    if not args.skip_oracle:
        from golden_vit import build_oracle

        ref = build_oracle(ViTConfig(), 256)
        ours.load_state_dict(ref.state_dict(), strict=True)
    image = preprocess(frame().numpy())
    total = flops()
    f32, bf16 = gemm_gflops(torch.float32), gemm_gflops(torch.bfloat16)
    route = "oneDNN" if onednn_fp32_pays() else "BLAS"
    print(f"float32 products on {route} ({ROUTE_NOTE})", flush=True)
    print(
        f"{total / 1e12:.2f} TFLOP a frame; GEMM ceiling {f32:.0f} GFLOP/s float32, "
        f"{bf16:.0f} bf16: floors {total / f32 / 1e9:.1f} s and {total / bf16 / 1e9:.1f} s",
        flush=True,
    )
    with torch.inference_mode():
        expected = None
        if ref is not None:
            from sam3_oracle import on_cpu

            def run_oracle():
                with on_cpu():
                    feats, _, _, _ = ref(image)
                return feats[:-1]

            expected, oracle_s = timed("oracle float32", run_oracle)
        exact, exact_s = timed("ours exact", lambda: ours(image).backbone_fpn)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fast, fast_s = timed("ours fast", lambda: ours(image).backbone_fpn)
    print(f"ours exact: {total / exact_s / 1e9:.0f} GFLOP/s; fast {total / fast_s / 1e9:.0f}")
    if expected is not None:
        print(f"oracle / ours: exact {oracle_s / exact_s:.2f}x, fast {oracle_s / fast_s:.2f}x")
        for name, levels in (("exact", exact), ("fast", fast)):
            diffs = [
                ((a.float() - b).abs().max() / b.abs().max()).item()
                for a, b in zip(levels, expected, strict=True)
            ]
            print(
                f"{name} against the oracle, max |diff| / scale per level: "
                + ", ".join(f"{d:.1e}" for d in diffs)
            )
    print(f"load after {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
