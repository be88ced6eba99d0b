"""SAM 3's tokenizer (`model.sam3.tokenizer`, `model.sam3.phrase_cleaning`) against the
oracle's `SimpleTokenizer`: exact ids, from the golden fixture (CI) and live where
`sam3==0.1.4` is installed."""

from __future__ import annotations

import heapq
import random
import re
import shutil
import time
import unicodedata
from pathlib import Path

import pytest
import torch
from golden_tokenizer import (
    PHRASES,
    long_phrase,
    oracle_tokenizer,
    random_phrases,
    unpack,
    without_mojibake_repair,
)
from sam3_oracle import require_sam3

from model.sam3 import tokenizer as tokenizer_module
from model.sam3.phrase_cleaning import clean_phrase
from model.sam3.tokenizer import (
    CONTEXT_LENGTH,
    PAD_ID,
    VOCABULARY_PATH,
    VOCABULARY_SHA256,
    PhraseError,
    Tokenizer,
    VocabularyError,
    split_words,
)

FIXTURE = Path(__file__).parent / "fixtures" / "tokenizer.pt"
ROOT = Path(__file__).resolve().parents[3]
SOT, EOT = 49406, 49407


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return Tokenizer()


@pytest.fixture(scope="module")
def golden() -> dict[str, torch.Tensor]:
    return torch.load(FIXTURE, weights_only=True)


def _newer_unicode(phrase: str) -> bool:
    """Whether cleaning `phrase` leaves a code point this Python's Unicode tables do not
    know (`regex`, which the oracle splits words with, may know a newer Unicode)."""
    return any(unicodedata.category(c) == "Cn" for c in clean_phrase(phrase))


def _assert_same_ids(tok: Tokenizer, phrases: list[str], expected: torch.Tensor) -> int:
    """Ours equal `expected` (the oracle's ids) for every phrase; where the oracle gives
    only the start and end tokens, ours refuses the phrase. Returns how many phrases
    differ for holding a code point this Python's Unicode tables do not know (which the
    oracle's word pattern, from `regex` with a newer Unicode, may see as a letter)."""
    newer = 0
    for phrase, ids in zip(phrases, expected.long(), strict=True):
        if ids[1] == EOT and ids[2] == PAD_ID:
            with pytest.raises(PhraseError):
                tok([phrase])
            continue
        ours = tok([phrase]).ids[0]
        if not torch.equal(ours, ids):
            assert _newer_unicode(phrase), (ascii(phrase), ours.tolist(), ids.tolist())
            newer += 1
    return newer


# ------------------------------------------------------------------ golden (CI)


def test_golden_fixture_holds_the_phrases(golden):
    assert unpack(golden["phrases_codepoints"], golden["phrases_offsets"]) == list(PHRASES)
    assert unpack(golden["random_codepoints"], golden["random_offsets"]) == random_phrases()
    assert golden["phrase_ids"].shape == (len(PHRASES), CONTEXT_LENGTH)


def test_golden_phrases_exact_ids(tok, golden):
    ids = golden["phrase_ids"]
    # Not blank: real words, several truncated phrases, many distinct ids.
    assert (ids[:, 2] != 0).sum() > len(PHRASES) * 0.9
    assert (ids[:, -1] == EOT).sum() >= 3
    assert len(ids.unique()) > 300
    assert _assert_same_ids(tok, list(PHRASES), ids) == 0


def test_golden_long_phrase(tok, golden):
    start = time.perf_counter()
    tokens = tok([long_phrase()])
    assert time.perf_counter() - start < 2.0
    assert tokens.truncated == (True,)
    assert torch.equal(tokens.ids, golden["long_ids"].long())


def test_golden_random_text(tok, golden):
    """Random text from many Unicode blocks with markup snippets, against the oracle with
    ftfy's mojibake repair off (which ours does not do); a few phrases hold characters of
    a newer Unicode than this Python knows and may differ."""
    phrases = random_phrases()
    assert _assert_same_ids(tok, phrases, golden["random_ids"]) <= len(phrases) // 50
    # What mojibake repair would change: rare even in random text.
    assert golden["random_repaired"].sum() <= len(phrases) // 20


# ------------------------------------------------------------------ live oracle


@pytest.fixture(scope="module")
def oracle():
    require_sam3()
    return oracle_tokenizer()


def test_live_phrases_and_long_phrase(tok, oracle):
    phrases = [*PHRASES, long_phrase(), long_phrase(31_337)]
    assert _assert_same_ids(tok, phrases, oracle(phrases)) == 0


def test_live_random_text(tok, oracle):
    phrases = random_phrases(600, seed=1)
    with without_mojibake_repair():
        expected = oracle(phrases)
    assert _assert_same_ids(tok, phrases, expected) <= len(phrases) // 50


def test_live_cleaning_matches_ftfy(oracle):
    from sam3.model import tokenizer_ve

    for phrase in PHRASES:
        assert clean_phrase(phrase) == tokenizer_ve._clean_lower(phrase), ascii(phrase)
    with without_mojibake_repair():
        for phrase in random_phrases(1000, seed=2):
            assert clean_phrase(phrase) == tokenizer_ve._clean_lower(phrase), ascii(phrase)


def test_live_word_split_matches_pattern(oracle):
    import regex

    phrases = [clean_phrase(p) for p in (*PHRASES, *random_phrases(600, seed=3))]
    for text in phrases:
        if any(unicodedata.category(c) == "Cn" for c in text):
            continue
        assert list(split_words(text)) == regex.findall(oracle.pat, text), ascii(text)


def test_live_character_classes_over_all_code_points(oracle):
    """Letters, numbers, whitespace and the rest as the oracle's pattern sees them, for
    every code point of the planes Unicode assigns characters in (0-3 and 14; 4-13 are
    empty and 15-16 private use): the same wherever this Python's Unicode tables know
    the character."""
    import regex

    codes = [*range(0x40000), *range(0xE0000, 0xE1000)]
    text = "".join(map(chr, codes))
    oracle_kinds = [""] * len(codes)
    patterns = {"L": r"[\p{L}]", "N": r"[\p{N}]", "S": r"\s", "P": r"[^\s\p{L}\p{N}]"}
    for kind, pattern in patterns.items():
        for match in regex.finditer(pattern, text, regex.IGNORECASE):
            assert oracle_kinds[match.start()] == "", hex(codes[match.start()])
            oracle_kinds[match.start()] = kind
    ours = tokenizer_module._char_kind
    disagree = [c for c, kind in zip(codes, oracle_kinds, strict=True) if ours(chr(c)) != kind]
    known = [hex(c) for c in disagree if unicodedata.category(chr(c)) != "Cn"]
    assert not known, known[:20]
    assert oracle_kinds[0x345] == "" and oracle_kinds[0x1C] == "P"


# ------------------------------------------------------------------ vocabulary


def test_vocabulary_ships_in_the_package():
    assert VOCABULARY_PATH.parent == ROOT / "model" / "sam3"
    assert (VOCABULARY_PATH.parent / "LICENSE-CLIP.txt").is_file()
    assert VOCABULARY_PATH.stat().st_size == 1_356_917
    # Declared as package data, so an installed package has it too.
    declared = re.search(r'^"model\.sam3" = \[(.*)\]$', (ROOT / "pyproject.toml").read_text(), re.M)
    assert declared and VOCABULARY_PATH.name in declared[1] and "LICENSE-CLIP.txt" in declared[1]


def test_vocabulary_size_and_special_ids(tok):
    assert tok.vocab_size == 49408
    assert (tok.sot_id, tok.eot_id) == (SOT, EOT)


def test_missing_vocabulary_is_one_line(tmp_path):
    with pytest.raises(VocabularyError, match="cannot be read") as err:
        Tokenizer(path=tmp_path / "bpe_simple_vocab_16e6.txt.gz")
    assert "\n" not in str(err.value)


def test_altered_vocabulary_is_one_line(tmp_path):
    altered = tmp_path / "bpe_simple_vocab_16e6.txt.gz"
    shutil.copy(VOCABULARY_PATH, altered)
    data = bytearray(altered.read_bytes())
    data[1000] ^= 1
    altered.write_bytes(bytes(data))
    with pytest.raises(VocabularyError, match="altered") as err:
        Tokenizer(path=altered)
    assert "\n" not in str(err.value) and VOCABULARY_SHA256[:12] in str(err.value)


def test_merge_pieces_come_from_lower_ranked_merges(tok):
    """What makes the heap's merge order (`Tokenizer._merge`) the same as merging one
    rank at a time: every merge's two pieces exist before it."""
    made = {s: -1 for s in tok._ids if tok._ids[s] < 512}
    for (first, second), rank in sorted(tok._ranks.items(), key=lambda item: item[1]):
        assert made.get(first, rank) < rank and made.get(second, rank) < rank
        made.setdefault(first + second, rank)


def _merge_rank_at_a_time(ranks: dict, symbols: list[str]) -> list[str]:
    """The textbook order: merge every occurrence of the lowest-ranked pair, repeat."""
    while len(symbols) > 1:
        pairs = [(ranks[p], p) for p in zip(symbols, symbols[1:], strict=False) if p in ranks]
        if not pairs:
            break
        _, (first, second) = min(pairs)
        merged, i = [], 0
        while i < len(symbols):
            if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == (first, second):
                merged.append(first + second)
                i += 2
            else:
                merged.append(symbols[i])
                i += 1
        symbols = merged
    return symbols


def test_heap_merge_equals_rank_at_a_time(tok):
    rng = random.Random(0)
    letters = "etaoinshrdlucmfwypvbgkqjxz"
    words = []
    for _ in range(500):
        alphabet = letters[: rng.randint(3, 26)]
        words.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))))
    words += ["aaaaaaaaaaaaaaaaa", "abababababab", "mississippi", "supercalifragilistic"]
    for word in words:
        symbols = [tokenizer_module._BYTE_SYMBOLS[b] for b in word.encode()]
        symbols[-1] += "</w>"
        assert tok._merge(list(symbols)) == _merge_rank_at_a_time(tok._ranks, list(symbols))
    assert heapq  # the order under test is a heap's


# ------------------------------------------------------------------ phrases


@pytest.mark.parametrize(
    "phrase", ["", " ", "\t\n  \u3000", "\x00\x01\x7f", "\ufeff\u2028", " " * 100_000]
)
def test_empty_phrases_are_refused_in_one_line(tok, phrase):
    with pytest.raises(PhraseError, match="empty phrase") as err:
        tok([phrase])
    assert "\n" not in str(err.value) and len(str(err.value)) < 120


@pytest.mark.parametrize("phrase", [None, b"bytes", 5])
def test_phrases_must_be_text(tok, phrase):
    with pytest.raises(PhraseError, match="must be text"):
        tok([phrase])


def test_phrase_errors_are_value_errors():
    assert issubclass(PhraseError, ValueError) and issubclass(VocabularyError, ValueError)


def test_truncation_to_the_context(tok):
    fits = tok([" ".join(["w"] * 30)])
    over = tok([" ".join(["w"] * 31), "a red bicycle"])
    assert fits.truncated == (False,) and over.truncated == (True, False)
    assert fits.ids[0, 31] == EOT and torch.equal(fits.ids, over.ids[:1])
    kept = tok.decode(over.ids[0])
    assert kept == " ".join(["w"] * 30)
    assert tok.decode(over.ids[1]) == "a red bicycle"


def test_padding_is_zero_after_the_end(tok):
    tokens = tok(["a red bicycle", "yellow school bus"])
    ends = (tokens.ids == EOT).int().argmax(dim=1)
    for row, end in enumerate(ends.tolist()):
        assert tokens.ids[row, 0] == SOT
        assert (tokens.ids[row, end + 1 :] == PAD_ID).all()
        assert not tokens.padding[row, : end + 1].any() and tokens.padding[row, end + 1 :].all()


def test_hundred_thousand_character_words_are_fast(tok):
    rng = random.Random(0)
    word = "".join(rng.choice("abcdefghijklmnopqrstuvwxyzéß東") for _ in range(100_000))
    for phrase in (word, "!?" * 50_000, "\x07" * 99_999 + "x"):
        start = time.perf_counter()
        tokens = tok([phrase])
        assert time.perf_counter() - start < 3.0
        assert tokens.ids[0, 1] != EOT
