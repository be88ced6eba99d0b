"""How SAM 3 cleans a noun phrase before tokenizing it, with the standard library only.

SAM 3's tokenizer (CLIP's) runs a phrase through `ftfy.fix_text`, unescapes HTML twice,
collapses whitespace and lower-cases it. Neither `ftfy` nor `regex` is a dependency of
ours, so this module does the same steps itself:

1. `fix_text`: ftfy 6's default fixes, applied to each line (a segment ends after each
   "\\n", or every million characters) until the line no longer changes:
   - HTML entities (`&amp;`, `&#x2019;`, `&EACUTE;`) decoded, only those that end in a
     semicolon, and none from the first line that holds a "<" on (ftfy's "auto": a "<"
     means the text is HTML, where entities are meant);
   - C1 control characters (U+0080-U+009F) read as the Windows-1252 bytes they were;
   - Latin ligatures (fi, ff, ...) split, full-width forms and the ideographic space
     replaced by their ordinary forms, curly quotes straightened, every line break made
     "\\n", UTF-16 surrogates paired (or replaced), ANSI terminal escapes and invisible
     control characters removed;
   - NFC normalisation.
2. HTML entities unescaped twice more, this time as `html.unescape` does (without
   semicolons too), and the ends stripped.
3. Runs of whitespace made one space, the ends stripped, lower case.

Not done: ftfy's mojibake repair (re-decoding text that looks like UTF-8 read in a
single-byte encoding, "cafÃ©" -> "café"). It only acts on text that its heuristics find
implausible as typed, which is not what a person types as a phrase; where it would act,
the phrase is tokenized as typed here, and the oracle tokenizes the repaired text. The
tests compare this module with ftfy on a broad set of phrases (ASCII, accents, CJK, emoji,
entities, whitespace, control characters, right-to-left scripts, 100,000 characters) and
on random text with the mojibake repair turned off on ftfy's side.
"""

from __future__ import annotations

import html
import html.entities
import re
import unicodedata

# ftfy fixes text in segments of at most this many characters (and at each line break).
_SEGMENT = 1_000_000

# Entities as ftfy decodes them: `&name;` for every HTML5 name that ends in a semicolon,
# `&NAME;` upper-cased for the lower-case names whose upper-case spelling is no entity
# of its own (decoding to the upper-case character), and numeric references.
_ENTITY_RE = re.compile(r"&#?[0-9A-Za-z]{1,24};")


def _entity_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for name, char in html.entities.html5.items():
        if not name.endswith(";"):
            continue
        table["&" + name] = char
        upper = "&" + name.upper()
        if name == name.lower() and html.unescape(upper) == upper:
            table[upper] = char.upper()
    return table


_ENTITIES = _entity_table()


def _entity(match: re.Match[str]) -> str:
    text = match.group(0)
    if text in _ENTITIES:
        return _ENTITIES[text]
    if text.startswith("&#"):
        decoded = html.unescape(text)
        # A numeric reference decoded only in part (its digits end before the ";") stays.
        return text if ";" in decoded else decoded
    return text


def _c1_table() -> dict[int, str]:
    """U+0080-U+009F as the Windows-1252 characters of those bytes (five have none)."""
    table: dict[int, str] = {}
    for code in range(0x80, 0xA0):
        try:
            table[code] = bytes([code]).decode("cp1252")
        except UnicodeDecodeError:
            continue
    return table


_C1 = _c1_table()

# Ligatures of Latin letters (and legacy digraphs) split into their letters.
_LIGATURES = str.maketrans(
    {
        "\u0132": "IJ",
        "\u0133": "ij",
        "\u0149": "\u02bcn",
        "\u01f1": "DZ",
        "\u01f2": "Dz",
        "\u01f3": "dz",
        "\u01c4": "D\u017d",
        "\u01c5": "D\u017e",
        "\u01c6": "d\u017e",
        "\u01c7": "LJ",
        "\u01c8": "Lj",
        "\u01c9": "lj",
        "\u01ca": "NJ",
        "\u01cb": "Nj",
        "\u01cc": "nj",
        "\ufb00": "ff",
        "\ufb01": "fi",
        "\ufb02": "fl",
        "\ufb03": "ffi",
        "\ufb04": "ffl",
        "\ufb05": "\u017ft",
        "\ufb06": "st",
    }
)


def _width_table() -> dict[int, str]:
    """Half- and full-width forms (U+FF01-U+FFEF) as their NFKC forms, U+3000 as a space."""
    table = {0x3000: " "}
    for code in range(0xFF01, 0xFFF0):
        normal = unicodedata.normalize("NFKC", chr(code))
        if normal != chr(code):
            table[code] = normal
    return table


_WIDTH = _width_table()
_QUOTES = str.maketrans(
    dict.fromkeys([0x02BC, *range(0x2018, 0x201C)], "'") | dict.fromkeys(range(0x201C, 0x2020), '"')
)
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_SURROGATE_PAIR_RE = re.compile("[\ud800-\udbff][\udc00-\udfff]")
_ANSI_RE = re.compile("\x1b\\[((?:\\d|;)*)([a-zA-Z])")
# Invisible controls: C0 but tab, line feed, form feed and carriage return; DEL; the
# deprecated Arabic format characters; interlinear annotation; the object replacement
# character; the byte-order mark.
_CONTROLS = dict.fromkeys(
    [*range(0x00, 0x09), 0x0B, *range(0x0E, 0x20), 0x7F, *range(0x206A, 0x2070), 0xFEFF]
    + list(range(0xFFF9, 0xFFFD))
)

# Whitespace as the tokenizer's pattern library (`regex`) defines it: Python's
# `str.isspace` but for the four information separators U+001C-U+001F. Every such
# character is below U+3001.
WHITESPACE = frozenset(chr(c) for c in range(0x3001) if chr(c).isspace()) - frozenset(
    "\x1c\x1d\x1e\x1f"
)
_WHITESPACE_RUN_RE = re.compile("[" + "".join(sorted(WHITESPACE)) + "]+")


def _pair(match: re.Match[str]) -> str:
    high, low = match.group(0)
    return chr(0x10000 + (ord(high) - 0xD800) * 0x400 + (ord(low) - 0xDC00))


def _fix_segment(text: str, unescape: bool) -> str:
    while True:
        before = text
        if unescape:
            text = _ENTITY_RE.sub(_entity, text)
        text = text.translate(_C1)
        text = text.translate(_LIGATURES)
        text = text.translate(_WIDTH)
        text = text.translate(_QUOTES)
        text = (
            text.replace("\r\n", "\n")
            .replace("\r", "\n")
            .replace("\u2028", "\n")
            .replace("\u2029", "\n")
            .replace("\u0085", "\n")
        )
        if _SURROGATE_RE.search(text):
            text = _SURROGATE_RE.sub("\ufffd", _SURROGATE_PAIR_RE.sub(_pair, text))
        text = _ANSI_RE.sub("", text)
        text = text.translate(_CONTROLS)
        text = unicodedata.normalize("NFC", text)
        if text == before:
            return text


def fix_text(text: str) -> str:
    """ftfy 6's `fix_text` at its defaults but for mojibake repair (module docstring)."""
    out = []
    unescape = True
    start = 0
    while start < len(text):
        end = text.find("\n", start) + 1 or len(text)
        end = min(end, start + _SEGMENT)
        segment = text[start:end]
        # Once a line holds a "<", entities stay as written from there on.
        unescape = unescape and "<" not in segment
        out.append(_fix_segment(segment, unescape))
        start = end
    return "".join(out)


def clean_phrase(text: str) -> str:
    """The text SAM 3's tokenizer splits into words: fixed, unescaped, whitespace
    collapsed, lower case (module docstring)."""
    text = html.unescape(html.unescape(fix_text(text))).strip()
    return _WHITESPACE_RUN_RE.sub(" ", text).strip().lower()
