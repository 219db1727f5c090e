"""Text from outside, made safe to show to a person or a terminal.

A defender's message (or anyone's who knows the number) ends up in staff SMS, the console log
and `hotline incident`. Control characters there can rewrite a terminal (ESC sequences clear
the screen, recolour, retitle the window: `\\x1b[2J\\x1b[31mFAKE: #99 resolved`), and bidi
overrides reverse what a reader sees (U+202E makes `#17 ACK` read otherwise). Pure: no I/O.
"""

from __future__ import annotations

import re

# Bidi embeddings and overrides (U+202A-U+202E), isolates (U+2066-U+2069) and the invisible
# direction marks (U+200E, U+200F, U+061C): dropped. Arabic, Hebrew and Persian letters carry
# their own direction and read correctly without any of them; keeping the marks would leave a
# way to move digits and punctuation around an incident number. ZWJ/ZWNJ (U+200C, U+200D),
# which Persian spelling needs, are kept.
_BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
# Invisible characters that hide text from a reader: zero-width space, soft hyphen, word joiner
# and invisible operators, and the tag characters (U+E0000-U+E007F) that can carry a whole
# hidden sentence. (A subdivision flag emoji, which uses tags, shows as a plain black flag.)
_HIDDEN = "\u200b\u00ad\u2060\u2061\u2062\u2063\u2064\U000e0000-\U000e007f"
# C0 controls but tab and newline, DEL, C1 controls, the byte-order mark, the bidi set, and the
# hidden ones.
_DROP = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ufeff" + _BIDI + _HIDDEN + "]")
_NEWLINES = re.compile("\r\n|[\r\u2028\u2029\x85]")
# Where text is cut for an SMS: three dots, not the one-character ellipsis, which is not in the
# GSM-7 alphabet and would turn the whole SMS into UCS-2 (70 characters a segment, not 160).
ELLIPSIS = "..."


def clean_text(text: str | None, *, one_line: bool = False) -> str:
    """`text` without control characters or bidi controls; None gives "".

    Line breaks (`\\r\\n`, `\\r`, U+2028/U+2029, NEL) become `\\n` and tabs stay, unless
    `one_line`, where each becomes a space. Letters of every script, emoji, ZWJ and ZWNJ are
    left as they are.
    """
    if not text:
        return ""
    text = _NEWLINES.sub("\n", text)
    text = _DROP.sub("", text)
    if one_line:
        text = text.replace("\n", " ").replace("\t", " ")
    return text


def shorten(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, the cut marked with ELLIPSIS."""
    if len(text) <= limit:
        return text
    return text[: max(limit - len(ELLIPSIS), 0)].rstrip() + ELLIPSIS
