"""The annotation document and its undo commands."""
