"""Shift arithmetic for one rotation: which shift an instant falls in, and the handoffs in a window.

Shift k starts at ``handoff + k*shift`` (k any integer). Whole-day shifts are stepped in local
wall-clock time (a weekly 09:00 handoff stays at 09:00 across DST, so such a shift may last an
hour more or less); other shifts are stepped in absolute time. At the exact handoff instant the
new shift (and its person) has started.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, tzinfo

from oncall.localtime import as_utc, localize
from oncall.model import Rotation

_DAY = timedelta(days=1)


def is_wall_clock(rotation: Rotation) -> bool:
    """True when the rotation's shift is a whole number of days (stepped in local time)."""
    return rotation.shift % _DAY == timedelta(0)


def shift_start(rotation: Rotation, k: int, zone: tzinfo) -> datetime:
    """The UTC instant shift `k` of `rotation` starts; `zone` is the rota's time zone."""
    if is_wall_clock(rotation):
        anchor = rotation.handoff.astimezone(zone).replace(tzinfo=None, fold=0)
        return as_utc(localize(anchor + k * rotation.shift, zone))
    return as_utc(rotation.handoff) + k * rotation.shift


def shift_index(rotation: Rotation, at: datetime, zone: tzinfo) -> int:
    """The k of the shift containing aware instant `at`: ``start(k) <= at < start(k+1)``."""
    at_utc = as_utc(at)
    if is_wall_clock(rotation):
        anchor = rotation.handoff.astimezone(zone).replace(tzinfo=None)
        local_at = at_utc.astimezone(zone).replace(tzinfo=None)
        k = (local_at - anchor) // rotation.shift
    else:
        k = (at_utc - as_utc(rotation.handoff)) // rotation.shift
    # The estimate can be off by one near a DST change; step to the right shift.
    while shift_start(rotation, k + 1, zone) <= at_utc:
        k += 1
    while shift_start(rotation, k, zone) > at_utc:
        k -= 1
    return k


def member_at(rotation: Rotation, at: datetime, zone: tzinfo) -> str | None:
    """The member on call at `at` ignoring overrides; None when the rotation has no members."""
    if not rotation.members:
        return None
    return rotation.members[shift_index(rotation, at, zone) % len(rotation.members)]


def handoffs_between(
    rotation: Rotation, start: datetime, end: datetime, zone: tzinfo
) -> Iterator[datetime]:
    """The UTC handoff instants h with ``start < h < end``, in order."""
    end_utc = as_utc(end)
    k = shift_index(rotation, start, zone) + 1
    while (instant := shift_start(rotation, k, zone)) < end_utc:
        yield instant
        k += 1
