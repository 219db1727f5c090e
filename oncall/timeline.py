"""Shifts as people live them: who holds each rotation from when to when, overrides applied.

A rotation's shifts (oncall.shifts) say whose turn it is; overrides cut into them. What a
reminder or a calendar needs is the result: maximal spans in which one person is on call for
one rotation, with who held the rotation just before (who hands over). Computed from change
points (handoffs and override boundaries), like coverage, never by sampling.

Pure: the caller passes the rota and the instants.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from oncall.localtime import as_utc
from oncall.model import Rota
from oncall.schedule import active_override, on_call
from oncall.shifts import handoffs_between


@dataclass(frozen=True)
class Shift:
    """`staff` is on call for `rotation` during [start, end) (UTC instants).

    `handover` is who held the rotation just before `start` (None: nobody, or not known
    because the shift began before the window looked back). `override` is the note of the
    override that makes this shift, "" when it is the rotation's own turn.
    """

    rotation: str
    staff: str
    start: datetime
    end: datetime
    handover: str | None
    override: str | None = None


def shifts_between(
    rota: Rota, start: datetime, end: datetime, staff: str | None = None
) -> list[Shift]:
    """Every shift overlapping [start, end), of every rotation (or of `staff` only), sorted by
    start, then rotation.

    A shift is given whole: its true start and end even where they lie outside the window, as
    far as one shift length (or the longest override) reaches past it; a person on call without
    a break for longer than that is shown from there. Back-to-back turns of the same person
    (a one-member rotation) are one shift. Returns [] when `end <= start`. Raises ValueError
    for naive datetimes.
    """
    start_utc, end_utc = as_utc(start), as_utc(end)
    if end_utc <= start_utc:
        return []
    found: list[Shift] = []
    for name, rotation in rota.rotations.items():
        overrides = [o for o in rota.overrides if o.rotation == name]
        reach = max([rotation.shift, *(as_utc(o.end) - as_utc(o.start) for o in overrides)])
        lo, hi = start_utc - reach, end_utc + reach
        points = {lo}
        if rotation.members:
            points.update(handoffs_between(rotation, lo, hi, rota.timezone))
        for override in overrides:
            for boundary in (as_utc(override.start), as_utc(override.end)):
                if lo < boundary < hi:
                    points.add(boundary)
        ordered = sorted(points)
        spans: list[list] = []  # [staff, start, end, override note]
        for point, following in zip(ordered, [*ordered[1:], hi], strict=True):
            person = on_call(rota, name, point)
            override = active_override(rota, name, point)
            note = override.note if override is not None else None
            if spans and spans[-1][0] == person and spans[-1][3] == note:
                spans[-1][2] = following
            else:
                spans.append([person, point, following, note])
        for index, (person, begin, finish, note) in enumerate(spans):
            if person is None or finish <= start_utc or begin >= end_utc:
                continue
            before = spans[index - 1][0] if index > 0 else None
            found.append(Shift(name, person, begin, finish, before, note))
    found = [s for s in found if staff is None or s.staff == staff]
    return sorted(found, key=lambda s: (s.start, s.rotation))


def shifts_starting(rota: Rota, after: datetime, until: datetime) -> list[Shift]:
    """The shifts that start in (after, until]: what reminders are planned for."""
    after_utc, until_utc = as_utc(after), as_utc(until)
    return [
        s
        for s in shifts_between(rota, after_utc, until_utc + timedelta(microseconds=1))
        if after_utc < s.start <= until_utc
    ]
