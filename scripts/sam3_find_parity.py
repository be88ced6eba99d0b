"""SAM 3's whole finder at full size against Meta's `Sam3Processor`: parity and time.

    /path/to/python-with-sam3 scripts/sam3_find_parity.py [--threads N] [--skip-fast]

Builds the oracle's image model (`sam3==0.1.4`, the released sizes, its random init with
the text encoder's two uninitialised tensors filled) and ours from the very same tensors
(`model.sam3.checkpoint.finder_from_state_dict`, as `sam3.pt` would load), then on one
synthetic 480 x 640 frame with threshold 0 (every query returned, every mask drawn by both):
the oracle's `set_image` and two `set_text_prompt` calls, against our `find` for the first
phrase (backbone included), a second phrase on the cached frame (all 200 masks, then only
the 10 best), and a fast-mode (bf16 autocast) `find` on the frame. Prints each time, the
largest differences of scores and boxes against their scale, and how many mask pixels
differ. Costs about two minutes of two cores and 8 GB of memory (one copy of the weights,
shared; two backbones' activations).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "model" / "sam3")]

PHRASES = ("a red bicycle", "a dog")
# The released input size and sizes (a smoke test may patch these and `build_oracle`).
RESOLUTION = 1008
CONFIG = None


def build_oracle() -> torch.nn.Module:
    from sam3_oracle import import_sam3, on_cpu

    from model.sam3.tokenizer import VOCABULARY_PATH

    mb = import_sam3()
    with on_cpu():
        model = mb.build_sam3_image_model(
            bpe_path=str(VOCABULARY_PATH),
            device="cpu",
            load_from_HF=False,
            enable_segmentation=True,
            enable_inst_interactivity=False,
        )
    text = model.backbone.language_backbone.encoder
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # created with torch.empty and never initialised by the oracle
        text.positional_embedding.copy_(torch.randn(text.positional_embedding.shape, generator=gen))
        text.positional_embedding.mul_(0.01)
        text.text_projection.copy_(torch.randn(text.text_projection.shape, generator=gen) * 0.02)
    return model.eval()


def timed(times: dict[str, float], name: str, call, *args, **kwargs):  # noqa: ANN001, ANN201
    start = time.perf_counter()
    out = call(*args, **kwargs)
    times[name] = time.perf_counter() - start
    print(f"{name}: {times[name]:.2f} s", flush=True)
    return out


def run_oracle(model: torch.nn.Module, pixels: torch.Tensor, times: dict[str, float]) -> dict:
    from PIL import Image
    from sam3.model.sam3_image_processor import Sam3Processor
    from sam3_oracle import on_cpu

    with on_cpu(), torch.inference_mode(), torch._dynamo.config.patch(disable=True):
        proc = Sam3Processor(model, resolution=RESOLUTION, device="cpu", confidence_threshold=0.0)
        state = timed(times, "oracle set_image", proc.set_image, Image.fromarray(pixels.numpy()))
        state = timed(times, "oracle phrase 1", proc.set_text_prompt, PHRASES[0], state)
        first = {k: state[k].clone() for k in ("scores", "boxes", "masks")}
        timed(times, "oracle phrase 2", proc.set_text_prompt, PHRASES[1], state)
    return first


def compare(got, expected: dict) -> None:  # noqa: ANN001
    # Query by query: in bf16 near-equal scores may come in another order.
    order = got.queries
    for name in ("scores", "boxes"):
        want = expected[name][order]
        err = (getattr(got, name) - want).abs().max().item()
        print(f"{name}: max |ours - oracle| {err:.3g}, scale {want.abs().max().item():.3g}")
    masks = expected["masks"][order][:, 0]
    print(f"masks: {int((got.masks != masks).sum())} of {masks.numel()} pixels differ")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's)")
    parser.add_argument("--skip-fast", action="store_true", help="no bf16 run")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from golden_vit import frame

    from model.sam3.checkpoint import finder_from_state_dict

    oracle = build_oracle()
    state = {f"detector.{k}": v for k, v in oracle.state_dict().items()}
    ours = finder_from_state_dict(state, CONFIG)
    pixels = frame(480, 640)
    times: dict[str, float] = {}
    expected = run_oracle(oracle, pixels, times)
    got = timed(times, "ours find 1", ours.find, pixels, PHRASES[0], threshold=0.0)
    timed(times, "ours find 2 (cached frame)", ours.find, pixels, PHRASES[1], threshold=0.0)
    cut = float(got.scores[10])
    timed(times, "ours find 2, 10 masks", ours.find, pixels, PHRASES[1], threshold=cut)
    compare(got, expected)
    if not args.skip_fast:
        fast = timed(
            times,
            "ours fast find 1",
            ours.find,
            pixels,
            PHRASES[0],
            threshold=0.0,
            precision="fast",
        )
        compare(fast, expected)
    oracle_total = times["oracle set_image"] + times["oracle phrase 1"]
    print(f"first find: oracle {oracle_total:.1f} s, ours {times['ours find 1']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
