"""A session's precision: chosen at open, switchable between requests, state kept consistent."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from moving_box import MovingBoxVideo, tiny_model

from model.engine.session import Prompt, TrackingSession


def Video() -> MovingBoxVideo:  # noqa: N802 - stands for the class the tests used
    return MovingBoxVideo(4)


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def _click() -> Prompt:
    return Prompt(points=np.array([[15.0, 20.0]]), labels=np.array([1]))


def test_default_is_exact_and_fast_computes_in_bf16(model) -> None:
    assert TrackingSession(model, Video(), device="cpu").precision == "exact"
    session = TrackingSession(model, Video(), device="cpu", precision="fast")
    assert session.precision == "fast" and session.autocast
    session.encode_frame(0)
    assert session._frames.get(0).high_res[0].dtype == torch.bfloat16


def test_older_autocast_switch_still_means_fast(model) -> None:
    session = TrackingSession(model, Video(), device="cpu", autocast=True, precision="exact")
    assert session.precision == "fast"


def test_unknown_precision_is_refused(model) -> None:
    with pytest.raises(ValueError, match="unknown precision"):
        TrackingSession(model, Video(), device="cpu", precision="double")


def test_switching_drops_cached_features_and_keeps_tracking(model) -> None:
    session = TrackingSession(model, Video(), device="cpu", precision="exact")
    session.add_prompt(0, 1, _click())
    first = [r.frame for r in session.propagate()]
    assert session.is_encoded(0)
    reason = session.set_precision("fast")
    assert session.precision == "fast" and "bf16" in reason
    # float32 features cached before the switch must not feed the bf16 model, nor back.
    assert not session.is_encoded(0)
    session.add_prompt(2, 1, _click(), clear_old=False)
    assert session._frames.get(2).high_res[0].dtype == torch.bfloat16
    session.set_precision("exact")
    # A full pass reads memories written in both precisions.
    results = list(session.propagate(mode="full"))
    assert [r.frame for r in results] == first
    assert all(np.isfinite(r.objects[1].score) for r in results)
    assert session._frames.get(1).high_res[0].dtype == torch.float32
