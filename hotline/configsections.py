"""config.yaml, one parser per section: each takes the section as YAML gave it and the file's
name, and returns the section's values checked, or raises SettingsError with one line naming
the key and the fix. `hotline.settings.load_settings` puts them together with the environment.

The web form's section (off unless enabled; limits count everyone together, never per IP
address: defenders share Tor exits, and the hotline keeps no addresses):

```yaml
web_form:
  enabled: true
  submit_limit: 300/minute     # ceiling of new conversations, all senders together
  lookup_limit: 600/minute     # ceiling of receipt look-ups (and messages written on them)
  receipt_limit: 10/minute     # look-ups of any one receipt
```
Limits are counted for everyone together, never per IP address: defenders share Tor exits,
and the hotline keeps no addresses. A bad value stops start-up with one line (SettingsError).
"""

from __future__ import annotations

import difflib
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from limits import parse as parse_rate

from oncall import parse_duration
from oncall.phones import e164

HOTLINE_KEYS = ("number", "whatsapp", "languages", "auto_reply", "reveal_numbers")
CHECKIN_KEYS = ("duress_words",)


class SettingsError(Exception):
    """A setting is missing or wrong; the message names the key and the fix."""


@dataclass(frozen=True)
class HotlineSection:
    """`hotline:`: the Twilio numbers, the languages and what a defender is told."""

    number: str
    whatsapp: str | None
    languages: tuple[str, ...]
    auto_reply: bool
    reveal_numbers: bool


def hotline_section(section: Any, name: str) -> HotlineSection:
    if not isinstance(section, dict):
        raise SettingsError(f"{name}: hotline: missing; add a 'hotline:' section with 'number:'")
    reject_unknown(section, HOTLINE_KEYS, name, "hotline.")
    whatsapp = section.get("whatsapp")
    if whatsapp is not None:
        raw = str(whatsapp).removeprefix("whatsapp:")
        whatsapp = "whatsapp:" + phone(raw, name, "hotline.whatsapp")
    languages = section.get("languages", ["en"])
    if (
        not isinstance(languages, list)
        or not languages
        or not all(isinstance(c, str) and len(c) == 2 and c.isalpha() for c in languages)
    ):
        raise SettingsError(
            f"{name}: hotline.languages: expected a non-empty list of two-letter codes, "
            "e.g. [en, fr, es]"
        )
    return HotlineSection(
        number=phone(section.get("number"), name, "hotline.number"),
        whatsapp=whatsapp,
        languages=tuple(code.lower() for code in languages),
        auto_reply=boolean(section.get("auto_reply", True), name, "hotline.auto_reply"),
        reveal_numbers=boolean(
            section.get("reveal_numbers", False), name, "hotline.reveal_numbers"
        ),
    )


def whole_number(value: Any, name: str, key: str, low: int, high: int | None, what: str) -> int:
    """An integer (YAML's true and false are not) from `low` to `high` (None: no upper bound);
    `what` ends the error message, e.g. "of days >= 1"."""
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or value < low
        or (high is not None and value > high)
    ):
        raise SettingsError(f"{name}: {key}: expected a whole number {what}")
    return value


def boolean(value: Any, name: str, key: str) -> bool:
    if not isinstance(value, bool):
        raise SettingsError(f"{name}: {key}: expected true or false, got {value!r}")
    return value


def phone(value: Any, name: str, key: str) -> str:
    """A number of the hotline's own, in international format (E.164 once read)."""
    example = 'write it in international format, e.g. "+35312100489"'
    if value is None:
        raise SettingsError(f"{name}: {key}: missing; {example}")
    number = e164(str(value))
    if number is None:
        raise SettingsError(f"{name}: {key}: {value!r} is not a valid phone number; {example}")
    return number


def reject_unknown(mapping: dict, known: tuple[str, ...], name: str, prefix: str) -> None:
    for key in mapping:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = (
                f" (did you mean '{prefix}{close[0]}'?)"
                if close
                else f"; known: {', '.join(known)}"
            )
            raise SettingsError(f"{name}: unknown setting '{prefix}{key}'{hint}")


def duress_words(section: Any, name: str) -> tuple[str, ...]:
    """`checkins: {duress_words: [sunflower, "blue kite"]}`: words or short phrases of letters
    and digits, matched whole, ignoring case and accents (routing.checkins)."""
    if section is None:
        return ()
    if not isinstance(section, dict):
        raise SettingsError(
            f"{name}: checkins: expected a mapping, e.g. 'checkins: {{duress_words: [sunflower]}}'"
        )
    reject_unknown(section, CHECKIN_KEYS, name, "checkins.")
    words = section.get("duress_words") or []
    example = 'e.g. [sunflower, "blue kite"]'
    if not isinstance(words, list):
        raise SettingsError(f"{name}: checkins.duress_words: expected a list of words, {example}")
    seen: dict[str, str] = {}
    for word in words:
        if (
            not isinstance(word, str)
            or not 2 <= len(word.strip()) <= 40
            or not all(ch.isalnum() or ch in " '-" for ch in word.strip())
        ):
            raise SettingsError(
                f"{name}: checkins.duress_words: {word!r} is not a word; use letters and digits "
                f"(2 to 40 characters), {example}"
            )
        folded = "".join(
            ch
            for ch in unicodedata.normalize("NFKD", word.strip().casefold())
            if not unicodedata.combining(ch)
        )
        if folded in seen:
            raise SettingsError(
                f"{name}: checkins.duress_words: {word!r} repeats "
                f"{seen[folded]!r} (case and accents are ignored)"
            )
        seen[folded] = word.strip()
    return tuple(seen.values())


def reminders(section: Any, name: str) -> timedelta | None:
    """`reminders: {before: 30m}`; `before: off` (or `reminders: false`) sends none."""
    if section is False:
        return None
    if not isinstance(section, dict):
        raise SettingsError(
            f"{name}: reminders: expected a mapping, e.g. reminders: {{before: 30m}}"
        )
    reject_unknown(section, ("before",), name, "reminders.")
    raw = section.get("before", "30m")
    if raw is False or raw == "off":
        return None
    try:
        before = parse_duration(str(raw))
    except ValueError as exc:
        raise SettingsError(f"{name}: reminders.before: {exc}") from None
    if before <= timedelta(0) or before > timedelta(days=1):
        raise SettingsError(
            f"{name}: reminders.before: give a duration from 1s to 1d, e.g. 30m, or 'off'"
        )
    return before


def rate(raw: Any, name: str, key: str) -> str:
    """A rate limit as written ("30/minute"). Raises SettingsError."""
    try:
        parse_rate(str(raw))
    except ValueError:
        raise SettingsError(
            f"{name}: {key}: {raw!r} is not a rate; write it like '30/minute' or '500/hour'"
        ) from None
    return str(raw)


WEB_FORM_KEYS = ("enabled", "submit_limit", "lookup_limit", "receipt_limit")


@dataclass(frozen=True)
class WebFormSettings:
    enabled: bool = False
    submit_limit: str = "300/minute"
    lookup_limit: str = "600/minute"
    receipt_limit: str = "10/minute"


def web_form(value: Any, name: str) -> WebFormSettings:
    """`web_form:` as configured (None: the defaults, off). Raises SettingsError."""
    if value is None:
        return WebFormSettings()
    if not isinstance(value, dict):
        raise SettingsError(
            f"{name}: web_form: expected a mapping, e.g. 'web_form: {{enabled: true}}}}'"
        )
    reject_unknown(value, WEB_FORM_KEYS, name, "web_form.")
    limits = {
        key: rate(value.get(key, getattr(WebFormSettings, key)), name, f"web_form.{key}")
        for key in WEB_FORM_KEYS[1:]
    }
    return WebFormSettings(
        enabled=boolean(value.get("enabled", False), name, "web_form.enabled"), **limits
    )
