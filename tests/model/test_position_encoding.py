import torch
from sam2.modeling.position_encoding import PositionEmbeddingRandom, PositionEmbeddingSine
from tolerance import assert_parity

from model.sam2.position_encoding import RandomFourierEncoding, SinePositionEncoding


def test_sine_matches_reference():
    ref = PositionEmbeddingSine(num_pos_feats=256, normalize=True, temperature=10000)
    ours = SinePositionEncoding(num_pos_feats=256)
    x = torch.zeros(2, 3, 17, 23)
    assert_parity(ours(x), ref(x))


def test_random_fourier_matches_reference():
    torch.manual_seed(0)
    ref = PositionEmbeddingRandom(num_pos_feats=128)
    ours = RandomFourierEncoding(num_pos_feats=128)
    ours.load_state_dict(ref.state_dict(), strict=True)
    assert_parity(ours((16, 12)), ref((16, 12)))
    pts = torch.rand(2, 5, 2) * 300
    assert_parity(
        ours.forward_with_coords(pts, (256, 320)), ref.forward_with_coords(pts, (256, 320))
    )


def test_random_fourier_grid_is_kept_until_its_matrix_changes():
    torch.manual_seed(0)
    ref = PositionEmbeddingRandom(num_pos_feats=16)
    ours = RandomFourierEncoding(num_pos_feats=16)
    first = ours((8, 8))
    assert ours((8, 8)) is first  # asked on every decoder call: computed once
    with torch.inference_mode():
        assert ours((8, 8)) is first and not first.is_inference()
    assert ours((4, 6)).shape == (32, 4, 6)
    ours.load_state_dict(ref.state_dict(), strict=True)  # new frequencies, in place
    assert_parity(ours((8, 8)), ref((8, 8)))
    ours.double()  # a new tensor for the matrix
    assert ours((8, 8)).dtype == torch.float32 and torch.equal(
        ours((8, 8)), RandomFourierEncoding._dense_grid(ours, (8, 8))
    )
