"""Autosave and crash recovery, in plain Python so tests and the CLI can drive it.

Each running app owns one session folder under the recovery root
(`$MASKLET_DATA_DIR/recovery`, else the platform's user data folder)::

    session-<pid>-<random>/
        owner.lock               # locked (flock / msvcrt) for as long as the owner lives
        recovery.masklet         # the project, written with app.project.files.save_project
        recovery.masklet-masks/  # its mask chunks, only dirty ones rewritten
        recovery.masklet-state/  # the engine's state (written by the worker; optional)
        session.json             # display facts: original project path, time, counts

Prompt, object and settings changes are saved at once; mask-only changes (propagation) at
most every `mask_interval_s`, when `tick()` is called. Every file is replaced atomically and
chunks are written before the JSON, so a kill -9 at any moment leaves a loadable set that
holds every prompt whose `mark_dirty` returned and masks up to the last mask save.

The OS drops the lock when the owner dies however it dies, so a session whose lock can be
taken belongs to a crashed or killed process: `find_recoverable` lists exactly those.
A session folder is created under a hidden temporary name with its lock already held and
then renamed into place, so a scanner never mistakes a session being born for a dead one.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from app.project.files import Project, ProjectError, load_project, save_project
from app.project.mask_store import MaskStore
from app.safety.atomic import atomic_write_text
from app.safety.safe_io import parse_json, read_regular_file

__all__ = [
    "Autosaver",
    "DirtyKind",
    "RecoveryInfo",
    "recovery_root",
    "user_data_dir",
]

DirtyKind = Literal["prompts", "objects", "settings", "masks"]
_IMMEDIATE = frozenset({"prompts", "objects", "settings"})
_PROJECT_NAME = "recovery.masklet"
_STATE_NAME = "recovery.masklet-state"  # model.engine.state_store.state_folder of the project
_LOCK_NAME = "owner.lock"
_META_NAME = "session.json"
_SESSION_PREFIX = "session-"
_MAX_META_BYTES = 2**20  # session.json is a few hundred bytes

if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True


def user_data_dir() -> Path:
    """Masklet's per-user data folder; `MASKLET_DATA_DIR` overrides it."""
    override = os.environ.get("MASKLET_DATA_DIR")
    if override:
        return Path(override)
    home = Path.home()
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local") / "Masklet"
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / "Masklet"
    return Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share") / "masklet"


def recovery_root() -> Path:
    return user_data_dir() / "recovery"


@dataclass(frozen=True)
class RecoveryInfo:
    """A recovery set left by a process that did not shut down cleanly."""

    path: Path  # the session folder
    video_path: str
    project_path: str | None  # the user's project file, if the session had one
    saved_at: float  # seconds since the epoch of the last autosave
    num_objects: int
    num_prompts: int
    num_masks: int
    pid: int


StateFn = Callable[[], tuple[Project, MaskStore]]


class Autosaver:
    """Writes the attached document's state to this process's recovery session.

    `state` returns the current (Project, MaskStore); it is called on every save, from the
    caller's thread (the GUI thread), so it can hand out the live objects without copying.
    """

    def __init__(
        self,
        *,
        root: str | os.PathLike[str] | None = None,
        mask_interval_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        if mask_interval_s < 0:
            raise ValueError(f"mask_interval_s must be >= 0, got {mask_interval_s}")
        self._root = Path(root) if root is not None else recovery_root()
        self._interval = mask_interval_s
        self._clock = clock
        self._wall_clock = wall_clock
        self._on_error = on_error
        self._state: StateFn | None = None
        self._project_path: str | None = None
        self._session: Path | None = None
        self._lock_fd: int | None = None
        self._masks_pending = False
        self._last_mask_save = float("-inf")
        self.last_error: str | None = None  # of the latest save; None once one succeeds
        self.failed_saves = 0  # lets a caller tell a new failure from one it has seen
        self.saves = 0  # successful saves; a caller saves the engine state after each
        self._recovered_state: Path | None = None

    @property
    def root(self) -> Path:
        return self._root

    @property
    def session_dir(self) -> Path | None:
        """This process's session folder, once something has been saved."""
        return self._session

    @property
    def state_dir(self) -> Path | None:
        """Where this session's engine state goes, once something has been saved."""
        return None if self._session is None else self._session / _STATE_NAME

    def take_recovered_state(self) -> Path | None:
        """The engine state of the set `recover` just loaded, now in this session; once."""
        found, self._recovered_state = self._recovered_state, None
        return found

    # -- saving ------------------------------------------------------------------------------

    def attach(self, state: StateFn, *, project_path: str | None = None) -> None:
        """Start autosaving the document behind `state` (replaces any previous one)."""
        self._state = state
        self._project_path = project_path
        self._masks_pending = False

    def set_project_path(self, path: str | None) -> None:
        """Record where the user saved the project, shown when offering recovery."""
        self._project_path = path

    def mark_dirty(self, kind: DirtyKind) -> None:
        """Note a change; prompt/object/settings changes are saved before this returns."""
        if kind not in _IMMEDIATE and kind != "masks":
            raise ValueError(f"unknown change kind {kind!r}")
        if self._state is None:
            return
        if kind == "masks":
            self._masks_pending = True
        else:
            self.flush()

    def tick(self) -> bool:
        """Save pending mask changes if `mask_interval_s` has passed; True if it saved."""
        if not self._masks_pending or self._state is None:
            return False
        if self._clock() - self._last_mask_save < self._interval:
            return False
        return self.flush()

    def flush(self) -> bool:
        """Save everything now. Any failure (a full disk, a document the project format
        refuses, a bug) is reported through `last_error` and `on_error`, never raised: this
        runs inside GUI slots, where an exception would only reach stderr."""
        if self._state is None:
            return False
        try:
            project, masks = self._state()
            session = self._ensure_session()
            save_project(session / _PROJECT_NAME, project, masks, only_dirty=True)
            self._write_meta(session, project, masks)
        except Exception as exc:  # noqa: BLE001 - every failure must reach the user
            self.failed_saves += 1
            self.last_error = f"autosave failed: {_describe(exc)}"
            if self._on_error is not None:
                self._on_error(self.last_error)
            return False
        self.last_error = None
        self.saves += 1
        self._masks_pending = False
        self._last_mask_save = self._clock()
        return True

    def clean_shutdown(self) -> None:
        """Remove this process's recovery data: the user's work is saved or discarded."""
        session, self._session = self._session, None
        self._state = None
        self._masks_pending = False
        if session is not None:
            shutil.rmtree(session, ignore_errors=True)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _ensure_session(self) -> Path:
        if self._session is not None:
            return self._session
        self._root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".new-", dir=self._root))
        fd = os.open(staging / _LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        if not _try_lock(fd):
            os.close(fd)
            raise OSError(f"cannot lock {staging / _LOCK_NAME}")
        os.write(fd, json.dumps({"pid": os.getpid(), "started": self._wall_clock()}).encode())
        os.fsync(fd)
        final = self._root / f"{_SESSION_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
        os.replace(staging, final)
        self._lock_fd, self._session = fd, final
        return final

    def _write_meta(self, session: Path, project: Project, masks: MaskStore) -> None:
        meta = {
            "pid": os.getpid(),
            "video_path": project.video_path,
            "project_path": self._project_path,
            "saved_at": self._wall_clock(),
            "num_objects": len(project.objects),
            "num_prompts": len(project.prompts),
            "num_masks": len(masks),
        }
        atomic_write_text(session / _META_NAME, json.dumps(meta))

    # -- recovery ----------------------------------------------------------------------------

    def find_recoverable(self) -> list[RecoveryInfo]:
        """Sessions of dead processes that hold a project, newest first."""
        if not self._root.is_dir():
            return []
        found = []
        for child in self._root.iterdir():
            is_session = child.name.startswith(_SESSION_PREFIX)
            if not (is_session or child.name.startswith(".new-")) or child == self._session:
                continue
            if not _owner_is_dead(child):
                continue
            if not is_session or not (child / _PROJECT_NAME).is_file():
                # Died before its first save: nothing to offer, only litter.
                shutil.rmtree(child, ignore_errors=True)
                continue
            found.append(_read_info(child))
        return sorted(found, key=lambda info: info.saved_at, reverse=True)

    def recover(self, info: RecoveryInfo) -> tuple[Project, MaskStore]:
        """Load a recovery set; raises ProjectError if it cannot be read."""
        if not _owner_is_dead(info.path):
            raise ProjectError(f"{info.path.name}: still in use by a running Masklet")
        loaded = load_project(info.path / _PROJECT_NAME)
        self._adopt_state(info.path / _STATE_NAME)
        return loaded

    def _adopt_state(self, state: Path) -> None:
        """Move a recovered set's engine state into this session before the set is discarded.

        Renamed, not copied: both live under the recovery root, and the worker restores from
        the new place while the old set is deleted. Failing to move it only loses the cache.
        """
        self._recovered_state = None
        if not state.is_dir():
            return
        try:
            target = self._ensure_session() / _STATE_NAME
            shutil.rmtree(target, ignore_errors=True)
            os.replace(state, target)
        except OSError:
            return
        self._recovered_state = target

    def discard(self, info: RecoveryInfo) -> None:
        """Delete a recovery set (after recovering it, or when the user declines)."""
        if info.path == self._session or not info.path.name.startswith(_SESSION_PREFIX):
            raise ValueError(f"{info.path} is not a foreign recovery session")
        if _owner_is_dead(info.path):
            shutil.rmtree(info.path, ignore_errors=True)


def _describe(exc: Exception) -> str:
    """One line: an OS error with its file, anything else by its message."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror} ({exc.filename})" if exc.filename else exc.strerror
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _owner_is_dead(session: Path) -> bool:
    try:
        fd = os.open(session / _LOCK_NAME, os.O_RDWR)
    except OSError:
        return False  # no lock file: not a session we understand; leave it alone
    try:
        return _try_lock(fd)
    finally:
        os.close(fd)


def _read_info(session: Path) -> RecoveryInfo:
    meta: dict = {}
    with contextlib.suppress(OSError, ValueError):
        loaded = parse_json(read_regular_file(session / _META_NAME, max_bytes=_MAX_META_BYTES))
        if isinstance(loaded, dict):
            meta = loaded

    def number(key: str, default: float) -> float:
        value = meta.get(key)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return value if ok else default

    mtime = (session / _PROJECT_NAME).stat().st_mtime
    project_path = meta.get("project_path")
    video_path = meta.get("video_path")
    return RecoveryInfo(
        path=session,
        video_path=video_path if isinstance(video_path, str) else "",
        project_path=project_path if isinstance(project_path, str) else None,
        saved_at=float(number("saved_at", mtime)),
        num_objects=int(number("num_objects", -1)),
        num_prompts=int(number("num_prompts", -1)),
        num_masks=int(number("num_masks", -1)),
        pid=int(number("pid", -1)),
    )
