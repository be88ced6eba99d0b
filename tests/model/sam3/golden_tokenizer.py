"""Golden token ids from SAM 3's tokenizer (`sam3.model.tokenizer_ve.SimpleTokenizer`).

`make()` runs the oracle on `PHRASES` (typed phrases of every kind a person might give:
ASCII, accents, CJK, emoji, HTML entities, whitespace, control characters, right-to-left
scripts, truncation), on `long_phrase()` (100,000 characters) and on `random_phrases()`
(random text from many Unicode blocks and snippets of markup). Phrases are stored as code
points (`codepoints`, split at `offsets`).

Random text can look like mojibake, which the oracle's `ftfy` repairs and ours does not
(`model.sam3.phrase_cleaning`): for it the fixture holds the oracle's ids with ftfy's
mojibake repair turned off (`random_ids`) and says where turning it on changes them
(`random_repaired`).
"""

from __future__ import annotations

import contextlib
import functools
import random
from collections.abc import Iterator

import torch

from model.sam3.tokenizer import CONTEXT_LENGTH, VOCABULARY_PATH

PHRASES: tuple[str, ...] = (
    # ASCII
    "a red bicycle",
    "yellow school bus",
    "person",
    "the cat's toy",
    "don't",
    "it'll be we've I'm you're he'd",
    "rock'n'roll",
    "traffic light (green)",
    "car #3",
    "C-3PO and R2-D2",
    "a dog & a cat",
    "50% off sign",
    "U.S.A. flag",
    "hello!!!",
    "...",
    "a/b testing",
    "x<y",
    "<b>bold</b> box",
    "UPPERCASE WORDS",
    "MiXeD CaSe",
    "123 456 7890",
    "3.14159",
    "1st place",
    "'''s",
    "@user #hashtag $5 ~tilde `back` ^caret_under|pipe\\slash",
    # whitespace
    "cat\tdog",
    "  leading and trailing  ",
    "many     spaces   between",
    "newline\nseparated\nwords",
    "windows\r\nline\rends",
    "a\u00a0no-break space",
    "em\u2003space and thin\u2009space",
    "ideographic\u3000space",
    "\u2028line\u2029paragraph",
    "tab\x0bvertical\x0cform feed",
    # accents and other Latin, Greek, Cyrillic
    "café",
    "crème brûlée",
    "nai\u0308ve e\u0301clair",
    "São Paulo",
    "SÃO PAULO",
    "Zürich",
    "Ærøskøbing",
    "Łódź",
    "İstanbul",
    "ŞEHİR",
    "Straße Fußball",
    "ǅemal ĳssel Ǳ",
    "ﬁsh ﬂute ﬀ ﬆ",
    "ſtop 'ſ 'S",
    "ᾼ ᾳ",
    "Ελληνικά Ωμέγα",
    "привет мир",
    "Україна",
    "Œuvre ŠKODA",
    "¿qué? ¡hola!",
    # CJK
    "東京タワー",
    "自行车",
    "고양이",
    "ラーメン",
    "ｶﾀｶﾅ",
    "ＬＯＵＤ　ＮＯＩＳＥＳ",
    "中文，标点。",
    "漢字123",
    # emoji
    "🐶 dog",
    "🚌",
    "👩\u200d👩\u200d👧 family",
    "🏳️\u200d🌈 flag",
    "👍🏽 thumbs",
    "🇫🇷",
    "🏴\U000e0067\U000e0062\U000e0077\U000e006c\U000e0073\U000e007f wales",
    "❤️ heart",
    "1️⃣ keycap",
    # HTML entities
    "&amp;",
    "cats &amp; dogs",
    "&lt;b&gt;",
    "caf&eacute;",
    "P&EACUTE;REZ",
    "&#x2019;s",
    "it&#8217;s",
    "wait&hellip;",
    "&nbsp;cat",
    "&notin; this&not that",
    "&amp;amp;",
    "&#128;",
    "&#xD800;",
    "&#x1F600;",
    "x < y &amp; z",
    "first line\n&amp; after a <",
    "&ZZZ;",
    "&#99999999;",
    "&NTILDE; &nTILDE;",
    "BUNDESSTRA&SZLIG;E",
    # control characters
    "\x00cat",
    "dog\x07",
    "\x1b[31mred\x1b[0m car",
    "\x7fdel",
    "\x85next",
    "\x80euro \x9d",
    "zero\u200bwidth",
    "joiner\u200dx",
    "\ufeffbom",
    "\ufffcobj",
    "\u206adeprecated",
    "\x1c\x1d separators",
    "soft\u00adhyphen",
    "lone surrogate \ud83d",
    "pair \ud83d\ude00",
    "\udc00\ud800 reversed",
    # right-to-left
    "שלום עולם",
    "مرحبا بالعالم",
    "\u202eevil\u202c text",
    "\u200fRLM mark",
    "עִבְרִית",
    "سيارة حمراء",
    "mixed English עברית 123",
    # special tokens written out, numbers, symbols
    "<start_of_text>",
    "<end_of_text> x",
    "<ſtart_of_text>",
    "Ⅻ ①②③ ²³ ½",
    "µm °C ₹100 €5 £3",
    "©2024 ™ ®",
    # long words and truncation
    "a" * 100,
    "supercalifragilisticexpialidocious",
    "antidisestablishmentarianism",
    "word " * 40,
    " ".join(str(i) for i in range(29)),
    " ".join(["w"] * 30),
    " ".join(["w"] * 31),
)

# Unicode blocks random text is drawn from (start, stop).
_BLOCKS = (
    (0x20, 0x7F),
    (0x00, 0x20),
    (0x80, 0x100),
    (0x100, 0x250),
    (0x300, 0x370),
    (0x370, 0x400),
    (0x400, 0x500),
    (0x590, 0x600),
    (0x600, 0x700),
    (0x2000, 0x2070),
    (0x3000, 0x3100),
    (0x4E00, 0x4F00),
    (0xAC00, 0xAD00),
    (0xD800, 0xE000),
    (0xFB00, 0xFB10),
    (0xFE00, 0xFE10),
    (0xFF00, 0xFFF0),
    (0x1F300, 0x1F700),
    (0xE0000, 0xE0080),
)
_SNIPPETS = (
    "&amp;", "&lt;", "&#x2019;", "&EACUTE;", "&nbsp;", "&#65;", "&#0;", "&#x1F600;",
    "\x1b[1m", "\r\n", "<", " ", "  ", "\t", "'s", "'ll", "&amp;amp;", "&not", "&#128;",
)  # fmt: skip


def random_phrases(count: int = 400, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    phrases = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(1, 8)):
            if rng.random() < 0.3:
                parts.append(rng.choice(_SNIPPETS))
            else:
                start, stop = rng.choice(_BLOCKS)
                length = rng.randint(1, 6)
                parts.append("".join(chr(rng.randrange(start, stop)) for _ in range(length)))
        phrases.append("".join(parts))
    return phrases


def long_phrase(length: int = 100_000) -> str:
    """`length` characters of mixed text: many words, entities, CJK, emoji, controls."""
    unit = "yellow school bus &amp; café 東京タワー 🐶\u200d x\x07 \u202eשלום  "
    return (unit * (length // len(unit) + 1))[:length]


def pack(phrases: list[str]) -> dict[str, torch.Tensor]:
    """Phrases as code points (int32) and their offsets (int64, one more than phrases)."""
    offsets = [0]
    for p in phrases:
        offsets.append(offsets[-1] + len(p))
    points = [ord(c) for p in phrases for c in p]
    return {
        "codepoints": torch.tensor(points, dtype=torch.int32),
        "offsets": torch.tensor(offsets, dtype=torch.int64),
    }


def unpack(codepoints: torch.Tensor, offsets: torch.Tensor) -> list[str]:
    chars = "".join(map(chr, codepoints.tolist()))
    bounds = offsets.tolist()
    return [chars[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def oracle_tokenizer():  # noqa: ANN201 - the oracle's SimpleTokenizer
    from sam3_oracle import import_sam3

    import_sam3()
    from sam3.model.tokenizer_ve import SimpleTokenizer

    return SimpleTokenizer(bpe_path=str(VOCABULARY_PATH), context_length=CONTEXT_LENGTH)


@contextlib.contextmanager
def without_mojibake_repair() -> Iterator[None]:
    """The oracle's tokenizer with ftfy's mojibake repair (`fix_encoding`) turned off."""
    import types

    import ftfy
    from sam3.model import tokenizer_ve

    saved = tokenizer_ve.ftfy
    tokenizer_ve.ftfy = types.SimpleNamespace(
        fix_text=functools.partial(ftfy.fix_text, fix_encoding=False)
    )
    try:
        yield
    finally:
        tokenizer_ve.ftfy = saved


def make() -> dict[str, torch.Tensor]:
    tok = oracle_tokenizer()
    randoms = random_phrases()
    out = {f"phrases_{k}": v for k, v in pack(list(PHRASES)).items()}
    out["phrase_ids"] = tok(list(PHRASES)).to(torch.int32)
    out["long_ids"] = tok([long_phrase()]).to(torch.int32)
    out |= {f"random_{k}": v for k, v in pack(randoms).items()}
    repaired = tok(randoms)
    with without_mojibake_repair():
        out["random_ids"] = tok(randoms).to(torch.int32)
    out["random_repaired"] = (repaired != out["random_ids"]).any(dim=1)
    return out
