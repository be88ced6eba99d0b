import torch
from sam2.modeling.position_encoding import PositionEmbeddingRandom, PositionEmbeddingSine
from tolerance import assert_parity

from model.position_encoding import RandomFourierEncoding, SinePositionEncoding


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
