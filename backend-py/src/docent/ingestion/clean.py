"""Text normalisation applied to everything ingested, titles included."""

import re
import sys
import unicodedata
from functools import cache

# Invisible characters that carry no meaning for retrieval but can smuggle instructions
# past a reader: every format character (category Cf: zero-width, bidi controls, Unicode
# tags, ...), C0/C1 controls but tab and newline, variation selectors, the combining
# grapheme joiner, and the Hangul/Khmer fillers that render as nothing.
_EXTRA_INVISIBLE = "\u034f\u115f\u1160\u17b4\u17b5\u3164\uffa0\ufe00-\ufe0f\U000e0100-\U000e01ef\U0001d173-\U0001d17a"
_BLANK_RUNS = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")
_SPACES = re.compile(r"\s+")
MAX_TITLE = 500


@cache
def _invisible() -> re.Pattern[str]:
    # Built on first use (~0.3 s over every code point), not at import.
    hidden = "".join(
        re.escape(chr(code))
        for code in range(sys.maxunicode + 1)
        if unicodedata.category(chr(code)) in ("Cf", "Cc") and chr(code) not in "\t\n"
    )
    return re.compile(f"[{hidden}{_EXTRA_INVISIBLE}]")


def clean_text(text: str) -> str:
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _invisible().sub("", text)
    text = _TRAILING_SPACE.sub("\n", text)
    return _BLANK_RUNS.sub("\n\n", text).strip()


def clean_title(title: str) -> str:
    """A title on one line, without invisible characters, at most MAX_TITLE characters."""
    return _SPACES.sub(" ", clean_text(title)).strip()[:MAX_TITLE]


def has_invisible(text: str) -> bool:
    return _invisible().search(text) is not None
