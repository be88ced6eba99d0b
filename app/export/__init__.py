"""Export masks to DAVIS PNGs, COCO, YouTube-VIS and overlay MP4 (plain Python, no Qt)."""

from app.export.palette import davis_palette, palette_color
from app.export.runner import FORMATS, ExportResult, export
from app.export.source import ExportOptions, ExportSource, ObjectMeta, StoreSource

__all__ = [
    "FORMATS",
    "ExportOptions",
    "ExportResult",
    "ExportSource",
    "ObjectMeta",
    "StoreSource",
    "davis_palette",
    "export",
    "palette_color",
]
