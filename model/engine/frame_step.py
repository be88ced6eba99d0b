"""Pieces of one propagation step: objects batched by memory layout, and cancelling mid-frame.

Cancelling: at image size 1024 on a CPU one frame takes seconds (the image encoder,
four memory-attention layers per object, the decoder, the memory encoder), so checking
`should_stop` only between frames leaves the user waiting that long. While a step runs,
`cancellable` checks it before every image-encoder block, every self- and cross-attention
of memory attention, the prompt encoder, the mask decoder and the memory encoder (forward
pre-hooks, removed afterwards) and raises `Cancelled`. The longest of those stages is one
object's cross-attention at 1024 (0.69 s for its attention product alone), so on CPU
memory attention runs one object per call (`condition_group`): a batch of several would
make one uninterruptible stage last several seconds, and batching saves no arithmetic
there (each object attends to its own memories) except layer 0's self-attention, which
sees only the frame and is computed once for all the calls. On GPUs, where batching keeps the device
busy, a group runs as one batch. The session stores a frame's results only after all its
object groups are done, so a cancelled frame leaves nothing behind and the next local
pass starts at it, exactly as if the stop had come between frames.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import torch

from model.sam2.model import ImageFeatures, Memory, Sam2Model

GroupItem = tuple[int, list[tuple[int, Memory]], list[tuple[int, torch.Tensor]]]


class Cancelled(Exception):
    """`should_stop` turned true while a frame was being computed."""


@contextlib.contextmanager
def cancellable(model: Sam2Model, should_stop: Callable[[], bool] | None) -> Iterator[None]:
    """Raise `Cancelled` at the next stage boundary of `model` once `should_stop()` is true."""
    if should_stop is None:
        yield
        return

    def check(_module: torch.nn.Module, _args: object) -> None:
        if should_stop():
            raise Cancelled

    stages = [
        *model.image_encoder.trunk.blocks,
        model.image_encoder.neck,
        # Each layer's attentions (layer 0's self-attention may run apart from its layer).
        *(
            m
            for layer in model.memory_attention.layers
            for m in (layer.self_attn, layer.cross_attn_image)
        ),
        model.sam_prompt_encoder,
        model.sam_mask_decoder,
        model.memory_encoder,
    ]
    handles = [stage.register_forward_pre_hook(check) for stage in stages]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def group_key(
    memories: Sequence[tuple[int, Memory]],
    pointers: Sequence[tuple[int, torch.Tensor]],
    max_pointers: int,
) -> tuple:
    """Objects with equal keys read memories laid out alike and can run as one batch."""
    return (tuple(p for p, _ in memories), tuple(d for d, _ in pointers), max_pointers)


def stack_group(
    items: Sequence[GroupItem],
) -> tuple[list[tuple[int, Memory]], list[tuple[int, torch.Tensor]]]:
    """The memories and pointers of objects with one `group_key`, concatenated on the batch."""
    first_mems, first_ptrs = items[0][1], items[0][2]
    memories = [
        (
            p,
            Memory(
                features=torch.cat([it[1][i][1].features for it in items]),
                obj_ptr=torch.cat([it[1][i][1].obj_ptr for it in items]),
            ),
        )
        for i, (p, _) in enumerate(first_mems)
    ]
    pointers = [
        (d, torch.cat([it[2][i][1] for it in items])) for i, (d, _) in enumerate(first_ptrs)
    ]
    return memories, pointers


def condition_group(
    model: Sam2Model,
    features: ImageFeatures,
    items: Sequence[GroupItem],
    max_pointers: int,
    *,
    per_call: int,
) -> torch.Tensor:
    """Memory attention's output (B, C, h, w) for a group, `per_call` objects at a time.

    Several calls share layer 0's self-attention, computed once: bit for bit what each
    call would compute, as it runs on the same single frame's tokens.
    """
    first_layer = model.shared_first_layer(features) if len(items) > per_call else None
    parts = []
    for start in range(0, len(items), per_call):
        chunk = items[start : start + per_call]
        memories, pointers = stack_group(chunk)
        parts.append(
            model.condition_on_memories(
                features.expand(len(chunk)),
                is_init_cond_frame=False,
                memories=memories,
                pointers=pointers,
                max_pointers=max_pointers,
                first_layer=first_layer,
            )
        )
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def objects_per_attention_call(device: torch.device, group_size: int) -> int:
    """One object per memory-attention call on CPU (cancel latency), all of them elsewhere."""
    return 1 if device.type == "cpu" else group_size
