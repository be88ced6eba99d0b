"""The one error type of video reading."""

from __future__ import annotations


class VideoError(ValueError):
    """A video file or image folder cannot be opened, or one of its frames cannot be read.

    The message is one line that names the file and says what is wrong with it, fit to show
    to the user as is.
    """
