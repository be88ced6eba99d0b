"""Persistent app settings (QSettings): model choice, recent files, window state, display.

Tests pass their own `QSettings` (an INI file in a temporary folder) so they never read
or write the user's settings.
"""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QSettings

from app.headless.cli_args import PRECISIONS
from app.project.quality import DEFAULT_THRESHOLD

DEFAULT_STATE_BUDGET_BYTES = 2 * 2**30  # per project; see model.engine.state_store_budget
DEFAULT_FIND_EVERY = 16  # frames between two finds while propagating (issue 27)
ORGANIZATION = "Masklet"
APPLICATION = "Masklet"
MAX_RECENT = 10


class AppSettings:
    """Typed accessors over one QSettings store."""

    def __init__(self, store: QSettings | None = None) -> None:
        self._s = store if store is not None else QSettings(ORGANIZATION, APPLICATION)

    @property
    def store(self) -> QSettings:
        return self._s

    def sync(self) -> None:
        self._s.sync()

    # ---- model -----------------------------------------------------------------------------
    @property
    def checkpoint(self) -> str:
        return str(self._s.value("model/sam2/checkpoint", "") or "")

    @checkpoint.setter
    def checkpoint(self, path: str) -> None:
        self._s.setValue("model/sam2/checkpoint", path)

    @property
    def finder_checkpoint(self) -> str:
        """SAM 3's finder (`sam3.pt`), set only once a chosen file has loaded."""
        return str(self._s.value("model/sam3/checkpoint", "") or "")

    @finder_checkpoint.setter
    def finder_checkpoint(self, path: str) -> None:
        self._s.setValue("model/sam3/checkpoint", path)

    @property
    def find_every(self) -> int:
        """Track > Find New Instances While Propagating: the finder runs every N frames."""
        try:
            value = int(self._s.value("find/every", DEFAULT_FIND_EVERY))
        except (TypeError, ValueError):
            return DEFAULT_FIND_EVERY
        return value if value >= 1 else DEFAULT_FIND_EVERY

    @find_every.setter
    def find_every(self, value: int) -> None:
        if int(value) < 1:
            raise ValueError(f"find every must be at least 1 frame, not {value}")
        self._s.setValue("find/every", int(value))

    @property
    def device(self) -> str:
        return str(self._s.value("model/kernels/device", "cpu") or "cpu")

    @device.setter
    def device(self, device: str) -> None:
        self._s.setValue("model/kernels/device", device)

    @property
    def precision(self) -> str:
        """auto, exact or fast (Model > Precision); anything else reads as auto."""
        value = str(self._s.value("model/precision", "auto") or "auto")
        return value if value in PRECISIONS else "auto"

    @precision.setter
    def precision(self, precision: str) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        self._s.setValue("model/precision", precision)

    @property
    def state_budget_bytes(self) -> int:
        """Size budget of a project's engine state store (the `.masklet-state` sidecar)."""
        try:
            value = int(self._s.value("model/state_budget_bytes", DEFAULT_STATE_BUDGET_BYTES))
        except (TypeError, ValueError):
            return DEFAULT_STATE_BUDGET_BYTES
        return max(value, 0)

    @state_budget_bytes.setter
    def state_budget_bytes(self, value: int) -> None:
        self._s.setValue("model/state_budget_bytes", int(value))

    # ---- files -----------------------------------------------------------------------------
    def recent_files(self) -> list[str]:
        value = self._s.value("files/recent", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or []) if v]

    def add_recent_file(self, path: str) -> None:
        files = [path, *(f for f in self.recent_files() if f != path)][:MAX_RECENT]
        self._s.setValue("files/recent", files)

    def clear_recent_files(self) -> None:
        self._s.setValue("files/recent", [])

    # ---- window and display ----------------------------------------------------------------
    def window_geometry(self) -> QByteArray | None:
        value = self._s.value("window/geometry")
        return value if isinstance(value, QByteArray) else None

    def window_state(self) -> QByteArray | None:
        value = self._s.value("window/state")
        return value if isinstance(value, QByteArray) else None

    def save_window(self, geometry: QByteArray, state: QByteArray) -> None:
        self._s.setValue("window/geometry", geometry)
        self._s.setValue("window/state", state)

    @property
    def opacity(self) -> float:
        try:
            value = float(self._s.value("display/opacity", 0.5))
        except (TypeError, ValueError):
            return 0.5
        return min(max(value, 0.0), 1.0)

    @opacity.setter
    def opacity(self, value: float) -> None:
        self._s.setValue("display/opacity", float(value))

    @property
    def doubtful_threshold(self) -> float:
        """Predicted IoU under which a frame is doubtful, in [0, 1]."""
        try:
            value = float(self._s.value("review/doubtful_threshold", DEFAULT_THRESHOLD))
        except (TypeError, ValueError):
            return DEFAULT_THRESHOLD
        return min(max(value, 0.0), 1.0) if value == value else DEFAULT_THRESHOLD

    @doubtful_threshold.setter
    def doubtful_threshold(self, value: float) -> None:
        self._s.setValue("review/doubtful_threshold", min(max(float(value), 0.0), 1.0))
