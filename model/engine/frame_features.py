"""Image features of a video's frames, encoded on demand and cached for how they are read.

Two access patterns read features, and the cache serves each:

- interactive use (a prompt, the app encoding frames around the user's position while
  idle) reads a few frames near the user, often again: those are kept, least recently
  used first out, within a window of frames (`FeatureCache`);
- a propagation reads each frame once, in order, and never again in that pass: it uses
  a cached frame when there is one but does not insert the frames it encodes, so a pass
  over a long video leaves the cache as it found it instead of filling it.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace

import torch

from model.engine.feature_cache import DEFAULT_WINDOW_FRAMES, FeatureCache
from model.engine.frames import FrameSource, check_frame, preprocess_frame
from model.sam2.model import ImageFeatures, Sam2Model


class FrameFeatures:
    """frame index -> the model's `ImageFeatures` of that frame of `source`."""

    def __init__(
        self,
        model: Sam2Model,
        source: FrameSource,
        *,
        device: torch.device,
        autocast: bool,
        max_bytes: int,
        max_frames: int = DEFAULT_WINDOW_FRAMES,
    ) -> None:
        self.model = model
        self.device = device
        self.autocast = autocast
        self._source = source
        self._cache = FeatureCache(max_bytes=max_bytes, max_frames=max_frames)
        self._video_size: tuple[int, int] | None = None
        self._shared_pos: torch.Tensor | None = None

    @property
    def video_size(self) -> tuple[int, int]:
        """(H, W) of the video, read from the first frame on first use."""
        if self._video_size is None:
            frame = check_frame(self._source[0], 0)
            self._video_size = (frame.shape[0], frame.shape[1])
        return self._video_size

    @property
    def cache(self) -> FeatureCache:
        return self._cache

    def __contains__(self, frame: int) -> bool:
        return frame in self._cache

    def get(self, frame: int, *, keep: bool = True) -> ImageFeatures:
        """The features of `frame`, encoded if not cached; cached afterwards only if `keep`."""
        cached = self._cache.get(frame)
        if cached is not None:
            return cached
        feats = self._encode(frame)
        if keep:
            self._cache.put(frame, feats)
        return feats

    def _encode(self, frame: int) -> ImageFeatures:
        image = check_frame(self._source[frame], frame)
        if self._video_size is None:
            self._video_size = (image.shape[0], image.shape[1])
        elif image.shape[:2] != self._video_size:
            raise ValueError(f"frame {frame} is {image.shape[:2]}, the video {self._video_size}")
        with self.autocast_context():
            feats = self.model.encode_image(
                preprocess_frame(image, self.model.image_size, self.device)
            )
        # The position encoding is the same on every frame: keep one copy.
        if self._shared_pos is None:
            self._shared_pos = feats.vision_pos
        return replace(feats, vision_pos=self._shared_pos)

    def set_autocast(self, autocast: bool) -> None:
        """Switch bf16 autocast; cached features of the other precision are dropped, since
        the model's float32 layers cannot read bf16 features (nor should fast mode reuse
        float32 ones: results would depend on what happened to be cached)."""
        if autocast != self.autocast:
            self.autocast = autocast
            self._cache.clear()
            self._shared_pos = None

    def autocast_context(self) -> contextlib.AbstractContextManager:
        if not self.autocast:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
