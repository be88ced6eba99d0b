"""The PySide6 desktop app: main window, widgets, the annotation document and the worker."""
