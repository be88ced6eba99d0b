"""The peers the speed benchmark compares with: the reference predictor and transformers.

Each is a run that yields once per propagated frame (the prompted frame excluded), each
frame's masks brought to the video's size on the CPU, so the benchmark can step it in
turn with ours (`bench_common.interleaved`) and time it like ours.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from bench_common import click

CLICKS = 10


def _quiet_reference() -> None:
    """The reference draws tqdm bars on every propagation and JPEG load: not in our tables."""
    import sam2.sam2_video_predictor
    import sam2.utils.misc

    for module in (sam2.sam2_video_predictor, sam2.utils.misc):
        module.tqdm = lambda items, *_args, **_kwargs: items


class RefRun:
    """The reference predictor with its defaults, prompted on frame 0 for `obj_ids`."""

    def __init__(self, ref, images: torch.Tensor, folder: str, obj_ids) -> None:
        _quiet_reference()
        self.ref = ref
        self.state = ref.init_state(folder)
        self.state["images"] = images  # our preprocessing, so both see the same pixels
        self.state["cached_features"] = {}
        for obj_id in obj_ids:
            ref.add_new_points_or_box(self.state, 0, obj_id, [list(click(obj_id))], [1])
        self.frames = ref.propagate_in_video(self.state)  # steps under its own inference_mode
        next(self.frames)  # the prompted frame

    def clicks(self, frame: int) -> list[float]:
        """Seconds of CLICKS correction clicks on object 1 of `frame`, tracked and encoded."""
        self.frames.close()
        ref, state = self.ref, self.state
        with torch.inference_mode():
            ref._get_image_feature(state, frame, 1)  # cached, as ours: the click alone is timed
            x, y = click(1)
            out = []
            for i in range(CLICKS):
                point = [[x + 4 * (i % 5) - 8, y + 3 * (i // 5) - 3]]
                label = (i + 1) % 2  # positive first, as ours
                start = time.perf_counter()
                ref.add_new_points_or_box(state, frame, 1, point, [label], clear_old_points=False)
                out.append(time.perf_counter() - start)
        return out


def hf_available() -> bool:
    try:
        from transformers import Sam2VideoModel  # noqa: F401
    except ImportError:
        return False
    return True


_HF_MODELS: dict[int, torch.nn.Module] = {}


def _hf_model(size: int):
    """transformers' Sam2VideoModel at random init from its default (tiny) config at `size`."""
    if size not in _HF_MODELS:
        from transformers import Sam2VideoConfig, Sam2VideoModel

        cfg = Sam2VideoConfig()
        # Its feature-map sizes are spelled out for 1024; scale them for smoke runs.
        cfg.image_size = size
        cfg.prompt_encoder_config.image_size = size
        cfg.vision_config.backbone_config.image_size = [size, size]
        cfg.vision_config.backbone_feature_sizes = [[size // s] * 2 for s in (4, 8, 16)]
        cfg.memory_attention_rope_feat_sizes = [size // 16] * 2
        torch.manual_seed(0)
        _HF_MODELS[size] = Sam2VideoModel(cfg).eval()
    return _HF_MODELS[size]


def hf_frames(images: torch.Tensor, obj_ids, video_size) -> Iterator[np.ndarray]:
    """transformers' propagation, its session built without a processor: one item a frame."""
    from transformers.models.sam2_video.modeling_sam2_video import Sam2VideoInferenceSession

    size = images.shape[-1]
    model = _hf_model(size)
    h, w = video_size
    with torch.inference_mode():
        session = Sam2VideoInferenceSession(
            video=images, video_height=h, video_width=w, dtype=torch.float32
        )
        for obj_id in obj_ids:
            x, y = click(obj_id)
            coords = torch.tensor([[[[x * size / w, y * size / h]]]])
            labels = torch.tensor([[[1]]], dtype=torch.int32)
            idx = session.obj_id_to_idx(obj_id)
            session.add_point_inputs(idx, 0, {"point_coords": coords, "point_labels": labels})
        session.obj_with_new_inputs = list(obj_ids)
        model(inference_session=session, frame_idx=0)
    for f in range(1, len(images)):
        # Inference mode per step, not across the yield: the other runs step in between.
        with torch.inference_mode():
            out = model(inference_session=session, frame_idx=f)
            masks = F.interpolate(out.pred_masks, size=(h, w), mode="bilinear") > 0
            yield np.asarray(masks.cpu().numpy())
