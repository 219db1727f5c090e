"""The rota as plain, immutable values. Built by `oncall.parse.parse_rota`; no behaviour here
beyond lookups. All datetimes are timezone-aware."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

NOTIFY_METHODS = ("sms", "call")


@dataclass(frozen=True)
class Staff:
    """A person who can be paged. `phone` is E.164 (``"+353861234567"``)."""

    id: str
    name: str
    phone: str
    languages: tuple[str, ...] = ()  # ISO 639-1 codes
    notify: tuple[str, ...] = ("sms",)  # subset of NOTIFY_METHODS, in the order written
    remind: bool = True  # an SMS before each shift (`remind: false` opts out)


@dataclass(frozen=True)
class Rotation:
    """Members take turns: member k mod n is on call from ``handoff + k*shift`` (k may be negative).

    Shifts that are a whole number of days step in local wall-clock time of the rota's zone
    (09:00 stays 09:00 across DST); shorter or fractional-day shifts step in absolute time.
    """

    name: str
    members: tuple[str, ...]
    shift: timedelta
    handoff: datetime  # aware, in the rota's zone unless written with an offset


@dataclass(frozen=True)
class Override:
    """`staff` replaces whoever is on call for `rotation` during [start, end)."""

    rotation: str
    staff: str
    start: datetime  # aware
    end: datetime  # aware, after start
    note: str = ""
    line: int = 0  # line in the rota file, for messages


@dataclass(frozen=True)
class Level:
    """One escalation level: page `targets` (rotation names and staff ids, as written), then
    wait `wait` for an acknowledgement before the next level."""

    targets: tuple[str, ...]
    wait: timedelta


@dataclass(frozen=True)
class Rota:
    """A validated rota. `fallback` is never empty; `escalation` has at least one level."""

    timezone: ZoneInfo
    default_region: str | None
    staff: dict[str, Staff]
    rotations: dict[str, Rotation]
    overrides: tuple[Override, ...]
    escalation: tuple[Level, ...]
    repeat: int
    fallback: tuple[str, ...]
    # who coordinates the line (`coordinators: [fiona]`): told what concerns the whole line;
    # may be empty, then the fallback contacts are told instead (`coordinators_or_fallback`)
    coordinators: tuple[str, ...] = ()

    def coordinators_or_fallback(self) -> tuple[str, ...]:
        return self.coordinators or self.fallback

    def staff_by_phone(self, e164: str) -> Staff | None:
        """The staff member whose phone is `e164` (exact E.164 match), or None."""
        for person in self.staff.values():
            if person.phone == e164:
                return person
        return None
