"""The line at a glance (`hotline report`): counts and timings over a window, and the coverage
ahead, as one frozen value.

Read from the log only what is safe in an incident review (routing.tables): ids, channels,
instants, steps, event kinds. The queries name their columns, so no number, message text,
contact line or recording is ever loaded, not even encrypted. Staff ids and names come from
the rota (staff are not defenders); nothing of any defender is in a `Figures`.

`collect` takes `now` and the window; nothing here reads the clock. The coverage is
oncall.timeline's shifts and oncall.coverage's gaps, the very facts `hotline rota check` warns
about.

One module over 300 lines on purpose: `Figures` and the queries that fill it are read
together (each field is one query, named after it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from sqlmodel import Session, select

from oncall import Rota, coverage_gaps
from oncall.localtime import as_utc
from oncall.timeline import shifts_between
from routing.tables import Event, Incident, Page

CHANNELS = ("sms", "whatsapp", "voice", "web")
PERCENTILES = (50, 90, 99)
COVERAGE_DAYS = 14
# levels_needed keys besides "1", "2", ...: taken while the call rang through (a defender's
# call answered live, before any page), and not taken by anyone
BEFORE_PAGE = "before_page"
NOT_TAKEN = "not_taken"  # resolved without anyone taking it
BEING_PAGED = "being_paged"  # open, nobody has taken it yet: still being paged
ALARM_MISSED, ALARM_DURESS, CHECKIN_SET = "checkin_missed", "duress", "checkin_set"
# routing.checkins.miss: a miss raised on the defender's newer incident writes a second
# `checkin_missed` on the old one, whose detail ends "raised on #N". One miss, counted once.
RAISED_ELSEWHERE = "; raised on #"


@dataclass(frozen=True)
class Timing:
    """A distribution of durations in seconds: the sorted values and their summary.

    Percentiles are nearest-rank (the smallest value with at least p % of the values at or
    below it, so always an observed value); None when there are no values.
    """

    seconds: tuple[float, ...]

    @property
    def count(self) -> int:
        return len(self.seconds)

    def percentile(self, p: float) -> float | None:
        if not self.seconds:
            return None
        rank = max(1, math.ceil(p / 100 * len(self.seconds)))
        return self.seconds[rank - 1]

    @property
    def max(self) -> float | None:
        return self.seconds[-1] if self.seconds else None

    def summary(self) -> dict[str, float | int | None]:
        return {
            "count": self.count,
            **{f"p{p}": self.percentile(p) for p in PERCENTILES},
            "max": self.max,
        }


@dataclass(frozen=True)
class ShiftSeen:
    """`staff` (`name`) holds `rotation` during [start, end) (UTC, cut to the coverage window);
    `override`: the override's note ("" for none given), None for the rotation's own turn."""

    rotation: str
    staff: str
    name: str
    start: datetime
    end: datetime
    override: str | None


@dataclass(frozen=True)
class GapSeen:
    """A coverage gap as `hotline rota check` prints it (`message`), with UTC instants."""

    kind: str  # nobody | language
    level: int | None
    language: str | None
    start: datetime
    end: datetime
    message: str


@dataclass(frozen=True)
class Coverage:
    start: datetime
    end: datetime
    rotations: tuple[str, ...]
    shifts: tuple[ShiftSeen, ...]
    gaps: tuple[GapSeen, ...]


@dataclass(frozen=True)
class Figures:
    """Everything the report shows, for incidents opened in [start, end) (UTC).

    `per_day`: (local date, counts per channel in CHANNELS order) for every day of the window
    in the rota's zone, empty days included. `hours[weekday][hour]`: incidents opened, Monday
    first, local time. `levels_needed`: "1", "2", ... escalation steps paged before the first
    acknowledgement (counted on through `repeat` rounds and the fallback), then BEFORE_PAGE,
    NOT_TAKEN (resolved untaken) and BEING_PAGED (open, untaken yet). `checkins`: check-ins
    set, missed (each miss once) and duress alarms raised in the window.
    """

    start: datetime
    end: datetime
    zone: str
    incidents: int
    per_day: tuple[tuple[date, tuple[int, ...]], ...]
    first_page: Timing
    ack: Timing
    levels_needed: tuple[tuple[str, int], ...]
    hours: tuple[tuple[int, ...], ...]
    coverage: Coverage
    checkins: tuple[tuple[str, int], ...]

    def as_json(self) -> dict:
        """The `hotline report --json` shape (README, "The line at a glance")."""
        return {
            "window": {"start": iso(self.start), "end": iso(self.end), "zone": self.zone},
            "incidents": self.incidents,
            "per_day": [
                {"date": day.isoformat(), **dict(zip(CHANNELS, counts, strict=True))}
                for day, counts in self.per_day
            ],
            "time_to_first_page": {
                **self.first_page.summary(),
                "seconds": list(self.first_page.seconds),
            },
            "time_to_ack": {**self.ack.summary(), "seconds": list(self.ack.seconds)},
            "levels_needed": dict(self.levels_needed),
            "busiest_hours": [list(row) for row in self.hours],
            "coverage": {
                "start": iso(self.coverage.start),
                "end": iso(self.coverage.end),
                "rotations": {
                    name: [
                        {
                            "staff": s.staff,
                            "name": s.name,
                            "start": iso(s.start),
                            "end": iso(s.end),
                            "override": s.override,
                        }
                        for s in self.coverage.shifts
                        if s.rotation == name
                    ]
                    for name in self.coverage.rotations
                },
                "gaps": [
                    {
                        "kind": g.kind,
                        "level": g.level,
                        "language": g.language,
                        "start": iso(g.start),
                        "end": iso(g.end),
                        "message": g.message,
                    }
                    for g in self.coverage.gaps
                ],
            },
            "checkins": dict(self.checkins),
        }


def collect(
    session: Session, rota: Rota, *, now: datetime, since: timedelta, languages: Sequence[str]
) -> Figures:
    """The figures of the incidents opened in [now - since, now), and the coverage of the
    COVERAGE_DAYS days from `now` (whole minutes, as `rota check` counts them) for the
    hotline's `languages`. Raises ValueError for a naive `now` or a `since` that is not
    positive."""
    if since <= timedelta(0):
        raise ValueError("the window must be longer than nothing")
    end = as_utc(now)
    start = end - since
    zone = rota.timezone
    rows = session.exec(
        select(
            Incident.id,
            Incident.channel,
            Incident.opened_at,
            Incident.first_paged_at,
            Incident.status,
        )
        .where(Incident.opened_at >= start, Incident.opened_at < end)
        .order_by(Incident.id)
    ).all()
    first_ack = _first_acks(session, start, end)
    steps = _steps_before(session, start, end, first_ack)

    days = _days(start, end, zone)
    per_day = {day: [0] * len(CHANNELS) for day in days}
    hours = [[0] * 24 for _ in range(7)]
    to_page, to_ack, levels = [], [], {}
    for number, channel, opened_at, first_paged_at, status in rows:
        local = opened_at.astimezone(zone)
        if channel in CHANNELS and local.date() in per_day:
            per_day[local.date()][CHANNELS.index(channel)] += 1
        hours[local.weekday()][local.hour] += 1
        if first_paged_at is not None:
            to_page.append(seconds_between(opened_at, first_paged_at))
        acked = first_ack.get(number)
        if acked is None:
            key = BEING_PAGED if status == "open" else NOT_TAKEN
        else:
            to_ack.append(seconds_between(opened_at, acked))
            step = steps.get(number)
            key = BEFORE_PAGE if step is None else str(step + 1)
        levels[key] = levels.get(key, 0) + 1

    return Figures(
        start=start,
        end=end,
        zone=str(zone),
        incidents=len(rows),
        per_day=tuple((day, tuple(counts)) for day, counts in per_day.items()),
        first_page=Timing(tuple(sorted(to_page))),
        ack=Timing(tuple(sorted(to_ack))),
        levels_needed=_ordered_levels(levels),
        hours=tuple(tuple(row) for row in hours),
        coverage=coverage(rota, now, languages),
        checkins=_checkins(session, start, end),
    )


def coverage(
    rota: Rota, now: datetime, languages: Sequence[str], days: int = COVERAGE_DAYS
) -> Coverage:
    """Who holds each rotation, and the gaps, from `now` (to the minute) for `days` days."""
    start = as_utc(now).replace(second=0, microsecond=0)
    end = start + timedelta(days=days)
    shifts = tuple(
        ShiftSeen(
            s.rotation,
            s.staff,
            rota.staff[s.staff].name if s.staff in rota.staff else s.staff,
            max(s.start, start),
            min(s.end, end),
            s.override,
        )
        for s in shifts_between(rota, start, end)
    )
    gaps = tuple(
        GapSeen(g.kind, g.level, g.language, as_utc(g.start), as_utc(g.end), g.message)
        for g in coverage_gaps(rota, start, end, tuple(languages))
    )
    return Coverage(start, end, tuple(rota.rotations), shifts, gaps)


def _first_acks(session: Session, start: datetime, end: datetime) -> dict[int, datetime]:
    """When each incident opened in the window was first taken (an alarm reopens and a new
    ACK takes it again: the first one is the response to the incident)."""
    rows = session.exec(
        select(Event.incident_id, Event.at)
        .join(Incident, Incident.id == Event.incident_id)
        .where(Event.kind == "acknowledged", Incident.opened_at >= start, Incident.opened_at < end)
        .order_by(Event.at.desc(), Event.id.desc())
    ).all()
    return dict(rows)  # newest first: the first ack of each incident is written last


def _steps_before(
    session: Session, start: datetime, end: datetime, first_ack: dict[int, datetime]
) -> dict[int, int]:
    """The escalation step of the last page written, by incident, before its first ack."""
    rows = session.exec(
        select(Page.incident_id, Page.step, Page.created_at)
        .join(Incident, Incident.id == Page.incident_id)
        .where(Incident.opened_at >= start, Incident.opened_at < end)
        .order_by(Page.incident_id, Page.created_at, Page.id)
    ).all()
    found: dict[int, int] = {}
    for number, step, created_at in rows:
        acked = first_ack.get(number)
        if acked is not None and created_at <= acked:
            found[number] = step  # ordered by time: the last one before the ack stays
    return found


def _checkins(session: Session, start: datetime, end: datetime) -> tuple[tuple[str, int], ...]:
    rows = session.exec(
        select(Event.kind, Event.detail).where(
            Event.kind.in_((CHECKIN_SET, ALARM_MISSED, ALARM_DURESS)),
            Event.at >= start,
            Event.at < end,
        )
    ).all()
    count = {CHECKIN_SET: 0, ALARM_MISSED: 0, ALARM_DURESS: 0}
    for kind, detail in rows:
        if kind == ALARM_MISSED and RAISED_ELSEWHERE in (detail or ""):
            continue  # the same miss, also recorded on the incident it was raised on
        count[kind] += 1
    return (
        ("set", count[CHECKIN_SET]),
        ("missed", count[ALARM_MISSED]),
        ("duress", count[ALARM_DURESS]),
    )


def _ordered_levels(levels: dict[str, int]) -> tuple[tuple[str, int], ...]:
    """ "1" up to the most steps any incident needed (none skipped), then the other three."""
    most = max((int(k) for k in levels if k.isdigit()), default=0)
    ordered = [(str(step), levels.get(str(step), 0)) for step in range(1, most + 1)]
    return (
        *ordered,
        (BEFORE_PAGE, levels.get(BEFORE_PAGE, 0)),
        (NOT_TAKEN, levels.get(NOT_TAKEN, 0)),
        (BEING_PAGED, levels.get(BEING_PAGED, 0)),
    )


def _days(start: datetime, end: datetime, zone: tzinfo) -> list[date]:
    """Every local date the window [start, end) touches, in order."""
    first = start.astimezone(zone).date()
    last = (end - timedelta(microseconds=1)).astimezone(zone).date()
    return [first + timedelta(days=k) for k in range((last - first).days + 1)]


def seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    """The seconds from `start` to `end`, to the millisecond; None when either is missing."""
    return round((end - start).total_seconds(), 3) if start and end else None


def iso(at: datetime | None) -> str | None:
    """`at` as ISO 8601 in UTC, as the figures and the incident log print instants."""
    return as_utc(at).isoformat() if at else None
