"""The dialogs: export, model choice, keyboard shortcuts."""
