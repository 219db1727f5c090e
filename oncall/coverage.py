"""Coverage gaps: windows where a level has nobody on call, or nobody in the escalation speaks a
language the hotline serves.

Computed from change points (handoffs and override boundaries), not by sampling, so a window of
weeks costs one evaluation per handoff.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from oncall.localtime import as_utc
from oncall.model import Rota
from oncall.schedule import who_is_on_call
from oncall.shifts import handoffs_between

GapKind = Literal["nobody", "language"]


@dataclass(frozen=True)
class Gap:
    """A maximal window [start, end) with a coverage problem; times are in the rota's zone."""

    start: datetime
    end: datetime
    kind: GapKind
    level: int | None  # 1-based level with nobody on call; None for a language gap
    language: str | None  # the language nobody speaks; None for a nobody gap
    message: str


def change_points(rota: Rota, start: datetime, end: datetime) -> list[datetime]:
    """UTC instants in [start, end) where who is on call may change, starting with `start`."""
    start_utc, end_utc = as_utc(start), as_utc(end)
    paged = {t for level in rota.escalation for t in level.targets if t in rota.rotations}
    points = {start_utc}
    for name in paged:
        rotation = rota.rotations[name]
        if rotation.members:
            points.update(handoffs_between(rotation, start_utc, end_utc, rota.timezone))
    for override in rota.overrides:
        if override.rotation in paged:
            for boundary in (as_utc(override.start), as_utc(override.end)):
                if start_utc < boundary < end_utc:
                    points.add(boundary)
    return sorted(points)


def coverage_gaps(
    rota: Rota, start: datetime, end: datetime, languages: Sequence[str] = ()
) -> list[Gap]:
    """Gaps in [start, end): per level, windows with nobody on call (kind ``"nobody"``); per
    language in `languages`, windows where nobody on call at any level speaks it (kind
    ``"language"``). The fallback does not count as coverage.

    Adjacent windows of the same gap are merged. Returns gaps sorted by start, then kind, level
    and language; an empty list when `end <= start`. Raises ValueError for naive datetimes.
    """
    start_utc, end_utc = as_utc(start), as_utc(end)
    if end_utc <= start_utc:
        return []
    open_since: dict[tuple[GapKind, int | None, str | None], datetime] = {}
    gaps: list[Gap] = []
    for point in [*change_points(rota, start_utc, end_utc), end_utc]:
        current = set() if point == end_utc else _problems_at(rota, point, languages)
        for key in [k for k in open_since if k not in current]:
            gaps.append(_gap(rota, key, open_since.pop(key), point))
        for key in current:
            open_since.setdefault(key, point)
    return sorted(gaps, key=lambda g: (g.start, g.kind, g.level or 0, g.language or ""))


def _problems_at(
    rota: Rota, at: datetime, languages: Sequence[str]
) -> set[tuple[GapKind, int | None, str | None]]:
    levels = who_is_on_call(rota, at)
    found: set[tuple[GapKind, int | None, str | None]] = {
        ("nobody", level.number, None) for level in levels if not level.staff
    }
    spoken = {code for level in levels for person in level.staff for code in person.languages}
    found.update(("language", None, code) for code in languages if code not in spoken)
    return found


def _gap(
    rota: Rota, key: tuple[GapKind, int | None, str | None], start: datetime, end: datetime
) -> Gap:
    kind, level, language = key
    local_start, local_end = start.astimezone(rota.timezone), end.astimezone(rota.timezone)
    window = f"from {local_start:%Y-%m-%d %H:%M} to {local_end:%Y-%m-%d %H:%M} ({rota.timezone})"
    if kind == "nobody":
        message = f"level {level} has nobody on call {window}"
    else:
        message = f"nobody on call speaks '{language}' {window}"
    return Gap(local_start, local_end, kind, level, language, message)
