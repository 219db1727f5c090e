"""Wall-clock times in a rota's zone.

A naive local time is attached to the zone with ``fold=0`` (zoneinfo semantics):
- an ambiguous time (the repeated hour when clocks go back) means its first occurrence;
- a nonexistent time (the hour skipped when clocks go forward) is read with the offset in force
  before the change, so it resolves forward: 01:30 on Dublin's spring-forward night is 02:30 IST.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo

_SHAPE = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}.*")
EXAMPLE = "'YYYY-MM-DD HH:MM', e.g. '2026-11-02 09:00', or ISO 8601 with an offset"


def localize(naive: datetime, zone: tzinfo) -> datetime:
    """Wall-clock time `naive` attached to `zone` with ``fold=0``.

    The wall time is kept as written (a rotation anchored at 02:30 hands off at 02:30 on every
    day that has one); on a spring-forward day the instant is the one described above.
    """
    return naive.replace(tzinfo=zone, fold=0)


def parse_local_datetime(text: str, zone: tzinfo) -> datetime:
    """Parse ``"2026-11-02 09:00"`` as wall-clock time in `zone`, or an ISO 8601 datetime with an
    offset (``"2026-11-02T09:00+01:00"``, ``"...Z"``) as that instant.

    Returns an aware datetime (in `zone` for local times). Raises ValueError saying what is
    expected when `text` is not a date and time.
    """
    text = text.strip()
    if not _SHAPE.fullmatch(text):
        raise ValueError(f"invalid date and time {text!r}: expected {EXAMPLE}")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"invalid date and time {text!r}: expected {EXAMPLE}") from None
    if parsed.tzinfo is None:
        return localize(parsed, zone)
    return parsed


def as_utc(at: datetime) -> datetime:
    """`at` converted to UTC. Raises ValueError for a naive datetime.

    Comparing or subtracting aware datetimes that share a tzinfo ignores the offset (and so DST
    folds), so all on-call arithmetic is done on UTC values from here.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive datetime {at.isoformat()}: pass a timezone-aware instant")
    return at.astimezone(UTC)
