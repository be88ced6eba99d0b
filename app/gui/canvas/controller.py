"""Connects the frame canvas to the document: what to draw, and what clicks mean.

Draws the current frame, the RGBA overlay of visible objects' masks and every object's
prompts on it; turns canvas gestures into undo commands on the active object (creating
one when none is active, so the first click just works).

A brush stroke paints the active object's mask on the current frame live, rebuilding the
overlay only where the stroke went; on release the mask becomes that object's mask prompt
on the frame, one undo step. A stroke that erases the whole mask clears the object's
prompts on the frame instead (nothing is left to prompt with).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QUndoStack

from app.gui.canvas.brush import BrushStroke
from app.gui.canvas.brush_view import LiveOverlay
from app.gui.canvas.frame_canvas import FrameCanvas
from app.gui.canvas.frame_view import PromptMarks
from app.gui.canvas.overlay import (
    compose_overlay,
    frame_to_qimage,
    recompose_region,
    rgba_to_qimage,
)
from app.gui.document.annotations import AnnotationDocument, FramePrompts, MaskState
from app.gui.document.commands import (
    NewObjectCommand,
    SetPromptsCommand,
    ShownMask,
    add_point,
    remove_nearest_point,
    set_box,
)
from app.project.mask_codec import encode_rle

# Ctrl/Alt-click removes a point within this many screen pixels.
PICK_RADIUS_PX = 12.0

FrameReader = Callable[[int], np.ndarray]
Layers = list[tuple[np.ndarray, tuple[int, int, int]]]


@dataclass
class _Painting:
    """A stroke in progress: where it paints, the overlay layers and the live overlay."""

    frame: int
    obj_id: int
    stroke: BrushStroke
    layers: Layers
    live: LiveOverlay
    macro: bool
    # Set when the document's masks change mid-stroke, so the live overlay is out of date.
    stale: bool = False


class CanvasController(QObject):
    status_message = Signal(str)

    def __init__(
        self,
        document: AnnotationDocument,
        canvas: FrameCanvas,
        undo: QUndoStack,
        *,
        opacity: float = 0.5,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._doc = document
        self._canvas = canvas
        self._undo = undo
        self._read: FrameReader | None = None
        self._opacity = opacity
        self._frame_error: str | None = None
        self._painting: _Painting | None = None
        # The overlay on screen as an array, (frame, rgba), so a stroke starts from it
        # instead of composing a 4K frame again (~0.2 s).
        self._shown: tuple[int, np.ndarray] | None = None
        document.current_frame_changed.connect(self._on_current_frame_changed)
        document.masks_changed.connect(self._on_masks_changed)
        document.prompts_changed.connect(self._on_prompts_changed)
        document.object_changed.connect(lambda _obj: self.refresh())
        document.objects_changed.connect(self.refresh)
        document.active_object_changed.connect(lambda _obj: self.refresh_prompts())
        canvas.point_added.connect(self._on_point_added)
        canvas.box_drawn.connect(self._on_box_drawn)
        canvas.point_removal_requested.connect(self._on_point_removal_requested)
        canvas.stroke_started.connect(self._on_stroke_started)
        canvas.stroke_moved.connect(self._on_stroke_moved)
        canvas.stroke_finished.connect(self._on_stroke_finished)

    def set_reader(self, read: FrameReader | None) -> None:
        self._read = read
        self.refresh()

    @property
    def opacity(self) -> float:
        return self._opacity

    def set_opacity(self, value: float) -> None:
        self._opacity = float(np.clip(value, 0.0, 1.0))
        self.refresh_overlay()

    # ---- drawing ---------------------------------------------------------------------------
    def refresh(self) -> None:
        self._show_frame()
        self.refresh_overlay()
        self.refresh_prompts()

    def _show_frame(self) -> None:
        if self._read is None or self._doc.num_frames == 0:
            self._canvas.set_frame(None)
            return
        try:
            frame = self._read(self._doc.current_frame)
        except Exception as exc:  # noqa: BLE001 - a bad frame must not take the app down
            self._frame_error = f"cannot read frame {self._doc.current_frame}: {exc}"
            return
        self._frame_error = None
        self._canvas.set_frame(frame_to_qimage(frame))

    def refresh_overlay(self) -> None:
        if self._painting is not None:
            # The live overlay is on screen; it is replaced when the stroke ends.
            self._painting.stale = True
            return
        self._shown = None
        if self._doc.num_frames == 0:
            self._canvas.set_overlay(None)
            return
        layers = self._layers(self._doc.current_frame)
        if not layers:
            self._canvas.set_overlay(None)
            return
        rgba = compose_overlay(self._doc.video_size, layers, opacity=self._opacity)
        self._show_overlay(rgba)

    def _show_overlay(self, rgba: np.ndarray) -> None:
        self._shown = (self._doc.current_frame, rgba)
        self._canvas.set_overlay(rgba_to_qimage(rgba))

    def _layers(self, frame: int, painted: tuple[int, np.ndarray] | None = None) -> Layers:
        """Visible objects' (mask, colour) in list order; `painted` = (obj_id, its mask)."""
        masks = self._doc.masks_at(frame)
        if painted is not None:
            masks[painted[0]] = painted[1]
        return [
            (mask, obj.color)
            for obj in self._doc.objects()
            if (obj.visible or (painted and painted[0] == obj.obj_id))
            and (mask := masks.get(obj.obj_id)) is not None
        ]

    def refresh_prompts(self) -> None:
        if self._doc.num_frames == 0:
            self._canvas.set_prompts([])
            return
        prompted = self._doc.prompts_at(self._doc.current_frame)
        marks = [
            PromptMarks(prompted[obj.obj_id], obj.color, obj.obj_id == self._doc.active_object)
            for obj in self._doc.objects()
            # A hidden object hides all of it: mask, points and box.
            if obj.obj_id in prompted and obj.visible
        ]
        self._canvas.set_prompts(marks)

    @property
    def frame_error(self) -> str | None:
        return self._frame_error

    @Slot(int)
    def _on_current_frame_changed(self, _frame: int) -> None:
        self.refresh()

    @Slot(int)
    def _on_masks_changed(self, frame: int) -> None:
        if frame == self._doc.current_frame:
            self.refresh_overlay()

    @Slot(int, int)
    def _on_prompts_changed(self, frame: int, _obj_id: int) -> None:
        if frame == self._doc.current_frame:
            self.refresh_prompts()

    # ---- gestures --------------------------------------------------------------------------
    def _target_object(self, text: str) -> int:
        """The active object; starts an undo macro creating one if there is none."""
        if self._doc.active_object is not None:
            return self._doc.active_object
        self._undo.beginMacro(text)
        obj = self._doc.default_object(self._doc.next_object_id())
        self._undo.push(NewObjectCommand(self._doc, obj))
        return obj.obj_id

    def _push(self, make: Callable[[int], object], text: str) -> None:
        if self._doc.num_frames == 0:
            return
        macro = self._doc.active_object is None
        obj_id = self._target_object(text)
        self._undo.push(make(obj_id))
        if macro:
            self._undo.endMacro()

    @Slot(float, float, int)
    def _on_point_added(self, x: float, y: float, label: int) -> None:
        frame = self._doc.current_frame
        self._push(lambda obj: add_point(self._doc, frame, obj, x, y, label), "Add point")

    @Slot(float, float, float, float)
    def _on_box_drawn(self, x0: float, y0: float, x1: float, y1: float) -> None:
        frame = self._doc.current_frame
        self._push(lambda obj: set_box(self._doc, frame, obj, (x0, y0, x1, y1)), "Draw box")

    @Slot(float, float)
    def _on_point_removal_requested(self, x: float, y: float) -> None:
        radius = PICK_RADIUS_PX / max(self._canvas.zoom, 1e-6)
        command = remove_nearest_point(self._doc, self._doc.current_frame, x, y, radius)
        if command is not None:
            self._undo.push(command)

    # ---- brush -----------------------------------------------------------------------------
    @property
    def is_painting(self) -> bool:
        return self._painting is not None

    @Slot(float, float, bool)
    def _on_stroke_started(self, x: float, y: float, erase: bool) -> None:
        if self._doc.num_frames == 0 or self._painting is not None:
            return
        if erase and self._doc.active_object is None:
            self.status_message.emit("Select an object to erase from its mask")
            return
        frame = self._doc.current_frame
        macro = self._doc.active_object is None
        obj_id = self._target_object("Paint mask")
        base = self._doc.mask(frame, obj_id)
        stroke = BrushStroke(
            base, self._doc.video_size, erase=erase, radius=self._canvas.brush_radius
        )
        layers = self._layers(frame, painted=(obj_id, stroke.mask))
        live = self._canvas.begin_live_overlay(self._overlay_before_stroke(frame, obj_id, layers))
        self._painting = _Painting(frame, obj_id, stroke, layers, live, macro)
        self._paint(x, y)

    def _overlay_before_stroke(self, frame: int, obj_id: int, layers: Layers) -> np.ndarray:
        """A copy of the overlay on screen, which the stroke's layers compose to as long as
        the painted object is visible; otherwise composed afresh."""
        if self._shown is not None and self._shown[0] == frame and self._doc.object(obj_id).visible:
            return self._shown[1].copy()
        h, w = self._doc.video_size
        return compose_overlay((h, w), layers, opacity=self._opacity)

    @Slot(float, float)
    def _on_stroke_moved(self, x: float, y: float) -> None:
        if self._painting is not None:
            self._paint(x, y)

    def _paint(self, x: float, y: float) -> None:
        p = self._painting
        assert p is not None
        rect = p.stroke.paint_to(x, y)
        if rect is not None:
            recompose_region(p.live.rgba, p.layers, rect, opacity=self._opacity)
            p.live.touched(rect)

    @Slot()
    def _on_stroke_finished(self) -> None:
        p = self._painting
        if p is None:
            return
        # Other masks changed mid-stroke (an engine answer): the live overlay is behind.
        stale = p.stale or not self._doc.has_object(p.obj_id)
        stale = stale or not self._doc.object(p.obj_id).visible
        # Still "painting" while the command runs: its mask changes are already on screen.
        if p.stroke.changed() and self._doc.has_object(p.obj_id):
            self._undo.push(self._stroke_command(p))
        if p.macro:
            self._undo.endMacro()
        self._painting = None
        self._canvas.end_live_overlay()
        if stale or p.frame != self._doc.current_frame:
            self.refresh_overlay()
        else:
            self._show_overlay(p.live.rgba)

    def _stroke_command(self, p: _Painting) -> SetPromptsCommand:
        mask = p.stroke.result()
        text = "Erase mask" if p.stroke.erase else "Paint mask"
        if mask is None:
            shown, prompts = ShownMask(MaskState.NONE), FramePrompts()
        else:
            data = encode_rle(mask)
            shown, prompts = ShownMask(MaskState.MASK, data), FramePrompts(mask=data)
        return SetPromptsCommand(self._doc, p.frame, p.obj_id, prompts, text, shown=shown)
