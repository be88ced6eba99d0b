"""SAM 3's detector heads at full size against Meta's: parity and time, one frame, one prompt.

    /path/to/python-with-sam3 scripts/sam3_heads_parity.py [--threads N] [--exemplar]

Builds the oracle's image model after its backbone (`sam3==0.1.4`, geometry encoder,
fusion encoder, decoder, scoring, segmentation head at Meta's default size) with
name-seeded weights, loads the same state dict into ours (`model.sam3.heads`), feeds both
the same neck levels of a 1008 px frame (288, 144, 72 a side; random) and text features
(random, 32 tokens of which 6 valid), and prints the largest difference of each output as a
fraction of its scale, and each side's time: ours exact (float32) and fast (bf16 autocast),
the oracle's `forward_grounding`. The backbone is not part of this: its outputs are given.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "model" / "sam3")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's)")
    parser.add_argument("--exemplar", action="store_true", help="add a positive exemplar box")
    parser.add_argument("--repeats", type=int, default=2, help="timed calls of each (best)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    import golden_heads  # the oracle's builder, as the tests build it
    from sam3_oracle import on_cpu

    from model.sam2.position_encoding import SinePositionEncoding
    from model.sam3.heads import DetectorHeads, Prompt

    gen = torch.Generator().manual_seed(0)
    levels = [torch.randn(1, 256, s, s, generator=gen) for s in (288, 144, 72)]
    pos = SinePositionEncoding(num_pos_feats=256)(levels[-1]).clone()
    text = torch.randn(1, 32, 256, generator=gen)
    text_mask = torch.arange(32)[None] >= 6
    boxes = torch.tensor([[[0.4, 0.5, 0.3, 0.4]]]) if args.exemplar else None

    oracle = golden_heads.build_oracle(full_size=True)
    ours = DetectorHeads().eval()
    ours.load_state_dict(oracle.state_dict(), strict=True)
    prompt = Prompt(text=text, text_mask=text_mask, boxes=boxes)

    def timed(fn, repeats):  # noqa: ANN001, ANN202
        best, out = float("inf"), None
        for _ in range(repeats):
            start = time.perf_counter()
            out = fn()
            best = min(best, time.perf_counter() - start)
        return out, best

    with torch.inference_mode():
        exact, t_exact = timed(lambda: ours(levels, pos, prompt), args.repeats)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fast, t_fast = timed(lambda: ours(levels, pos, prompt), args.repeats)

    from sam3.model.data_misc import FindStage
    from sam3.model.geometry_encoders import Prompt as OraclePrompt

    find = FindStage(
        img_ids=torch.tensor([0]),
        text_ids=torch.tensor([0]),
        input_boxes=None,
        input_boxes_mask=None,
        input_boxes_label=None,
        input_points=None,
        input_points_mask=None,
    )
    backbone_out = {
        "backbone_fpn": levels,
        "vision_pos_enc": [None, None, pos],
        "language_features": text.transpose(0, 1),
        "language_mask": text_mask,
    }
    n = 0 if boxes is None else 1
    geometry = OraclePrompt(
        box_embeddings=torch.zeros(0, 1, 4) if boxes is None else boxes.transpose(0, 1),
        box_mask=torch.zeros(1, n, dtype=torch.bool),
    )
    with on_cpu(), torch.inference_mode():
        out, t_oracle = timed(
            lambda: oracle.forward_grounding(
                backbone_out=dict(backbone_out),
                find_input=find,
                find_target=None,
                geometric_prompt=geometry,
            ),
            args.repeats,
        )
    expected = {
        "logits": out["pred_logits"].squeeze(-1),
        "presence_logit": out["presence_logit_dec"].squeeze(-1),
        "scores": (out["pred_logits"].sigmoid() * out["presence_logit_dec"].sigmoid()[:, None])[
            ..., 0
        ],
        "boxes": out["pred_boxes"],
        "mask_logits": out["pred_masks"],
        "semantic_logits": out["semantic_seg"],
    }
    print(f"threads {torch.get_num_threads()}, prompt: text{' + 1 box' if n else ''}")
    print(f"{'output':>16} {'exact err/scale':>16} {'fast err/scale':>15} {'scale':>8}")
    for name, e in expected.items():
        scale = e.abs().max().item() or 1.0
        err = (getattr(exact, name) - e).abs().max().item() / scale
        err_fast = (getattr(fast, name).float() - e).abs().max().item() / scale
        print(f"{name:>16} {err:16.2e} {err_fast:15.2e} {scale:8.3g}")
    print(f"time: ours exact {t_exact:.2f} s, ours fast {t_fast:.2f} s, oracle {t_oracle:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
