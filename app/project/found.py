"""Objects found by phrase: their phrase as a name and category, numbered, and the finder's score.

Plain Python shared by the app's Find and anything else that creates objects from SAM 3's
finds. An object found for "bicycle" is named "bicycle N" (N continuing after the objects
of that name there are), its category is the phrase, and the score the finder gave it is
kept with it (`ObjectInfo.finder_score`, saved as the project file's object field
"finder_score", absent for objects nobody found), so exports can carry it.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable

__all__ = [
    "MAX_PHRASE_CHARS",
    "check_finder_score",
    "clean_phrase",
    "cleaning_note",
    "numbered_names",
]

# A phrase longer than this is cut (the text encoder reads 32 tokens of it anyway); it
# becomes the objects' names and category, which the label list bounds at 200 characters.
MAX_PHRASE_CHARS = 100
_SPACES = re.compile(r"\s+")


def _hidden(char: str) -> bool:
    """A control or format character (bidi overrides included) other than whitespace."""
    return unicodedata.category(char) in ("Cc", "Cf") and not char.isspace()


def _visible(text: str) -> str:
    """`text` without hidden characters, whitespace runs one space, the ends stripped."""
    kept = "".join(" " if c.isspace() else c for c in text if not _hidden(c))
    return _SPACES.sub(" ", kept).strip()


def clean_phrase(text: str) -> str:
    """`text` as a phrase: control and format characters (bidi overrides included) dropped,
    whitespace runs made one space, the ends stripped, at most `MAX_PHRASE_CHARS`; "" when
    nothing is left (right-to-left letters themselves are kept)."""
    return _visible(text)[:MAX_PHRASE_CHARS].strip()


def cleaning_note(text: str) -> str:
    """What `clean_phrase` does to `text`, in words ("" when nothing that matters: spaces),
    so that the user is told what is searched for."""
    notes = []
    if any(_hidden(c) for c in text):
        notes.append("invisible control characters left out")
    if len(_visible(text)) > MAX_PHRASE_CHARS:
        notes.append(f"cut to {MAX_PHRASE_CHARS} characters")
    return "; ".join(notes)


def numbered_names(existing: Iterable[str], phrase: str, count: int) -> list[str]:
    """`count` names "PHRASE N" continuing after the highest N of `existing` names."""
    pattern = re.compile(re.escape(phrase) + r" (\d+)")
    used = [int(m.group(1)) for name in existing if (m := pattern.fullmatch(name))]
    start = max(used, default=0) + 1
    return [f"{phrase} {n}" for n in range(start, start + count)]


def check_finder_score(value: object, where: str) -> float | None:
    """A stored finder score: None, or a finite number in [0, 1]; else a ValueError."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where}.finder_score must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{where}.finder_score must be in 0-1, got {value}")
    return float(value)
