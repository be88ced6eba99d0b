"""The project document and its files: project, format, masks, quality, autosave."""
