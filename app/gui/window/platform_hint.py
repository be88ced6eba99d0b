"""A one-line hint when Qt cannot start its display plugin (a bare Linux desktop).

Plain Python, no Qt: `app.gui.main` calls `platform_hint` from a Qt message handler
when Qt reports that the platform plugin failed to load, which Qt itself follows with
an abort and a list of plugins that does not say what to install.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, Mapping

__all__ = ["XCB_LIBRARIES", "missing_xcb_packages", "platform_hint"]

# Shared libraries Qt's xcb plugin loads beyond a desktop's usual ones, with the Debian and
# Ubuntu package holding each. Read from `ldd` of PySide6 6.x's libqxcb.so / libQt6XcbQpa.
XCB_LIBRARIES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
}


def _loads(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def missing_xcb_packages(loads: Callable[[str], bool] = _loads) -> list[str]:
    """Packages of the xcb libraries that the dynamic loader cannot find, in table order."""
    return [package for soname, package in XCB_LIBRARIES.items() if not loads(soname)]


def platform_hint(
    env: Mapping[str, str] | None = None,
    loads: Callable[[str], bool] = _loads,
    platform: str = sys.platform,
) -> str:
    """What to do when Qt could not load its platform plugin, as one line."""
    env = os.environ if env is None else env
    if platform.startswith("linux"):
        missing = missing_xcb_packages(loads)
        if missing:
            return (
                "masklet: Qt needs system libraries to open a window; install them with: "
                f"sudo apt install {' '.join(missing)}  (see README, Set-up)"
            )
        if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
            return "masklet: no desktop to open a window on (DISPLAY and WAYLAND_DISPLAY unset)"
    return (
        "masklet: Qt could not start its display plugin; check that the desktop is reachable "
        "(DISPLAY/WAYLAND_DISPLAY) or set QT_QPA_PLATFORM (see README, Set-up)"
    )
