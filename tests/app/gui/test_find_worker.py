"""The worker's Find: SAM 3's finder on the worker thread, its proposals cropped and capped,
the precision the user chose, Esc stopping it, and one line when no finder is loaded."""

from __future__ import annotations

import threading
import time

import numpy as np
from fake_engine import fake_engine

from app.gui.worker.client import WorkerClient
from app.gui.worker.engine import Engine, random_finder_loader
from app.gui.worker.finding import FIND_FLOOR, MAX_PROPOSALS, NO_FINDER
from app.gui.worker.jobs import Activity

FRAMES = [np.full((90, 120, 3), 40 * i, np.uint8) for i in range(4)]


class RecordingFinder:
    """Wraps a real small finder: records each call's thread and precision."""

    def __init__(self, finder) -> None:
        self.inner, self.calls = finder, []

    def parameters(self):
        return self.inner.parameters()

    def find(self, frame, phrase=None, boxes=None, box_labels=None, threshold=0.5, **kw):
        self.calls.append((threading.get_ident(), kw["precision"], threshold, frame.shape))
        return self.inner.find(frame, phrase, boxes, box_labels, threshold, **kw)


class SlowFinder(RecordingFinder):
    """A finder that runs until cancelled, polling `cancel` as SAM 3's does."""

    def find(self, frame, phrase=None, boxes=None, box_labels=None, threshold=0.5, *, cancel, **kw):
        self.calls.append((threading.get_ident(), kw["precision"], threshold, frame.shape))
        deadline = time.monotonic() + 20
        while not cancel.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        raise RuntimeError("FindCancelled: stopped")


def engine_with(finder_factory) -> Engine:
    base = fake_engine(sessions=[])
    return Engine(base.load_model, base.open_session, base.make_prompt, load_finder=finder_factory)


def open_client(qtbot, finder_factory) -> WorkerClient:
    client = WorkerClient(engine_with(finder_factory))
    client.open_video(lambda: FRAMES)
    return client


def test_find_runs_on_the_worker_thread_with_capped_cropped_proposals(qtbot):
    made: list[RecordingFinder] = []
    real = random_finder_loader()
    client = open_client(qtbot, lambda p, d: made.append(RecordingFinder(real(p, d))) or made[-1])
    activities: list[Activity] = []
    client.activity_changed.connect(activities.append)
    try:
        with qtbot.waitSignal(client.find_ready, timeout=10000) as no_finder:
            client.find(1, "bicycle")
        assert no_finder.args[0].error == NO_FINDER and len(no_finder.args[0].scores) == 0

        with qtbot.waitSignal(client.finder_loaded, timeout=20000):
            client.load_finder("sam3.pt", "cpu")
        client.set_precision("exact")
        with qtbot.waitSignal(client.find_ready, timeout=20000) as found:
            request_id = client.find(2, "bicycle")
        result = found.args[0]
        assert result.request_id == request_id and result.frame == 2 and not result.error
        thread, precision, threshold, shape = made[0].calls[-1]
        assert thread != threading.get_ident() and precision == "exact"
        assert threshold == FIND_FLOOR and shape == (90, 120, 3)
        k = len(result.scores)
        assert 0 < k <= MAX_PROPOSALS and (result.scores > FIND_FLOOR).all()
        assert (np.diff(result.scores) <= 0).all() and result.proposal_boxes.shape == (k, 4)
        for mask in result.masks:  # cropped to its set pixels, inside the frame
            h, w = mask.crop.shape
            assert mask.x0 + w <= 120 and mask.y0 + h <= 90
            assert h == 0 or (mask.crop[0].any() and mask.crop[:, 0].any())
            assert mask.full((90, 120)).sum() == mask.crop.sum()
        assert any(a.action == "finding 'bicycle'" and a.frame == 2 for a in activities)

        client.set_precision("fast")
        with qtbot.waitSignal(client.find_ready, timeout=20000):
            client.find(2, "person", np.array([[10, 10, 50, 60]], np.float32), np.array([True]))
        assert made[0].calls[-1][1] == "fast"

        # Another video's frame 2 is found on afresh, not from the first one's cached features.
        client.open_video(lambda: [255 - f for f in FRAMES])
        client.set_precision("exact")
        with qtbot.waitSignal(client.find_ready, timeout=20000) as other:
            client.find(2, "bicycle")
        assert not np.array_equal(other.args[0].scores, result.scores)
    finally:
        client.shutdown()


def test_escape_cancels_a_running_find_within_a_second(qtbot):
    slow: list[SlowFinder] = []
    real = random_finder_loader()
    client = open_client(qtbot, lambda p, d: slow.append(SlowFinder(real(p, d))) or slow[-1])
    try:
        with qtbot.waitSignal(client.finder_loaded, timeout=20000):
            client.load_finder("sam3.pt", "cpu")
        with qtbot.waitSignal(client.activity_changed, timeout=5000):
            client.find(0, "dog")
        qtbot.waitUntil(lambda: bool(slow[0].calls), timeout=5000)
        start = time.monotonic()
        with qtbot.waitSignal(client.find_ready, timeout=1000) as blocker:
            client.cancel_find()
        assert blocker.args[0].cancelled and time.monotonic() - start < 1.0
        assert not client.is_busy or qtbot.waitUntil(lambda: not client.is_busy) is None
    finally:
        client.shutdown()


def test_fast_holds_the_weights_in_bf16_and_exact_afterwards_reloads_them(qtbot):
    import torch

    loads: list = []
    real = random_finder_loader()
    client = open_client(qtbot, lambda p, d: loads.append(real(p, d)) or loads[-1])
    try:
        with qtbot.waitSignal(client.finder_loaded, timeout=20000):
            client.load_finder("sam3.pt", "cpu")
        client.set_precision("exact")
        with qtbot.waitSignal(client.find_ready, timeout=20000) as exact:
            client.find(1, "bicycle")
        assert loads[0].held_dtype == torch.float32 and len(exact.args[0].scores) > 0

        client.set_precision("fast")
        with qtbot.waitSignal(client.find_ready, timeout=20000) as fast:
            client.find(1, "bicycle")
        assert not fast.args[0].error and len(loads) == 1
        assert loads[0].held_dtype == torch.bfloat16
        big = loads[0].backbone.vision_backbone.trunk.blocks[0].mlp.fc1.weight
        assert big.dtype == torch.bfloat16  # half the memory, as the benchmark's fast mode

        client.set_precision("exact")  # bf16 weights cannot be float32 again: reloaded
        with qtbot.waitSignal(client.find_ready, timeout=20000) as again:
            client.find(1, "bicycle")
        assert len(loads) == 2 and loads[1].held_dtype == torch.float32
        np.testing.assert_array_equal(again.args[0].scores, exact.args[0].scores)
    finally:
        client.shutdown()
