"""A check-in's deadline from what staff wrote, and duress words in what a defender wrote:
pure, no I/O."""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable
from datetime import UTC, datetime, time, timedelta, tzinfo

from oncall import format_duration
from routing.checkins.common import MAX_AHEAD, MIN_AHEAD, Refused
from routing.parse_commands import CheckinSpec
from routing.texts import local_time

log = logging.getLogger(__name__)


def deadline(spec: CheckinSpec, now: datetime, zone: tzinfo) -> datetime:
    """The instant (UTC) `spec` names, seen at `now` in the rota's `zone`.

    A duration counts from `now`. A time of day alone (`18:00`) is the next one strictly after
    `now` by the zone's wall clock, across daylight-saving changes; a wall time the clocks skip
    is read with the offset before the change (an hour later by the new clock), one they pass
    twice is the first. `today 9:00`, `tomorrow 9:00` and a dated time name one instant.
    Raises Refused when that instant has passed, is less than MIN_AHEAD or more than
    MAX_AHEAD away.
    """
    if spec.every is not None or spec.after is not None:
        at = now + (spec.every if spec.every is not None else spec.after)
    elif spec.clock is not None:
        local_now = now.astimezone(zone)
        day = spec.on or local_now.date() + timedelta(days=spec.day_offset or 0)
        at = datetime.combine(day, time(*spec.clock), tzinfo=zone)
        if at <= now:
            if spec.on is not None or spec.day_offset is not None:
                raise Refused(
                    f"{local_time(at, now, zone)} has passed (it is {local_time(now, now, zone)})"
                )
            at = datetime.combine(day + timedelta(days=1), time(*spec.clock), tzinfo=zone)
        at = at.astimezone(UTC)
    else:
        raise Refused("no time given")
    if at - now < MIN_AHEAD:
        raise Refused(f"a check-in must be at least {format_duration(MIN_AHEAD)} away")
    if at - now > MAX_AHEAD:
        raise Refused("a check-in may be at most 7 days away")
    return at


def fold(text: str) -> str:
    """`text` without case or accents: NFKD, combining marks dropped, casefolded."""
    return "".join(
        ch for ch in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(ch)
    )


def _tokens(text: str) -> list[str]:
    return re.findall(r"\w+", fold(text))


def has_duress_word(body: str, words: Iterable[str]) -> bool:
    """True when `body` holds one of `words` (each a word or a phrase) as whole words,
    ignoring case, accents and punctuation: "Tournesol!" matches "tournesol", "sunflowers"
    does not match "sunflower"."""
    tokens = _tokens(body or "")
    for phrase in words:
        wanted = _tokens(phrase)
        size = len(wanted)
        if size and any(tokens[i : i + size] == wanted for i in range(len(tokens) - size + 1)):
            return True
    return False
