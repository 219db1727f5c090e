"""A cheap first guess at a message's language, among the hotline's configured ones.

Staff can always answer in any language; the guess only orders who is paged first and picks
the auto-reply. Scripts decide at once (Arabic, Cyrillic, Persian letters); Latin-script
languages are scored by a few very common words. No match: the hotline's default language.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

COMMON_WORDS = {
    "en": {"the", "i", "my", "help", "we", "is", "are", "police", "please", "and", "me", "you"},
    "fr": {
        "je",
        "le",
        "la",
        "les",
        "nous",
        "est",
        "aide",
        "aidez",
        "moi",
        "police",
        "et",
        "un",
        "une",
        "arrêté",
        "svp",
        "pas",
        "suis",
    },
    "es": {
        "el",
        "la",
        "los",
        "ayuda",
        "estoy",
        "policía",
        "por",
        "favor",
        "y",
        "me",
        "nos",
        "soy",
        "detenido",
        "una",
        "que",
    },
    "pt": {"o", "os", "ajuda", "estou", "polícia", "por", "favor", "não", "nós", "uma", "que"},
    "tr": {"ve", "bir", "yardım", "polis", "lütfen", "ben", "biz"},
}
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def guess_language(text: str, languages: Sequence[str]) -> str:
    """One of `languages` (the first is the default)."""
    default = languages[0]
    if not text:
        return default
    if re.search(r"[\u0600-\u06FF]", text):
        persian = re.search(r"[پچژگک]", text)
        for code in ("fa", "ar") if persian else ("ar", "fa"):
            if code in languages:
                return code
    if re.search(r"[\u0400-\u04FF]", text):
        for code in ("ru", "uk"):
            if code in languages:
                return code
    words = [w.lower() for w in _WORD.findall(text)]
    scores = {code: sum(w in COMMON_WORDS.get(code, ()) for w in words) for code in languages}
    best = max(languages, key=lambda code: scores[code])
    return best if scores[best] > 0 and scores[best] > scores.get(default, 0) else default
