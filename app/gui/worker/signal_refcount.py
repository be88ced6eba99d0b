"""A guard against a PySide6 reference-count bug that aborts long sessions.

With PySide6 6.12 on CPython 3.11, every `SignalInstance.emit()` gives back `True`
without owning a reference to it, so each emit takes one reference from `True`.
The worker emits a few signals per propagated frame; after some thousands of frames
`True`'s count reaches zero and CPython aborts the whole app ("bool_dealloc:
deallocating True or False"), losing the session.

CPython 3.12 makes `True` and `False` immortal for exactly this kind of bug. On older
versions, when an emit is seen to leak, `pin_booleans` gives both a reference count
so large (2**40) that no session can spend it. Nothing changes where emit is correct.
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject, Signal

_PIN = 1 << 40
_PROBE_EMITS = 16


class _Probe(QObject):
    fired = Signal()


def emit_leaks_true() -> bool:
    """Whether emitting a signal takes a reference from `True` (checked on a private probe)."""
    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(_PROBE_EMITS):
        probe.fired.emit()
    # Other threads may move the count by a little; a leak moves it by every emit.
    return before - sys.getrefcount(True) >= _PROBE_EMITS // 2


def pin_booleans() -> bool:
    """Make `True` and `False` effectively immortal if emit leaks; returns whether it did."""
    if sys.implementation.name != "cpython" or sys.version_info >= (3, 12):
        return False  # immortal already (or not CPython's object layout)
    if not emit_leaks_true():
        return False
    for value in (True, False):
        # ob_refcnt is the first field of every CPython object (non-debug builds).
        ctypes.c_ssize_t.from_address(id(value)).value += _PIN
    return True
