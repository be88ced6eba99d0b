"""The finder's sizes read off its weights: the released shapes give `FinderConfig()`, a small
finder's file loads without its config, in this process and in a fresh one; shapes that give
no valid sizes are refused in one line."""

from __future__ import annotations

import resource

import pytest
import torch
from golden_find import CONFIG as GOLDEN_CONFIG
from hostile import run_python

from model.sam3.checkpoint import CheckpointError, finder_from_state_dict, load_finder
from model.sam3.config_from_weights import infer_config
from model.sam3.finder import FinderConfig, Sam3Finder, small_finder_config


def meta_state(cfg: FinderConfig) -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        return Sam3Finder(cfg=cfg).state_dict()


def test_the_released_shapes_give_the_released_config():
    assert infer_config(meta_state(FinderConfig())) == FinderConfig()


def test_the_small_config_round_trips():
    assert infer_config(meta_state(small_finder_config())) == small_finder_config()


def test_other_sizes_round_trip_except_head_counts_the_weights_do_not_show():
    """The golden config's text heads are 16 wide: the shapes are read exactly, the heads
    follow the released head width (documented), everything else is the golden config's."""
    inferred = infer_config(meta_state(GOLDEN_CONFIG))
    assert inferred.vit == GOLDEN_CONFIG.vit
    assert inferred.heads == GOLDEN_CONFIG.heads
    assert inferred.text.width == GOLDEN_CONFIG.text.width
    assert inferred.text.layers == GOLDEN_CONFIG.text.layers
    assert inferred.text.heads == 1  # 64 wide / 64, not the golden 4


def small_file(tmp_path, wrap: bool):
    torch.manual_seed(3)
    finder = Sam3Finder(cfg=small_finder_config())
    detector = {f"detector.{k}": v for k, v in finder.state_dict().items()}
    path = tmp_path / "small.pt"
    torch.save({"model": detector} if wrap else detector, path)
    return finder, path


def test_a_small_finder_file_loads_with_its_sizes_and_finds_the_same(tmp_path):
    for wrap in (True, False):
        finder, path = small_file(tmp_path, wrap)
        loaded = load_finder(path)
        assert loaded.finder_cfg == small_finder_config()
        frame = torch.randint(0, 255, (40, 56, 3), dtype=torch.uint8)
        a = finder.eval().find(frame.numpy(), "dog", threshold=0.0)
        b = loaded.find(frame.numpy(), "dog", threshold=0.0)
        torch.testing.assert_close(a.scores, b.scores, rtol=0, atol=0)


def test_a_small_finder_file_loads_in_a_fresh_process(tmp_path):
    _, path = small_file(tmp_path, wrap=True)
    code = (
        "from model.sam3.checkpoint import load_finder; "
        f"vit = load_finder({str(path)!r}).finder_cfg.vit; print(vit.embed_dim, vit.img_size)"
    )
    outcome = run_python(code)
    assert outcome.returncode == 0, outcome.stderr[-2000:]
    assert outcome.stdout.split() == ["128", "168"]


@pytest.mark.parametrize(
    ("state", "says"),
    [
        ({"transformer.decoder.layers.99999999.norm1.weight": torch.zeros(1)}, "over the limit"),
        ({"backbone.vision_backbone.trunk.blocks.5000.norm1.weight": torch.zeros(1)}, "256"),
        ({"backbone.vision_backbone.trunk.patch_embed.proj.weight": torch.zeros(0, 3, 14, 14)}, ""),
        (
            {
                "backbone.vision_backbone.trunk.blocks.0.attn.freqs_cis": torch.zeros(
                    7, 3, dtype=torch.complex64
                )
            },
            "",
        ),
    ],
    ids=["a hundred million decoder layers", "5001 ViT blocks", "zero width", "odd RoPE table"],
)
def test_shapes_that_give_no_valid_sizes_are_one_line_and_build_nothing(state, says):
    """A hostile file's shapes must not build a hundred million modules (tens of GB even on
    the meta device) nor escape as a bare ZeroDivisionError or ValueError from a constructor."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(CheckpointError, match="does not fit the SAM 3 finder") as err:
        finder_from_state_dict({f"detector.{k}": v for k, v in state.items()})
    message = str(err.value)
    assert says in message and "\n" not in message
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 1_000_000  # under 1 GB (Linux reports KiB)
