"""Golden fixture: the oracle's whole image detector with exemplar points and a phrase, at
`golden_find`'s reduced size, name-seeded weights and threshold 0.

Meta's `Sam3Processor` has no point method (`add_geometric_prompt` takes boxes only), but
its model takes points through the geometric prompt the processor keeps: they go in with
`Prompt.append_points` (normalised x, y, sequence first, labels 1 positive, 0 negative) and
`_forward_grounding` runs the model as `add_geometric_prompt` does after a box. Stored: the
frame, per query the score, box (frame pixels), mask and where the mask's probability is
within 1e-4 of the cut (`golden_find.OUTPUTS`), and the oracle's parameter names and shapes.
"""

from __future__ import annotations

import torch
from golden_find import FRAME_HW, QUERIES, VIT, build_oracle
from golden_vit import frame
from sam3_heads_support import oracle_params
from sam3_oracle import on_cpu

PHRASE = "a red bicycle"
# x, y in frame pixels, and whether each is a positive exemplar.
POINTS = ((20.0, 30.0), (60.0, 15.0))
POINT_LABELS = (True, False)


def run_oracle(model: torch.nn.Module, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
    from PIL import Image
    from sam3.model.sam3_image_processor import Sam3Processor

    h, w = pixels.shape[:2]
    with on_cpu(), torch.inference_mode(), torch._dynamo.config.patch(disable=True):
        processor = Sam3Processor(
            model, resolution=VIT.img_size, device="cpu", confidence_threshold=0.0
        )
        state = processor.set_image(Image.fromarray(pixels.numpy()))
        state = processor.set_text_prompt(PHRASE, state)
        points = torch.tensor(POINTS, dtype=torch.float32) / torch.tensor([w, h])
        labels = torch.tensor(POINT_LABELS).view(-1, 1)
        state["geometric_prompt"].append_points(points.view(-1, 1, 2), labels)
        state = processor._forward_grounding(state)
    assert state["scores"].shape == (QUERIES,), "a query scored 0"
    return {
        "points/scores": state["scores"].clone(),
        "points/boxes": state["boxes"].clone(),
        "points/masks": state["masks"][:, 0].clone(),
        "points/uncertain": (state["masks_logits"][:, 0] - 0.5).abs() < 1e-4,
    }


def make() -> dict[str, torch.Tensor]:
    model = build_oracle()
    pixels = frame(*FRAME_HW)
    return {"frame": pixels, **run_oracle(model, pixels), **oracle_params(model, "")}
