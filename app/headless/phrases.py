"""The phrases of a headless run (`masklet track --find`, a manifest's `find`), checked strictly.

The app's Find bar cleans what is typed (`app.project.found.clean_phrase`: control and format
characters dropped, cut to MAX_PHRASE_CHARS); a command line or a manifest is refused instead,
with one line naming the problem, since nobody is there to see what was kept. So a phrase the
headless run accepts is one the Find bar would keep as typed:

- not empty, at most MAX_PHRASE_CHARS characters (the finder reads 32 tokens of it anyway;
  a phrase within the limit may still pass them: the finder reads its first 32 tokens,
  `model.sam3.finder.Instances.truncated`, and the run says so);
- no control characters and no format characters, the bidirectional overrides and
  isolates among them (U+202E shows "gnp.exe" as "exe.png"): the phrase becomes objects'
  names and category, shown in exports, terminals and the app;
- right-to-left text itself is accepted: it is a phrase in the user's language, and the
  finder's tokenizer reads any Unicode (CLIP's byte-level BPE), however well the released
  model knows it.

Found objects are named by `app.project.found.numbered_names`, as the app names them.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from app.project.found import MAX_PHRASE_CHARS

__all__ = ["MAX_PHRASES", "MAX_PHRASE_CHARS", "check_phrase", "check_phrases"]

# Phrases of one run: each costs a text encoding once and the detector heads on every find.
MAX_PHRASES = 32


def check_phrase(text: str) -> str:
    """The phrase with its ends stripped and runs of spaces made one (as the Find bar's
    `clean_phrase`), or a one-line ValueError saying what is wrong."""
    if not isinstance(text, str):
        raise ValueError(f"a phrase must be text, got {type(text).__name__}")
    phrase = " ".join(part for part in text.strip().split(" ") if part)
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
        if kind in ("Cc", "Cf"):
            what = "a control" if kind == "Cc" else "a format (invisible or text-direction)"
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
