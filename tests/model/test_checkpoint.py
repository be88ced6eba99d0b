"""Checkpoint loading: variant detection, strict keys, clear errors, round trip."""

import collections
import os
import pickle

import pytest
import torch
from oracle import REFERENCE_CONFIGS, build_reference

from model.sam2.build import build_model
from model.sam2.checkpoint import (
    CheckpointError,
    check_weights,
    compare_keys,
    detect_variant,
    load_model,
    read_state_dict,
    save_checkpoint,
)
from model.sam2.config import VARIANTS, get_config

# Official value counts (parameters + buffers) of the released SAM 2.1 files.
OFFICIAL_COUNTS = {
    "sam2.1-tiny": 38_962_754,
    "sam2.1-small": 46_060_610,
    "sam2.1-base-plus": 80_850_434,
    "sam2.1-large": 224_446_898,
}


def _meta_state_dict(name: str) -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        return build_model(get_config(name)).state_dict()


@pytest.mark.parametrize("name", list(VARIANTS))
def test_variant_detected_from_keys_and_shapes(name):
    assert detect_variant(_meta_state_dict(name)).name == name


@pytest.mark.parametrize("name", list(VARIANTS))
def test_state_dict_matches_reference_keys_and_shapes(name):
    from sam2.build_sam import build_sam2

    ref = build_sam2(REFERENCE_CONFIGS[name], device="cpu").state_dict()
    mismatch = compare_keys(ref, _meta_state_dict(name))
    assert not mismatch, mismatch.describe()


@pytest.mark.parametrize("name", list(OFFICIAL_COUNTS))
def test_value_count_matches_official(name):
    assert sum(t.numel() for t in _meta_state_dict(name).values()) == OFFICIAL_COUNTS[name]


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model(get_config("sam2.1-tiny"))
    path = tmp_path_factory.mktemp("ckpt") / "sam2.1_hiera_tiny.pt"
    save_checkpoint(model, path)
    return path, model.state_dict()


def test_load_model_round_trip(tiny_file):
    path, state = tiny_file
    model = load_model(path, image_size=256)
    assert model.cfg.name == "sam2.1-tiny" and model.cfg.image_size == 256
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, state[key], atol=0, rtol=0)


def test_saved_file_loads_strictly_into_reference(tiny_file):
    path, state = tiny_file
    ref = build_reference("sam2.1-tiny", image_size=1024, fresh=True)
    missing, unexpected = ref.load_state_dict(torch.load(path, weights_only=True)["model"])
    assert not missing and not unexpected
    key = "image_encoder.trunk.pos_embed"
    torch.testing.assert_close(ref.state_dict()[key], state[key], atol=0, rtol=0)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_model(tmp_path / "nope.pt")


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("hello, not weights\n")
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        load_model(path)


def test_truncated_file(tiny_file, tmp_path):
    path, _ = tiny_file
    cut = tmp_path / "cut.pt"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="damaged or truncated"):
        load_model(cut)


class _Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickled_code_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"model": {"w": torch.zeros(1)}, "extra": _Payload()}, path)
    with pytest.raises(CheckpointError, match="pickled code"):
        load_model(path)
    assert "must never run" not in capsys.readouterr().out


def test_plain_pickle_is_refused(tmp_path):
    path = tmp_path / "plain.pt"
    path.write_bytes(pickle.dumps({"model": collections.OrderedDict(w=1)}))
    with pytest.raises(CheckpointError):
        load_model(path)


def test_sam1_checkpoint_named(tmp_path):
    path = tmp_path / "sam_vit_b.pth"
    torch.save(
        {
            "image_encoder.blocks.0.attn.qkv.weight": torch.zeros(3, 1),
            "mask_decoder.x": torch.zeros(1),
        },
        path,
    )
    with pytest.raises(CheckpointError, match="SAM 1"):
        load_model(path)


def test_unrelated_checkpoint(tmp_path):
    path = tmp_path / "resnet.pt"
    torch.save({"model": {"conv1.weight": torch.zeros(2, 3, 7, 7)}}, path)
    with pytest.raises(CheckpointError, match="not a SAM 2 checkpoint.*conv1.weight"):
        load_model(path)


def test_missing_and_misshaped_keys_are_named(tiny_file, tmp_path):
    _, state = tiny_file
    broken = dict(state)
    del broken["no_mem_embed"]
    broken["obj_ptr_proj.layers.0.bias"] = torch.zeros(7)
    broken["extra.weight"] = torch.zeros(1)
    path = tmp_path / "broken.pt"
    torch.save({"model": broken}, path)
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    message = str(info.value)
    assert "\n" not in message
    assert "1 missing (no_mem_embed)" in message
    assert "1 unexpected (extra.weight)" in message
    assert "obj_ptr_proj.layers.0.bias (7,) vs (256,)" in message


def test_read_state_dict_accepts_bare_state_dict(tmp_path):
    path = tmp_path / "bare.pt"
    torch.save({"a": torch.ones(2)}, path)
    assert list(read_state_dict(path)) == ["a"]


def test_folder_and_non_regular_paths_say_what_they_are(tmp_path):
    with pytest.raises(CheckpointError, match=r"checkpoint .* is a folder, not a file"):
        load_model(tmp_path)
    fifo = tmp_path / "pipe.pt"
    os.mkfifo(fifo)  # torch.load would block on it forever
    with pytest.raises(CheckpointError, match=r"pipe.pt is not a regular file"):
        load_model(fifo)
    device = tmp_path / "zero.pt"
    device.symlink_to("/dev/zero")  # judged by what the link leads to
    with pytest.raises(CheckpointError, match=r"zero.pt is not a regular file"):
        read_state_dict(device)


@pytest.mark.parametrize(("bad", "word"), [(float("nan"), "NaN"), (float("-inf"), "infinite")])
def test_non_finite_weights_name_the_first_bad_tensor(tmp_path, bad, word):
    state = {"a.weight": torch.ones(3), "b.weight": torch.ones(2, 2), "c.weight": torch.ones(1)}
    state["b.weight"][1, 0] = bad
    state["c.weight"][0] = bad
    path = tmp_path / "damaged.pt"
    torch.save({"model": state}, path)
    with pytest.raises(CheckpointError, match=rf"damaged.pt: tensor b.weight holds {word}"):
        load_model(path)


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.complex64, torch.float8_e4m3fn])
def test_non_float_weights_are_refused(tmp_path, dtype):
    path = tmp_path / "odd.pt"
    torch.save(
        {"model": {"a.weight": torch.ones(2), "b.weight": torch.zeros(2, dtype=dtype)}}, path
    )
    name = str(dtype).removeprefix("torch.")
    with pytest.raises(CheckpointError, match=rf"odd.pt: tensor b.weight holds {name} values"):
        load_model(path)


def test_weights_are_checked_one_tensor_at_a_time(monkeypatch):
    """No check ever sees more than one tensor, so memory never holds a second copy."""
    seen = []
    real = torch.isfinite

    def spy(tensor):
        seen.append(tensor.numel())
        return real(tensor)

    monkeypatch.setattr(torch, "isfinite", spy)
    state = {f"t{i}": torch.ones(i + 1) for i in range(4)}
    check_weights(state)
    assert seen == [1, 2, 3, 4]
