"""Which language a `/help` page speaks: `?lang=` (or the form's `lang`), else the browser's
Accept-Language, else the hotline's first language; always one of `hotline.languages`."""

from __future__ import annotations

from flask import current_app, g, request

RIGHT_TO_LEFT = frozenset({"ar", "fa", "he", "ur"})
# each language named in itself, so a reader finds theirs whatever the page's language
NATIVE = {
    "en": "English",
    "fr": "Français",
    "es": "Español",
    "ru": "Русский",
    "ar": "العربية",
    "fa": "فارسی",
    "pt": "Português",
    "tr": "Türkçe",
    "uk": "Українська",
}


def offered() -> tuple[str, ...]:
    return current_app.extensions["hotline"].settings.languages


def choose() -> str:
    """The page's language for this request (remembered on `g`)."""
    if "help_lang" not in g:
        languages = offered()
        asked = (request.values.get("lang") or "").strip().lower()
        if asked in languages:
            g.help_lang = asked
        else:
            g.help_lang = request.accept_languages.best_match(languages) or languages[0]
    return g.help_lang


def current_language() -> str:
    """Flask-Babel's locale selector."""
    return choose()


def direction(language: str) -> str:
    return "rtl" if language in RIGHT_TO_LEFT else "ltr"


def switcher() -> list[tuple[str, str]]:
    """(code, name in its own language) for every hotline language, in the configured order."""
    return [(code, NATIVE.get(code, code)) for code in offered()]
