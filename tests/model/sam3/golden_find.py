"""Golden fixture: the oracle's whole image detector through Meta's `Sam3Processor`
(`set_image`, `set_text_prompt`, `add_geometric_prompt`), at a reduced size with
name-seeded weights and a threshold of 0, so that every query comes back.

Sizes: the vision backbone of `golden_vit` (168 px, 4 blocks of width 64) with the
detector's width 256, the text encoder at width 64 with 2 layers, 2 fusion and 2 decoder
layers and 12 queries. Cases: a phrase alone ("text"); another phrase with a positive and
a negative exemplar box added after it ("exemplar"). Per case, every query's score, box
(x0, y0, x1, y1 in frame pixels) and mask at the frame's size (`masks`), and where the
mask's probability is within 1e-4 of the 0.5 cut (`uncertain`: rounding may flip those).
Also the oracle's parameter names and shapes (`param/<name>`).
"""

from __future__ import annotations

import torch
from golden_vit import VIT, frame, oracle_overrides
from sam3_heads_support import oracle_params
from sam3_oracle import import_sam3, on_cpu, seeded_state_dict, shrunk

from model.sam3.decoder import DecoderConfig
from model.sam3.finder import FinderConfig
from model.sam3.fusion_encoder import FusionEncoderConfig
from model.sam3.heads import HeadsConfig
from model.sam3.text_encoder import TextEncoderConfig
from model.sam3.tokenizer import VOCABULARY_PATH

LAYERS, QUERIES = 2, 12
TEXT = {"width": 64, "heads": 4, "layers": 2}
CONFIG = FinderConfig(
    vit=VIT,
    text=TextEncoderConfig(**TEXT),
    heads=HeadsConfig(
        fusion=FusionEncoderConfig(num_layers=LAYERS),
        decoder=DecoderConfig(num_layers=LAYERS, num_queries=QUERIES),
    ),
)
FRAME_HW = (60, 80)
CASES = ("text", "exemplar")
PHRASES = {"text": "a red bicycle", "exemplar": "yellow school bus"}
# x0, y0, x1, y1 in frame pixels, and whether each is a positive exemplar.
BOXES = ((8.0, 10.0, 40.0, 50.0), (45.0, 5.0, 75.0, 30.0))
LABELS = (True, False)
OUTPUTS = ("scores", "boxes", "masks", "uncertain")


def build_oracle() -> torch.nn.Module:
    """The oracle's `Sam3Image` at `CONFIG`'s sizes, name-seeded, in eval mode."""
    mb = import_sam3()
    overrides = oracle_overrides(VIT, CONFIG.neck.d_model)
    overrides.update(
        VETextEncoder=TEXT,
        TransformerDecoder={
            "resolution": VIT.img_size,
            "num_layers": LAYERS,
            "num_queries": QUERIES,
        },
        TransformerEncoderFusion={"num_layers": LAYERS},
    )
    with on_cpu(), shrunk(mb, **overrides):
        model = mb.build_sam3_image_model(
            bpe_path=str(VOCABULARY_PATH),
            device="cpu",
            load_from_HF=False,
            enable_segmentation=True,
            enable_inst_interactivity=False,
        )
    model.load_state_dict(seeded_state_dict(model.state_dict()), strict=True)
    return model.eval()


def _cxcywh(box: tuple[float, ...], h: int, w: int) -> list[float]:
    """What `add_geometric_prompt` takes: a box normalised cx, cy, w, h."""
    x0, y0, x1, y1 = box
    return [(x0 + x1) / 2 / w, (y0 + y1) / 2 / h, (x1 - x0) / w, (y1 - y0) / h]


def run_oracle(model: torch.nn.Module, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
    from PIL import Image
    from sam3.model.sam3_image_processor import Sam3Processor

    h, w = pixels.shape[:2]
    out: dict[str, torch.Tensor] = {}
    # torchvision's Python ROI align compiles itself on first use (tens of seconds); eager
    # gives the same values.
    with on_cpu(), torch.inference_mode(), torch._dynamo.config.patch(disable=True):
        processor = Sam3Processor(
            model, resolution=VIT.img_size, device="cpu", confidence_threshold=0.0
        )
        for case in CASES:
            state = processor.set_image(Image.fromarray(pixels.numpy()))
            state = processor.set_text_prompt(PHRASES[case], state)
            if case == "exemplar":
                for box, label in zip(BOXES, LABELS, strict=True):
                    state = processor.add_geometric_prompt(_cxcywh(box, h, w), label, state)
            probs = state["masks_logits"][:, 0]
            assert state["scores"].shape == (QUERIES,), "a query scored 0: raise the threshold"
            out[f"{case}/scores"] = state["scores"].clone()
            out[f"{case}/boxes"] = state["boxes"].clone()
            out[f"{case}/masks"] = state["masks"][:, 0].clone()
            out[f"{case}/uncertain"] = (probs - 0.5).abs() < 1e-4
    return out


def make() -> dict[str, torch.Tensor]:
    model = build_oracle()
    pixels = frame(*FRAME_HW)
    return {"frame": pixels, **run_oracle(model, pixels), **oracle_params(model, "")}
