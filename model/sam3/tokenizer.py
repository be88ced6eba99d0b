"""SAM 3's byte-pair tokenizer: CLIP's vocabulary, a 32-token context, padding with 0.

A phrase is cleaned (`model.sam3.phrase_cleaning`), split into words (runs of letters,
single digits, runs of other visible characters, English contractions "'s" "'t" "'re"
"'ve" "'m" "'ll" "'d", and the two special tokens written out), each word's UTF-8 bytes
mapped to printable characters and merged pair by pair in the vocabulary's order (the
lowest-ranked adjacent pair first, a word's last symbol marked "</w>"). The ids of a
phrase are `<start_of_text>`, its words' ids, `<end_of_text>`, then zeros up to the
context; a phrase with more than 30 word pieces keeps its first 30 and ends with
`<end_of_text>` (`Tokens.truncated` says which phrases lost words).

The vocabulary (`bpe_simple_vocab_16e6.txt.gz`, OpenAI CLIP's, MIT licence in
`LICENSE-CLIP.txt` beside it) ships inside this package, and its sha256 is checked when it
is read: a missing or altered file is a `VocabularyError` with a one-line message.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import heapq
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from model.sam3.phrase_cleaning import WHITESPACE, clean_phrase

VOCABULARY_PATH = Path(__file__).with_name("bpe_simple_vocab_16e6.txt.gz")
VOCABULARY_SHA256 = "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"
# The merges the vocabulary's ids count: 49,408 ids = 256 bytes + 256 bytes ending a
# word + these merges + the two special tokens.
_MERGES = 49152 - 256 - 2
CONTEXT_LENGTH = 32
PAD_ID = 0
START_OF_TEXT = "<start_of_text>"
END_OF_TEXT = "<end_of_text>"
_SPECIALS = (START_OF_TEXT, END_OF_TEXT)
_CONTRACTIONS = ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d")
_END = "</w>"
# Words of at most this many characters keep their ids, up to this many words.
_CACHED_WORD = 64
_CACHED_WORDS = 100_000


class VocabularyError(ValueError):
    """The vocabulary file is missing, unreadable or not the one SAM 3 was trained with."""


class PhraseError(ValueError):
    """A phrase that cannot be a prompt (empty once cleaned, or not text)."""


def _byte_symbols() -> list[str]:
    """The printable character each byte value stands for in the vocabulary.

    Bytes of printable Latin-1 characters ("!" to "~", "¡" to "¬", "®" to "ÿ") stand for
    themselves; the others (whitespace, controls, the soft hyphen) take the code points
    from 256 up, in byte order.
    """
    symbols: list[str] = [""] * 256
    spare = 256
    for byte in range(256):
        if byte in _PRINTABLE_BYTES:
            symbols[byte] = chr(byte)
        else:
            symbols[byte] = chr(spare)
            spare += 1
    return symbols


_PRINTABLE_BYTES = (*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100))
_BYTE_SYMBOLS = _byte_symbols()
# The vocabulary's first 256 ids: the printable bytes' symbols, then the others'.
_FIRST_SYMBOLS = [_BYTE_SYMBOLS[b] for b in _PRINTABLE_BYTES] + [
    _BYTE_SYMBOLS[b] for b in range(256) if b not in _PRINTABLE_BYTES
]


def _char_kind(char: str) -> str:
    """How the word pattern sees a character: "L" letter, "N" number, "S" whitespace,
    "P" another character (punctuation, symbols, marks), "" none of these.

    The pattern's "other" class is case-insensitive and so excludes a character whose
    other case is a letter or number; of the code points that are neither, only the
    Greek ypogegrammeni (U+0345, upper case Iota) is such, and it belongs to no word.
    """
    category = unicodedata.category(char)[0]
    if category in "LN":
        return category
    if char in WHITESPACE:
        return "S"
    for other in (char.upper(), char.lower()):
        if len(other) == 1 and unicodedata.category(other)[0] in "LN":
            return ""
    return "P"


def _literal_at(text: str, pos: int, literal: str) -> bool:
    """Whether `literal` is at `text[pos:]` as the word pattern matches it: ignoring
    case, which in lower-cased text only makes the long s "ſ" an "s"."""
    if pos + len(literal) > len(text):
        return False
    for i, expected in enumerate(literal):
        char = text[pos + i]
        if char != expected and not (expected == "s" and char == "\u017f"):
            return False
    return True


def split_words(text: str) -> Iterator[str]:
    """The words of cleaned `text`, in order (see the module docstring)."""
    pos, n = 0, len(text)
    while pos < n:
        char = text[pos]
        if char in "<'":
            literal = next(
                (w for w in (*_SPECIALS, *_CONTRACTIONS) if _literal_at(text, pos, w)), None
            )
            if literal is not None:
                yield text[pos : pos + len(literal)]
                pos += len(literal)
                continue
        kind = _char_kind(char)
        if kind == "N":
            yield char  # digits are words of their own
        if kind in ("N", "S", ""):
            pos += 1
            continue
        end = pos + 1
        while end < n and _char_kind(text[end]) == kind:
            end += 1
        yield text[pos:end]
        pos = end


@dataclass(frozen=True)
class Tokens:
    """Token ids of a batch of phrases.

    ids: (B, context) int64; `<start_of_text>`, the phrase, `<end_of_text>`, then `PAD_ID`.
    truncated: per phrase, whether words past the context were dropped.
    """

    ids: torch.Tensor
    truncated: tuple[bool, ...]

    @property
    def padding(self) -> torch.Tensor:
        """(B, context) bool, True at padding: the attention mask SAM 3 derives from the
        ids (`ids == PAD_ID`)."""
        return self.ids == PAD_ID


class Tokenizer:
    """CLIP's byte-pair tokenizer with SAM 3's settings (module docstring)."""

    def __init__(
        self, *, path: Path | str = VOCABULARY_PATH, context_length: int = CONTEXT_LENGTH
    ) -> None:
        if context_length < 3:
            raise ValueError(f"context_length must be at least 3, got {context_length}")
        self.context_length = context_length
        self._ranks, self._ids = _load_vocabulary(str(path))
        self.vocab_size = len(self._ids)
        self.sot_id = self._ids[START_OF_TEXT]
        self.eot_id = self._ids[END_OF_TEXT]
        self._symbols = {i: s for s, i in self._ids.items()}
        self._word_cache: dict[str, tuple[int, ...]] = {}

    def word_ids(self, word: str) -> tuple[int, ...]:
        """Ids of one word of `split_words`."""
        cached = self._word_cache.get(word)
        if cached is not None:
            return cached
        if word in _SPECIALS:
            ids: tuple[int, ...] = (self._ids[word],)
        else:
            symbols = [_BYTE_SYMBOLS[b] for b in word.encode("utf-8")]
            symbols[-1] += _END
            ids = tuple(self._ids[s] for s in self._merge(symbols))
        if len(word) <= _CACHED_WORD and len(self._word_cache) < _CACHED_WORDS:
            self._word_cache[word] = ids
        return ids

    def _merge(self, symbols: list[str]) -> list[str]:
        """Merge adjacent pairs, the lowest-ranked first (left to right among equals),
        until no pair has a rank.

        A heap of candidate pairs over a linked list of symbols: O(n log n) in a word's
        length, so a word of 100,000 characters takes a fraction of a second where
        merging one rank at a time over the whole word would take hours. Equal to the
        rank-at-a-time order because a merge's pieces are made by lower-ranked merges
        (a test checks this of the vocabulary).
        """
        n = len(symbols)
        if n < 2:
            return symbols
        ranks = self._ranks
        word: list[str | None] = list(symbols)
        after = [*range(1, n), -1]
        before = list(range(-1, n - 1))
        heap = [
            (rank, i, word[i], word[i + 1])
            for i in range(n - 1)
            if (rank := ranks.get((symbols[i], symbols[i + 1]))) is not None
        ]
        heapq.heapify(heap)
        while heap:
            _, i, first, second = heapq.heappop(heap)
            j = after[i]
            if j < 0 or word[i] != first or word[j] != second:
                continue  # a pair an earlier merge changed
            word[i] = merged = first + second
            word[j] = None
            k = after[i] = after[j]
            if k >= 0:
                before[k] = i
                rank = ranks.get((merged, word[k]))
                if rank is not None:
                    heapq.heappush(heap, (rank, i, merged, word[k]))
            h = before[i]
            if h >= 0:
                rank = ranks.get((word[h], merged))
                if rank is not None:
                    heapq.heappush(heap, (rank, h, word[h], merged))
        return [s for s in word if s is not None]

    def encode(self, phrase: str, limit: int | None = None) -> list[int]:
        """Ids of `phrase`'s words, without the special tokens; with `limit`, stops once it
        has more than `limit` (so a long phrase is not tokenized past its context)."""
        ids: list[int] = []
        for word in split_words(clean_phrase(phrase)):
            ids.extend(self.word_ids(word))
            if limit is not None and len(ids) > limit:
                break
        return ids

    def __call__(self, phrases: str | Sequence[str]) -> Tokens:
        """Token ids of each phrase, (B, context) (`Tokens`).

        A phrase that is not a string or has nothing left once cleaned (empty, only
        whitespace or invisible characters) is a `PhraseError`.
        """
        if isinstance(phrases, str):
            phrases = [phrases]
        room = self.context_length - 2
        ids = torch.full((len(phrases), self.context_length), PAD_ID, dtype=torch.long)
        truncated = []
        for row, phrase in enumerate(phrases):
            if not isinstance(phrase, str):
                raise PhraseError(f"a phrase must be text, got {type(phrase).__name__}")
            words = self.encode(phrase, limit=room)
            if not words:
                raise PhraseError(f"empty phrase {_quoted(phrase)}: give a few words to find")
            truncated.append(len(words) > room)
            tokens = [self.sot_id, *words[:room], self.eot_id]
            ids[row, : len(tokens)] = torch.tensor(tokens)
        return Tokens(ids=ids, truncated=tuple(truncated))

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """The text of one row of ids, words separated by a space (what a truncated
        phrase kept): up to its `<end_of_text>`, or without the padding after its last
        word where it has none; special tokens left out."""
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        if self.eot_id in ids:
            ids = ids[: ids.index(self.eot_id)]
        while ids and ids[-1] == PAD_ID:
            ids.pop()
        text = "".join(self._symbols[i] for i in ids if i not in (self.sot_id, self.eot_id))
        raw = bytes(_SYMBOL_BYTES[c] for c in text.replace(_END, " "))
        return raw.decode("utf-8", errors="replace").strip()


_SYMBOL_BYTES = {s: b for b, s in enumerate(_BYTE_SYMBOLS)} | {" ": 0x20}


def _quoted(phrase: str) -> str:
    shown = repr(phrase[:40])
    return shown + ("..." if len(phrase) > 40 else "")


@functools.lru_cache(maxsize=2)
def _load_vocabulary(path: str) -> tuple[dict[tuple[str, ...], int], dict[str, int]]:
    """(merge ranks, ids by symbol) from the vocabulary file, its sha256 checked."""
    file = Path(path)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise VocabularyError(
            f"SAM 3 tokenizer vocabulary {file} cannot be read ({exc.strerror or exc})"
        ) from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != VOCABULARY_SHA256:
        raise VocabularyError(
            f"SAM 3 tokenizer vocabulary {file} is altered: sha256 {digest[:12]}..., "
            f"expected {VOCABULARY_SHA256[:12]}..."
        )
    lines = gzip.decompress(data).decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : 1 + _MERGES]]
    symbols = _FIRST_SYMBOLS + [s + _END for s in _FIRST_SYMBOLS]
    symbols += ["".join(m) for m in merges] + list(_SPECIALS)
    ranks = {m: rank for rank, m in enumerate(merges)}
    return ranks, {s: i for i, s in enumerate(symbols)}
