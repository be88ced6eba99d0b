"""Model > Precision: radio choices with real clicks, remembered, applied to the session."""

from __future__ import annotations

import pytest
from conftest import make_window
from PySide6.QtCore import QPoint, QSettings, Qt
from PySide6.QtWidgets import QMenu

import model.engine.precision as precision
from app.gui.settings import AppSettings
from app.gui.window.precision_menu import CHOICES


def click_menu_action(qtbot, menu: QMenu, text: str) -> None:
    menu.popup(QPoint(0, 0))
    qtbot.waitExposed(menu)
    action = next(a for a in menu.actions() if a.text() == text)
    qtbot.mouseClick(menu, Qt.MouseButton.LeftButton, pos=menu.actionGeometry(action).center())
    menu.hide()


def _checked(window) -> list[str]:
    return [a.data() for a in window.precision_submenu.actions() if a.isChecked()]


@pytest.fixture
def sessions():
    return []


@pytest.fixture
def opened_with(qtbot, settings, recovery_root, video_path, sessions):
    windows = []

    def make():
        window = make_window(qtbot, settings, recovery_root, sessions=sessions)
        with qtbot.waitSignal(window.session.session_ready, timeout=10000):
            assert window.open_video(str(video_path))
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()


def test_menu_lists_auto_exact_fast_as_radio_items_auto_by_default(window):
    actions = window.precision_submenu.actions()
    assert [a.data() for a in actions] == [key for key, _, _ in CHOICES]
    assert all(a.isCheckable() for a in actions)
    assert window.precision_menu.group.isExclusive()
    assert _checked(window) == ["auto"]


def test_choice_reaches_the_session_and_is_remembered(qtbot, opened_with, sessions, settings):
    window = opened_with()
    qtbot.waitUntil(lambda: sessions and sessions[-1].precisions == ["auto"], timeout=5000)
    fast = window.precision_menu.action("fast").text()
    with qtbot.waitSignal(window.client.stats_changed, timeout=5000):
        click_menu_action(qtbot, window.precision_submenu, fast)
    qtbot.waitUntil(lambda: sessions[-1].precisions == ["auto", "fast"], timeout=5000)
    assert _checked(window) == ["fast"] and settings.precision == "fast"
    qtbot.waitUntil(lambda: window.engine_status.precision[1].text() == "bf16", timeout=5000)
    # Persisted: a new window on the same settings opens its session in fast mode.
    again = AppSettings(QSettings(settings.store.fileName(), QSettings.Format.IniFormat))
    assert again.precision == "fast"
    window.close()
    second = opened_with()
    assert _checked(second) == ["fast"]
    qtbot.waitUntil(lambda: sessions[-1].precisions == ["fast"], timeout=5000)


def test_fast_without_native_bf16_says_why(qtbot, opened_with, monkeypatch):
    monkeypatch.setattr(precision, "_cpu_native_bf16", lambda: False)
    window = opened_with()
    qtbot.waitUntil(lambda: window.engine_status.precision[1].text() == "float32", timeout=5000)
    fast = window.precision_menu.action("fast").text()
    click_menu_action(qtbot, window.precision_submenu, fast)
    status = window.engine_status.precision[1]
    qtbot.waitUntil(lambda: status.text() == "bf16", timeout=5000)
    assert "slower than float32" in status.toolTip()
    message = window.statusBar().currentMessage()
    assert message.startswith("Precision: ") and "no native bf16" in message
    assert "\n" not in message


def test_auto_follows_the_hardware(qtbot, window, monkeypatch):
    monkeypatch.setattr(precision, "_cpu_native_bf16", lambda: True)
    exact = window.precision_menu.action("exact").text()
    click_menu_action(qtbot, window.precision_submenu, exact)
    status = window.engine_status.precision[1]
    qtbot.waitUntil(lambda: status.text() == "float32", timeout=5000)
    click_menu_action(qtbot, window.precision_submenu, window.precision_menu.action("auto").text())
    qtbot.waitUntil(lambda: status.text() == "bf16", timeout=5000)
    assert "native bf16" in status.toolTip()


def test_bad_stored_precision_reads_as_auto(tmp_path):
    store = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    store.setValue("model/precision", "double")
    settings = AppSettings(store)
    assert settings.precision == "auto"
    with pytest.raises(ValueError, match="precision must be one of"):
        settings.precision = "half"
