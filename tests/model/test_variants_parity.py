"""Every component of every official variant against the reference, at image size 256.

The component test files go deep on one or two variants; this one loads each of the
eight reference models' full state dict into our assembled model (strictly) and checks
that prompt encoding, mask decoding, memory encoding and memory attention agree, so a
variant-specific difference anywhere in the network cannot slip through.
"""

import pytest
import torch
from oracle import build_reference
from tolerance import assert_parity

from model.sam2.build import build_model
from model.sam2.config import VARIANTS, get_config

SIZE = 256
GRID = SIZE // 16


@pytest.fixture(scope="module", params=list(VARIANTS))
def pair(request):
    ref = build_reference(request.param, image_size=SIZE)
    ours = build_model(get_config(request.param, image_size=SIZE)).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    return ours, ref


def _close(actual, expected):
    assert_parity(actual, expected)


@torch.no_grad()
def test_prompt_encoder_and_decoder(pair):
    ours, ref = pair
    gen = torch.Generator().manual_seed(1)
    points = (torch.rand(2, 3, 2, generator=gen) * SIZE, torch.tensor([[1, 0, 1], [1, 1, 0]]))
    boxes = torch.tensor([[10.0, 20.0, 120.0, 200.0], [50.0, 40.0, 90.0, 250.0]])
    sparse_ref, dense_ref = ref.sam_prompt_encoder(points=points, boxes=boxes, masks=None)
    sparse, dense = ours.sam_prompt_encoder(points=points, boxes=boxes, masks=None)
    _close(sparse, sparse_ref)
    _close(dense, dense_ref)

    image = torch.randn(1, 256, GRID, GRID, generator=gen)
    high_res = [
        torch.randn(1, 32, 4 * GRID, 4 * GRID, generator=gen),
        torch.randn(1, 64, 2 * GRID, 2 * GRID, generator=gen),
    ]
    for multimask in (True, False):
        kwargs = dict(
            image_embeddings=image,
            image_pe=ref.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse_ref,
            dense_prompt_embeddings=dense_ref,
            multimask_output=multimask,
            repeat_image=True,
            high_res_features=high_res,
        )
        for got, want in zip(
            ours.sam_mask_decoder(**kwargs), ref.sam_mask_decoder(**kwargs), strict=True
        ):
            _close(got, want)


@torch.no_grad()
def test_memory_encoder_and_attention(pair):
    ours, ref = pair
    gen = torch.Generator().manual_seed(2)
    pix_feat = torch.randn(2, 256, GRID, GRID, generator=gen)
    masks = torch.randn(2, 1, SIZE, SIZE, generator=gen) * 5
    features, pos = ours.memory_encoder(pix_feat, masks)
    want = ref.memory_encoder(pix_feat, masks)
    _close(features, want["vision_features"])
    _close(pos, want["vision_pos_enc"][0])

    hw, frames, pointers = GRID * GRID, 3, 8
    curr = torch.randn(hw, 2, 256, generator=gen)
    curr_pos = torch.randn(hw, 2, 256, generator=gen)
    memory = torch.randn(frames * hw + pointers, 2, 64, generator=gen)
    memory_pos = torch.randn(frames * hw + pointers, 2, 64, generator=gen)
    got = ours.memory_attention(
        curr=curr,
        curr_pos=curr_pos,
        memory=memory,
        memory_pos=memory_pos,
        num_obj_ptr_tokens=pointers,
    )
    expected = ref.memory_attention(
        curr=[curr],
        curr_pos=[curr_pos],
        memory=memory,
        memory_pos=memory_pos,
        num_obj_ptr_tokens=pointers,
    )
    _close(got, expected)
