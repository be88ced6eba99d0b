"""Model > Choose Model's finder slot: Hugging Face access text, token found or not, download
with the user's token (never stored), a local file; the window loads the chosen finder in the
worker, says so, remembers it only once loaded, and keeps the previous one on a bad file."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from conftest import make_window, when_modal
from fake_engine import fake_engine
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QFileDialog

from app.gui.dialogs.model_dialog import ModelDialog
from app.gui.settings import AppSettings
from app.gui.worker.engine import Engine

sys.path.insert(0, str(Path(__file__).parents[1]))
from test_finder_store import PAYLOAD, TOKEN, HubServer  # noqa: E402


class FakeFinder:
    """Enough of a finder for loading: its parameters are counted."""

    def __init__(self, path: str, device: str = "cpu") -> None:
        self.path, self.device = path, device

    def parameters(self):
        return [torch.zeros(1000, 1000)]


def finder_engine(loads: list[str], devices: list[str] | None = None) -> Engine:
    def load(path: str, device: str):
        loads.append(path)
        if devices is not None:
            devices.append(device)
        if "sam2" in Path(path).name:
            raise ValueError(f"{Path(path).name}: this is a SAM 2 checkpoint; finding needs SAM 3")
        return FakeFinder(path, device)

    base = fake_engine()
    return Engine(base.load_model, base.open_session, base.make_prompt, load_finder=load)


@pytest.fixture(autouse=True)
def hf_home(monkeypatch, tmp_path):
    home = tmp_path / "hf-home"
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_TOKEN_PATH", raising=False)
    monkeypatch.setenv("HF_HOME", str(home))
    return home


@pytest.fixture
def finder_window(qtbot, settings, recovery_root):
    loads: list[str] = []
    window = make_window(qtbot, settings, recovery_root, engine=finder_engine(loads))
    window.loads = loads
    yield window
    window.close()


def test_without_a_token_the_slot_says_how_to_get_access(qtbot, tmp_path):
    server = HubServer()
    dialog = ModelDialog(dest_dir=tmp_path / "cache", finder_base_url=server.url)
    qtbot.addWidget(dialog)
    try:
        slot = dialog.finder
        assert "huggingface.co/facebook/sam3" in slot.access_label.text()
        assert "hf auth login" in slot.access_label.text()
        assert slot.token_label.text().startswith("Hugging Face token: none found")
        qtbot.mouseClick(slot.download_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: slot.error_label.text() != "", timeout=5000)
    finally:
        dialog.close()
        server.close()
    assert slot.error_label.text().startswith("no Hugging Face token found")
    assert server.requests == [] and dialog.choice() is None


def test_download_with_the_saved_token_chooses_the_finder(qtbot, tmp_path, hf_home, settings):
    hf_home.mkdir()
    (hf_home / "token").write_text(TOKEN)
    server = HubServer()
    cache = tmp_path / "cache"
    dialog = ModelDialog(dest_dir=cache, finder_base_url=server.url)
    qtbot.addWidget(dialog)
    try:
        assert dialog.finder.token_label.text() == f"Hugging Face token: found ({hf_home}/token)."
        assert TOKEN not in dialog.finder.token_label.text()
        with qtbot.waitSignal(dialog.accepted, timeout=10000):
            qtbot.mouseClick(dialog.finder.download_button, Qt.MouseButton.LeftButton)
    finally:
        server.close()
    choice = dialog.choice()
    assert choice is not None and choice.slot == "finder"
    assert Path(choice.checkpoint).read_bytes() == PAYLOAD
    assert server.requests[0]["auth"] == f"Bearer {TOKEN}"
    settings.sync()
    for file in [*cache.rglob("*"), Path(settings.store.fileName())]:
        assert TOKEN.encode() not in file.read_bytes()


def test_a_refused_token_is_one_line_in_the_slot(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    server = HubServer(status=403)
    dialog = ModelDialog(dest_dir=tmp_path, finder_base_url=server.url)
    qtbot.addWidget(dialog)
    try:
        assert dialog.finder.token_label.text().endswith("(the HF_TOKEN variable).")
        with qtbot.waitSignal(dialog.finder.download_failed, timeout=10000):
            qtbot.mouseClick(dialog.finder.download_button, Qt.MouseButton.LeftButton)
    finally:
        dialog.close()
        server.close()
    text = dialog.finder.error_label.text()
    assert text.startswith("your token has no access to facebook/sam3") and "\n" not in text
    assert TOKEN not in text


def test_a_chosen_finder_loads_and_is_remembered_only_once_loaded(
    qtbot, finder_window, settings, tmp_path, monkeypatch
):
    window = finder_window
    good = tmp_path / "sam3.pt"
    good.write_bytes(b"x")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(good), ""))
    messages: list[str] = []
    window.statusBar().messageChanged.connect(messages.append)
    pick = lambda d: qtbot.mouseClick(d.finder.local_button, Qt.MouseButton.LeftButton)  # noqa: E731
    when_modal(ModelDialog, pick)
    with qtbot.waitSignal(window.client.finder_loaded, timeout=5000):
        qtbot.keyClick(window, Qt.Key.Key_M, Qt.KeyboardModifier.ControlModifier)
        assert settings.finder_checkpoint == ""  # asked for, not loaded yet
    assert messages[0] == "Loading the finder sam3.pt… (the first time takes a while)"
    assert window.loads == [str(good)]
    assert settings.finder_checkpoint == str(good)
    assert window.finder.description() == "sam3.pt on cpu"
    assert window.statusBar().currentMessage().startswith("Finder ready: sam3.pt on cpu (1 M")

    bad = tmp_path / "sam2.1_hiera_tiny.pt"
    bad.write_bytes(b"x")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(bad), ""))
    intro: list[str] = []
    when_modal(ModelDialog, lambda d: intro.append(d.finder.current_label.text()) or pick(d))
    window.activateWindow()  # the closed dialog had the focus
    qtbot.waitUntil(window.isActiveWindow)
    with qtbot.waitSignal(window.client.job_failed, timeout=5000):
        qtbot.keyClick(window, Qt.Key.Key_M, Qt.KeyboardModifier.ControlModifier)
    assert intro == ["Current finder: sam3.pt on cpu"]
    line = window.statusBar().currentMessage()
    assert line.startswith("Finder not loaded: sam2.1_hiera_tiny.pt: this is a SAM 2 checkpoint")
    assert line.endswith("(keeping sam3.pt on cpu)") and "\n" not in line
    assert window.finder.description() == "sam3.pt on cpu"
    settings.sync()
    again = AppSettings(QSettings(settings.store.fileName(), QSettings.Format.IniFormat))
    assert again.finder_checkpoint == str(good)


def test_a_remembered_finder_loads_when_first_needed_not_at_start(qtbot, settings, recovery_root):
    settings.finder_checkpoint = "/models/sam3.pt"
    loads: list[str] = []
    window = make_window(qtbot, settings, recovery_root, engine=finder_engine(loads))
    try:
        qtbot.waitUntil(lambda: window.model_description() is not None, timeout=5000)
        assert loads == [] and window.finder.info is None
        with qtbot.waitSignal(window.client.finder_loaded, timeout=5000):
            assert window.finder.ensure_loaded()
        assert window.finder.ensure_loaded() and loads == ["/models/sam3.pt"]
    finally:
        window.close()


def test_real_loading_of_bad_finder_files_is_one_line_each(
    qtbot, settings, recovery_root, tmp_path
):
    """The real loader (`model.sam3.checkpoint.load_finder`) on a SAM 2 file and a truncated
    one: one status line each, and nothing remembered."""
    sam2 = tmp_path / "sam2.1_hiera_tiny.pt"
    weight = "image_encoder.trunk.patch_embed.proj.weight"
    torch.save({"model": {weight: torch.zeros(2, 3)}}, sam2)
    truncated = tmp_path / "sam3.pt"
    truncated.write_bytes(sam2.read_bytes()[:300])
    window = make_window(qtbot, settings, recovery_root)  # fake tracker, real finder loader
    try:
        lines = []
        for path in (sam2, truncated):
            with qtbot.waitSignal(window.client.job_failed, timeout=10000):
                window.finder.load(str(path), "cpu", remember=True)
            lines.append(window.statusBar().currentMessage())
    finally:
        window.close()
    assert lines[0].startswith("Finder not loaded: sam2.1_hiera_tiny.pt: this is a SAM 2")
    assert lines[1].startswith("Finder not loaded: sam3.pt: ")
    assert all(line.endswith("(no finder is loaded)") and "\n" not in line for line in lines)
    assert settings.finder_checkpoint == "" and window.finder.info is None


def test_the_finder_follows_the_tracker_to_another_device(
    qtbot, all_devices, settings, recovery_root
):
    loads: list[str] = []
    devices: list[str] = []
    window = make_window(qtbot, settings, recovery_root, engine=finder_engine(loads, devices))
    try:
        with qtbot.waitSignal(window.client.finder_loaded, timeout=5000):
            window.finder.load("/models/sam3.pt", "cpu", remember=True)
        with qtbot.waitSignal(window.client.finder_loaded, timeout=5000):
            window.load_model("fake.pt", "cuda", remember=True)
        assert devices == ["cpu", "cuda"] and loads == ["/models/sam3.pt"] * 2
        assert window.finder.description() == "sam3.pt on cuda"
    finally:
        window.close()
