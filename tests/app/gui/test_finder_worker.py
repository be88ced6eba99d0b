"""SAM 3's finder loads on the worker thread beside the tracker, and a bad file leaves the
finder (and the tracker) that worked in place."""

from __future__ import annotations

import threading

from fake_engine import fake_engine

from app.gui.worker.client import WorkerClient
from app.gui.worker.engine import Engine, random_finder_loader


def finder_engine(loaded: list) -> Engine:
    real = random_finder_loader()

    def load(path: str, device: str):
        if path.endswith("sam2.pt"):
            raise ValueError("sam2.pt: this is a SAM 2 checkpoint; finding by phrase needs SAM 3")
        finder = real(path, device)
        loaded.append((path, threading.get_ident(), finder))
        return finder

    base = fake_engine(sessions=[])
    return Engine(base.load_model, base.open_session, base.make_prompt, load_finder=load)


def test_finder_loads_on_the_worker_thread_and_a_bad_file_keeps_it(qtbot):
    loaded: list = []
    client = WorkerClient(finder_engine(loaded))
    try:
        with qtbot.waitSignal(client.finder_loaded, timeout=20000) as blocker:
            client.load_finder("sam3.pt", "cpu")
        info = blocker.args[0]
        assert info.checkpoint == "sam3.pt" and info.device == "cpu"
        assert info.parameters == sum(p.numel() for p in loaded[0][2].parameters()) > 1_000_000
        assert info.seconds >= 0
        assert loaded[0][1] != threading.get_ident()

        with qtbot.waitSignal(client.job_failed, timeout=5000) as failed:
            client.load_finder("sam2.pt", "cpu")
        error = failed.args[0]
        assert error.action == "loading the finder" and "SAM 2 checkpoint" in error.message
        assert "\n" not in error.message
        assert client._worker._finder is loaded[0][2]  # the working finder stays
    finally:
        client.shutdown()
