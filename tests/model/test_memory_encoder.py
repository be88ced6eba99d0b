import pytest
import torch
from oracle import build_reference
from tolerance import assert_parity

from model.sam2.config import MemoryEncoderConfig, get_config
from model.sam2.memory_encoder import MemoryEncoder

VARIANTS = ("sam2.1-tiny", "sam2-large")


@pytest.fixture(scope="module", params=VARIANTS)
def pair(request):
    """(reference memory encoder, ours with the same weights) for one variant."""
    ref = build_reference(request.param, image_size=256).memory_encoder
    ours = MemoryEncoder(cfg=get_config(request.param).memory_encoder).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    return ref, ours


def _inputs(batch: int, side: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    pix_feat = torch.randn(batch, 256, side, side, generator=gen)
    mask_logits = 8 * torch.randn(batch, 1, 16 * side, 16 * side, generator=gen)
    return pix_feat, mask_logits


def test_state_dict_keys_and_shapes_match_reference(pair):
    ref, ours = pair
    ref_sd, our_sd = ref.state_dict(), ours.state_dict()
    assert list(our_sd) == list(ref_sd)
    assert all(our_sd[k].shape == ref_sd[k].shape for k in ref_sd)


@pytest.mark.parametrize("skip_mask_sigmoid", [False, True])
@pytest.mark.parametrize("batch", [1, 3])
def test_matches_reference(pair, skip_mask_sigmoid, batch):
    ref, ours = pair
    pix_feat, masks = _inputs(batch, side=16, seed=batch)
    if skip_mask_sigmoid:
        # What the tracker feeds: a scaled, biased sigmoid of the mask logits.
        masks = torch.sigmoid(20 * (masks > 0).float() - 10)
    with torch.no_grad():
        expected = ref(pix_feat, masks, skip_mask_sigmoid=skip_mask_sigmoid)
        feats, pos = ours(pix_feat, masks, skip_mask_sigmoid=skip_mask_sigmoid)
    assert feats.shape == (batch, 64, 16, 16) and pos.shape == (batch, 64, 16, 16)
    assert_parity(feats, expected["vision_features"], name="features")
    assert_parity(pos, expected["vision_pos_enc"][0], name="pos")


def test_sigmoid_flag_changes_result(pair):
    _, ours = pair
    pix_feat, masks = _inputs(1, side=8)
    with torch.no_grad():
        with_sigmoid, _ = ours(pix_feat, masks)
        without, _ = ours(pix_feat, masks, skip_mask_sigmoid=True)
    assert (with_sigmoid - without).abs().max() > 1e-3


def test_bf16_autocast_close_to_fp32(pair):
    _, ours = pair
    pix_feat, masks = _inputs(2, side=16)
    with torch.no_grad():
        ref_feats, _ = ours(pix_feat, masks)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            feats, pos = ours(pix_feat, masks)
    assert feats.dtype == torch.bfloat16 and pos.dtype == torch.bfloat16
    assert torch.isfinite(feats).all() and torch.isfinite(pos).all()
    # bf16 keeps 8 mantissa bits; through 6 convs and 2 ConvNeXt blocks the error was
    # measured at 0.8% of the feature scale on CPU; 3% leaves room for other kernels.
    scale = ref_feats.abs().max().item()
    err = (feats.float() - ref_feats).abs().max().item()
    assert 0 < err <= 0.03 * scale


def test_default_config_builds_official_shapes():
    enc = MemoryEncoder(cfg=MemoryEncoderConfig())
    sd = enc.state_dict()
    assert sd["mask_downsampler.encoder.9.weight"].shape == (256, 64, 3, 3)
    assert sd["mask_downsampler.encoder.12.weight"].shape == (256, 256, 1, 1)
    assert sd["out_proj.weight"].shape == (64, 256, 1, 1)
    assert sd["fuser.layers.1.gamma"].shape == (256,)


@pytest.mark.parametrize(
    ("pix_shape", "mask_shape"),
    [
        ((1, 128, 4, 4), (1, 1, 64, 64)),  # wrong channel count
        ((1, 256, 4, 4), (1, 2, 64, 64)),  # two-channel mask
        ((2, 256, 4, 4), (1, 1, 64, 64)),  # batch mismatch
        ((1, 256, 4, 4), (1, 1, 60, 64)),  # mask not 16x the grid
        ((256, 4, 4), (1, 1, 64, 64)),  # missing batch axis
    ],
)
def test_rejects_bad_shapes(pix_shape, mask_shape):
    enc = MemoryEncoder(cfg=MemoryEncoderConfig())
    with pytest.raises(ValueError):
        enc(torch.zeros(pix_shape), torch.zeros(mask_shape))


def test_rejects_inconsistent_downsampler_config():
    with pytest.raises(ValueError, match="power"):
        MemoryEncoder(cfg=MemoryEncoderConfig(downsampler_stride=3))


@pytest.mark.parametrize("channels", [4, 256])
def test_layer_norm_2d_channels_last_equals_nchw(channels):
    from model.sam2.common import LayerNorm2d

    torch.manual_seed(channels)
    norm = LayerNorm2d(channels)
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    x = 3 * torch.randn(2, channels, 9, 7) + 1
    nchw = norm(x)
    channels_last = norm(x.contiguous(memory_format=torch.channels_last))
    assert channels_last.is_contiguous(memory_format=torch.channels_last)
    assert_parity(channels_last, nchw)
    # NCHW with autograd (out of place, differentiable) equals it without (in place).
    x.requires_grad_(True)
    with_grad = norm(x)
    with_grad.sum().backward()
    assert torch.equal(with_grad.detach(), nchw) and torch.isfinite(x.grad).all()


def test_mask_downsampler_goes_channels_last_from_64_channels(pair):
    """Norms over 4 and 16 channels run on NCHW planes, wider ones as one layer_norm."""
    from model.sam2.common import LayerNorm2d

    _, ours = pair
    layouts: list[tuple[int, bool]] = []
    handles = [
        m.register_forward_pre_hook(
            lambda _m, args: layouts.append(
                (args[0].shape[1], args[0].is_contiguous(memory_format=torch.channels_last))
            )
        )
        for m in ours.mask_downsampler.modules()
        if isinstance(m, LayerNorm2d)
    ]
    with torch.no_grad():
        out = ours.mask_downsampler(torch.rand(1, 1, 256, 256))
    for handle in handles:
        handle.remove()
    assert layouts == [(4, False), (16, False), (64, True), (256, True)]
    assert out.is_contiguous(memory_format=torch.channels_last)


def test_fuser_runs_channels_last_and_the_memory_is_contiguous(pair):
    """The layout is the speed-up (its blocks' linears read tokens in place); callers
    store the result, so it comes back in the usual NCHW order."""
    _, ours = pair
    layouts = []
    handle = ours.fuser.register_forward_pre_hook(
        lambda _m, args: layouts.append(args[0].is_contiguous(memory_format=torch.channels_last))
    )
    with torch.no_grad():
        feats, _ = ours(*_inputs(2, side=16))
    handle.remove()
    assert layouts == [True, True] and feats.is_contiguous()  # one object at a time on CPU


def test_objects_encoded_one_at_a_time_on_cpu_equal_the_batch(pair):
    """On CPU each object's memory is encoded alone (its activations stay in cache):
    the same memories as one batched pass."""
    _, ours = pair
    pix, masks = _inputs(3, side=16)
    with torch.no_grad():
        feats, pos = ours(pix, masks)
        batched = ours._fuse(ours.pix_feat_proj(pix), torch.sigmoid(masks))
    assert feats.shape == batched.shape and pos.shape == batched.shape
    assert_parity(feats, batched)


def test_one_frame_shared_by_objects_is_projected_once(pair):
    """The tracker passes one frame's features expanded over its objects: projected once,
    the memories those of the reference on the same batch."""
    ref, ours = pair
    pix, masks = _inputs(1, side=16)
    masks = torch.cat([masks, -masks, 2 * masks])
    shared = pix.expand(3, -1, -1, -1)
    batches: list[int] = []
    handle = ours.pix_feat_proj.register_forward_hook(
        lambda _m, args, _out: batches.append(args[0].shape[0])
    )
    with torch.no_grad():
        feats, _ = ours(shared, masks)
        expected = ref(shared.contiguous(), masks)["vision_features"]
    handle.remove()
    assert batches == [1]
    assert_parity(feats, expected)
