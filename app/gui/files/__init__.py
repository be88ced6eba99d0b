"""The GUI's file side: open, save, import, recover, over document and session."""
