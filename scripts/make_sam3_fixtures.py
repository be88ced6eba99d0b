"""Write the SAM 3 golden fixtures that CI compares our finder's parts against.

    /path/to/python-with-sam3 scripts/make_sam3_fixtures.py [PART ...]

Meta's `sam3==0.1.4` is a test-only oracle that CI does not install (its dependencies pull a
CUDA-built torchvision). Each module `tests/model/sam3/golden_<part>.py` defines
`make() -> dict[str, torch.Tensor]`: it builds the oracle at a reduced size with name-seeded
weights (`tests.sam3_oracle.seeded_state_dict`), runs it on fixed inputs and returns inputs and
outputs. This script saves each as `tests/model/sam3/fixtures/<part>.pt`, loadable with
`weights_only=True`. Weights are not stored: the tests rebuild them from the same names.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# As under pytest: test helpers (`sam3_oracle`, `tolerance`) import by their bare names.
sys.path.insert(0, str(ROOT / "tests"))
HERE = ROOT / "tests" / "model" / "sam3"
# As pytest puts a test's folder first: golden modules may import their siblings by name.
sys.path.insert(0, str(HERE))
MAX_BYTES = 512 << 10


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", help="parts to write (default: every golden_*.py)")
    args = parser.parse_args()
    parts = args.parts or sorted(p.stem.removeprefix("golden_") for p in HERE.glob("golden_*.py"))
    (HERE / "fixtures").mkdir(exist_ok=True)
    for part in parts:
        module = importlib.import_module(f"tests.model.sam3.golden_{part}")
        torch.manual_seed(0)
        tensors = module.make()
        out = HERE / "fixtures" / f"{part}.pt"
        torch.save(tensors, out)
        size = out.stat().st_size
        if size > MAX_BYTES:
            print(f"{out}: {size} bytes, over the {MAX_BYTES} a fixture may take", file=sys.stderr)
            return 1
        print(f"{out}: {len(tensors)} tensors, {size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
