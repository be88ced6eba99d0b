"""One line for the user from any exception, the same in the CLI, the batch and its workers."""

from __future__ import annotations

__all__ = ["describe_error"]


def describe_error(exc: BaseException, *, hint: str = "") -> str:
    """Bad input (ValueError, OSError) is an "error"; anything else an "internal error",
    named by its type so a report says what broke, with `hint` (how to see more) after it."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    if isinstance(exc, (ValueError, OSError)):
        return f"error: {line}"
    return f"internal error ({type(exc).__name__}): {line}{hint}"
