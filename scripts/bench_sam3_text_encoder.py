"""Time SAM 3's text encoder at its released size: ours (exact float32; fast bf16 with the
weights held in float32 and in bf16) against Meta's `sam3==0.1.4` on this CPU.

    /path/to/python-with-sam3 scripts/bench_sam3_text_encoder.py [--phrases N] [--rounds R]

Both are built at random init with the same weights (the oracle's uninitialised
`positional_embedding` and `text_projection` filled first); each time is the best of
`--rounds` encodes of the same phrases with our phrase cache emptied before each, and the
cached second encode is timed too. Prints one line per configuration and the largest
difference from the oracle relative to its features' scale.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from model.sam3.text_encoder import TextEncoder  # noqa: E402
from model.sam3.tokenizer import VOCABULARY_PATH  # noqa: E402

PHRASES = ("yellow school bus", "a red bicycle", "person", "traffic light", "dog")


def best(fn, rounds: int) -> tuple[float, float, object]:
    """(best wall seconds, best CPU seconds of this process, last result) of `rounds` calls
    after one untimed; on a busy machine CPU time is the steadier measure of the work."""
    fn()
    walls, cpus, out = [], [], None
    for _ in range(rounds):
        start, start_cpu = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - start_cpu)
    return min(walls), min(cpus), out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phrases", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    phrases = list(PHRASES[: args.phrases])

    from sam3_oracle import import_sam3, on_cpu

    builder = import_sam3()
    torch.manual_seed(0)
    with on_cpu():
        oracle = builder._create_text_encoder(str(VOCABULARY_PATH)).eval()
    with torch.no_grad():
        oracle.encoder.positional_embedding.normal_(std=0.01)
        oracle.encoder.text_projection.normal_(std=1024**-0.5)
    with torch.device("meta"):
        ours = TextEncoder()
    ours.load_state_dict(oracle.state_dict(), strict=True, assign=True)
    ours.eval()

    def run_oracle():
        with on_cpu(), torch.inference_mode():
            return oracle(phrases, None, device="cpu")[1]

    t_oracle, cpu_oracle, expected = best(run_oracle, args.rounds)
    scale = expected.abs().max().item()
    print(f"threads {torch.get_num_threads()}, {len(phrases)} phrase(s); wall and CPU time")
    print(f"oracle float32           {t_oracle * 1e3:7.1f} ms {cpu_oracle * 1e3:7.1f} ms CPU")

    def run_ours():
        ours.clear_cache()
        return ours.encode(phrases).backbone_out()["language_features"]

    for label, dtype, autocast in (
        ("ours exact float32", torch.float32, False),
        ("ours fast, fp32 weights", torch.float32, True),
        ("ours fast, bf16 weights", torch.bfloat16, True),
    ):
        ours.to(dtype)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            seconds, cpu, got = best(run_ours, args.rounds)
            start = time.perf_counter()
            ours.encode(phrases)
            cached = time.perf_counter() - start
        error = (got.float() - expected).abs().max().item() / scale
        print(
            f"{label:24s} {seconds * 1e3:7.1f} ms {cpu * 1e3:7.1f} ms CPU"
            f" ({t_oracle / seconds:4.2f}x wall, {cpu_oracle / cpu:4.2f}x CPU)"
            f"  cached {cached * 1e6:4.0f} us  max error {error:.1e} of scale"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
