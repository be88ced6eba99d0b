"""Error messages for people: what happened and what to do next, without exception names.

Plain Python, no Qt. The worker reports failures as "SomeError: text"; the class name
means nothing to a user, and a few causes (no model, no CUDA, out of memory) have a
well-known next step that the raw text does not say.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["describe_job_failure", "video_failure", "without_exception_name"]

# "RuntimeError: text", "torch.OutOfMemoryError: text", or a bare "AssertionError".
_EXCEPTION_PREFIX = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Warning)\b:?\s*")

_MODEL_HINT = "Choose a model with Model > Choose Model… (Ctrl+M)."
_KNOWN: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (
        re.compile(r"no model is loaded"),
        "No model is loaded",
        "Masks need a segmentation model. " + _MODEL_HINT + " Your prompts are kept and "
        "get their masks once it has loaded.",
    ),
    (
        re.compile(r"no video is open"),
        "No video is open",
        "Open a video first with File > Open Video… (Ctrl+O).",
    ),
    (
        re.compile(r"out of memory", re.IGNORECASE),
        "Out of memory",
        "The device ran out of memory. Close other programs, or choose a smaller model "
        "(Tiny) with Model > Choose Model… (Ctrl+M).",
    ),
    (
        re.compile(
            r"not compiled with CUDA|no CUDA|CUDA (?:is )?not available|no NVIDIA driver",
            re.IGNORECASE,
        ),
        "The GPU (CUDA) cannot be used",
        "PyTorch on this computer cannot use an NVIDIA GPU. Choose Model > Device > cpu; "
        "the model that was working stays loaded.",
    ),
)


def without_exception_name(message: str) -> str:
    """The message without a leading exception class name, capitalised unless it starts
    with a file name ("notes.txt: …" stays as the user named the file)."""
    text = _EXCEPTION_PREFIX.sub("", message.strip(), count=1).strip()
    first = text.split(" ", 1)[0]
    if any(c in first for c in "./\\_"):
        return text
    return text[:1].upper() + text[1:]


def describe_job_failure(action: str, message: str) -> tuple[str, str]:
    """(title, text) for a failed worker job, e.g. ("loading the model", "ValueError: …")."""
    for pattern, title, advice in _KNOWN:
        if pattern.search(message):
            return title, advice
    text = without_exception_name(message) or "An unexpected error happened"
    if action == "loading the model":
        return "Cannot load the model", (
            f"{_sentence(text)} Choose another checkpoint with Model > Choose Model… "
            "(Ctrl+M); the model that was working stays loaded."
        )
    if action == "loading the finder":
        return "Cannot load the finder", (
            f"{_sentence(text)} Choose SAM 3's sam3.pt with Model > Choose Model… (Ctrl+M); "
            "the finder that was working stays loaded."
        )
    return f"Error while {action}", (
        f"{_sentence(text)} Try again; if it keeps failing, save your project and restart Masklet."
    )


def video_failure(path: str, message: str) -> str:
    """The reason a video did not open, naming the file once and saying what to try."""
    text = without_exception_name(message) or "It could not be read"
    if path not in text and Path(path).name not in text:
        text = f"{path}: {text}"
    return f"{_sentence(text)} Masklet opens video files (MP4, MOV, MKV, …) and image folders."


def _sentence(text: str) -> str:
    return text if text.endswith((".", "!", "?")) else text + "."
