"""Objects made from finds (SAM 3's finder): the phrases that find them, their names and
categories, and where the finder's score is kept.

Shared by `masklet track --find`, `masklet batch` and the app's Find bar, so that every way of
finding names and stores objects alike:

- a phrase is checked once (`check_phrase`): not empty, at most MAX_PHRASE_CHARS characters,
  no control characters and no bidirectional formatting characters. Right-to-left text itself
  is accepted: it is a phrase in the user's language, and the finder's tokenizer reads any
  Unicode (CLIP's byte-level BPE), however well the model was trained on it. What is refused
  are the invisible characters that change how a name displays without changing what it
  says (U+202E shows "gnp.exe" as "exe.png"): the phrase becomes an object's name and
  category, shown in exports, terminals and the app. A phrase within the limit may still
  be longer than the finder's context (32 tokens): the finder reads its first 32 tokens
  and says so (`model.sam3.finder.Instances.truncated`), as the callers tell the user;
- an object found by a phrase is named "PHRASE N" (`numbered_name`: N = 1, 2, ...,
  continuing after the objects already named so), its category is the phrase;
- the score it was found with is kept per object under FINDER_SCORE_KEY: a COCO
  annotation's and a YouTube-VIS annotation's `"finder_score"` (each annotation's `score`
  stays the tracker's predicted IoU), and the entry's in a PNG export's `objects.json`.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence

__all__ = [
    "FINDER_SCORE_KEY",
    "MAX_PHRASES",
    "MAX_PHRASE_CHARS",
    "check_finder_score",
    "check_phrase",
    "check_phrases",
    "numbered_name",
]

FINDER_SCORE_KEY = "finder_score"
# Characters in a phrase: 32 tokens of English rarely pass 150 characters, and "PHRASE N"
# stays within a name's 200 (app.project.labels.MAX_NAME_CHARS).
MAX_PHRASE_CHARS = 150
# Phrases of one run: each costs a text encoding once and the detector heads on every find.
MAX_PHRASES = 32
# Unicode's explicit direction marks, embeddings, overrides and isolates.
_BIDI_CONTROLS = frozenset(
    "\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def check_phrase(text: str) -> str:
    """The phrase with its ends stripped, or a one-line ValueError saying what is wrong."""
    if not isinstance(text, str):
        raise ValueError(f"a phrase must be text, got {type(text).__name__}")
    phrase = text.strip()
    if not phrase:
        raise ValueError("the phrase is empty")
    if len(phrase) > MAX_PHRASE_CHARS:
        raise ValueError(
            f"the phrase is {len(phrase):,} characters long; a phrase may have at most "
            f"{MAX_PHRASE_CHARS} (the finder reads its first 32 tokens)"
        )
    for char in phrase:
        kind = unicodedata.category(char)
        if kind == "Cs":
            raise ValueError("the phrase is not valid text (undecodable bytes)")
        if kind == "Cc" or char in _BIDI_CONTROLS:
            what = "a control" if kind == "Cc" else "a text-direction control"
            raise ValueError(f"the phrase holds {what} character (U+{ord(char):04X})")
    return phrase


def check_phrases(texts: Iterable[object]) -> list[str]:
    """Checked phrases in order, repeats dropped; ValueError for a bad one or too many."""
    phrases: list[str] = []
    for text in texts:
        phrase = check_phrase(text)  # type: ignore[arg-type]
        if phrase not in phrases:
            phrases.append(phrase)
        if len(phrases) > MAX_PHRASES:
            raise ValueError(f"more than {MAX_PHRASES} phrases")
    return phrases


def check_finder_score(value: float) -> float:
    """A score as stored: finite, clipped to [0, 1], 4 decimals (as the tracker's)."""
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"a finder score must be a finite number, got {value}")
    return round(min(max(value, 0.0), 1.0), 4)


def numbered_name(phrase: str, taken: Sequence[str] | set[str]) -> str:
    """ "PHRASE N", N one more than the highest N of the names in `taken` of that form."""
    pattern = re.compile(re.escape(phrase) + r" (\d{1,9})")
    numbers = [int(m.group(1)) for name in taken if (m := pattern.fullmatch(name))]
    return f"{phrase} {max(numbers, default=0) + 1}"
