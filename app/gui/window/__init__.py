"""The main window, composed of its menus, panels and status bar."""
