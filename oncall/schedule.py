"""Who is on call at an instant, and the flattened escalation chain.

Every function takes the instant `at` (timezone-aware, any zone); nothing reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from oncall.localtime import as_utc
from oncall.model import Override, Rota, Staff
from oncall.shifts import member_at


@dataclass(frozen=True)
class LevelOnCall:
    """Who a level would page at an instant. `staff` may be empty (nobody on call)."""

    number: int  # 1-based
    wait: timedelta
    staff: tuple[Staff, ...]


@dataclass(frozen=True)
class Step:
    """One step of the flattened escalation chain (see `escalation_step`)."""

    index: int
    level: int | None  # 1-based; None for the fallback step
    round: int  # 0-based; the fallback step has round ``repeat + 1``
    staff: tuple[Staff, ...]
    wait: timedelta  # for the fallback step, the last level's wait
    is_fallback: bool


def active_override(rota: Rota, rotation_name: str, at: datetime) -> Override | None:
    """The override of `rotation_name` covering `at` (start inclusive, end exclusive), or None.

    Parsed rotas have no overlapping overrides; if a hand-built one does, the first listed wins.
    """
    at_utc = as_utc(at)
    for override in rota.overrides:
        if override.rotation == rotation_name and (
            as_utc(override.start) <= at_utc < as_utc(override.end)
        ):
            return override
    return None


def on_call(rota: Rota, rotation_name: str, at: datetime) -> str | None:
    """The staff id on call for `rotation_name` at `at`, overrides applied.

    None when no override applies and the rotation has no members. Raises KeyError for an
    unknown rotation and ValueError for a naive `at`.
    """
    rotation = rota.rotations[rotation_name]
    override = active_override(rota, rotation_name, at)
    if override is not None:
        return override.staff
    return member_at(rotation, at, rota.timezone)


def _resolve(rota: Rota, targets: tuple[str, ...], at: datetime) -> list[str]:
    """Staff ids for a level's targets at `at`: rotation names first, else staff ids."""
    ids: list[str] = []
    for target in targets:
        if target in rota.rotations:
            person = on_call(rota, target, at)
            if person is not None:
                ids.append(person)
        elif target in rota.staff:
            ids.append(target)
    return ids


def _order(rota: Rota, ids: list[str] | tuple[str, ...], language: str | None) -> tuple[Staff, ...]:
    """Staff for `ids`, first occurrence kept; speakers of `language` first, else as given."""
    people = [rota.staff[i] for i in dict.fromkeys(ids) if i in rota.staff]
    if language is not None:
        people.sort(key=lambda person: language not in person.languages)
    return tuple(people)


def who_is_on_call(rota: Rota, at: datetime, language: str | None = None) -> list[LevelOnCall]:
    """Every escalation level, in order, with the staff it would page at `at`.

    Within a level staff are deduplicated keeping the first occurrence; when `language` is given
    those who speak it come first, otherwise the order is as written. Raises ValueError for a
    naive `at`.
    """
    return [
        LevelOnCall(number, level.wait, _order(rota, _resolve(rota, level.targets, at), language))
        for number, level in enumerate(rota.escalation, start=1)
    ]


def total_steps(rota: Rota) -> int:
    """Steps in the flattened chain: every level in every round, plus the final fallback step."""
    return len(rota.escalation) * (rota.repeat + 1) + 1


def escalation_step(
    rota: Rota, at: datetime, step: int, language: str | None = None
) -> Step | None:
    """Step `step` of the chain as it stands at `at`.

    Steps ``0 .. L*(repeat+1)-1`` are the L levels round after round; step ``L*(repeat+1)`` is
    the fallback (staff = `rota.fallback`, wait = the last level's wait); after that, None.
    A level step may have no staff (nobody on call): callers should move straight on to the next
    step, so that an empty chain reaches the fallback at once. Staff are ordered as in
    `who_is_on_call`. Raises ValueError for a negative `step` or a naive `at`.
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    levels = len(rota.escalation)
    chained = levels * (rota.repeat + 1)
    if step < chained:
        round_, position = divmod(step, levels)
        level = rota.escalation[position]
        staff = _order(rota, _resolve(rota, level.targets, at), language)
        return Step(step, position + 1, round_, staff, level.wait, is_fallback=False)
    if step == chained:
        as_utc(at)  # same contract as the level steps: reject a naive instant
        staff = _order(rota, rota.fallback, language)
        wait = rota.escalation[-1].wait if levels else timedelta(0)
        return Step(step, None, rota.repeat + 1, staff, wait, is_fallback=True)
    return None


def first_paged(rota: Rota, now: datetime) -> tuple[Staff, ...] | None:
    """Who a defender's message at `now` pages first: the first step of the escalation chain
    with someone on call (a step with nobody is skipped at once), else None."""
    for index in range(total_steps(rota)):
        step = escalation_step(rota, now, index)
        if step is not None and step.staff:
            return step.staff
    return None
