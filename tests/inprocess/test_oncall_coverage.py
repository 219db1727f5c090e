"""Unit tests for coverage gaps (oncall.coverage)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from oncall_example import EXAMPLE  # line numbers in the tests refer to it

from oncall import (
    Gap,
    Level,
    Override,
    Rota,
    Rotation,
    Staff,
    coverage_gaps,
    parse_rota,
    who_is_on_call,
)

DUBLIN = ZoneInfo("Europe/Dublin")


def dublin(*args: int) -> datetime:
    return datetime(*args, tzinfo=DUBLIN)  # type: ignore[misc]


def summary(gaps: list[Gap]) -> list[tuple[str, str, str, int | None, str | None]]:
    return [
        (f"{g.start:%m-%d %H:%M}", f"{g.end:%m-%d %H:%M}", g.kind, g.level, g.language)
        for g in gaps
    ]


@pytest.fixture(scope="module")
def rota() -> Rota:
    return parse_rota(EXAMPLE, "rota.yaml")


def sparse_rota() -> Rota:
    """Level 1 is a memberless rotation covered only by overrides; level 2 rotates hourly."""
    staff = {
        sid: Staff(sid, sid.title(), f"+3538700000{n}", languages)
        for n, (sid, languages) in enumerate(
            [("xena", ("ar",)), ("yusuf", ("ar", "en")), ("fiona", ()), ("gus", ())]
        )
    }
    return Rota(
        timezone=DUBLIN,
        default_region="IE",
        staff=staff,
        rotations={
            "weekend": Rotation("weekend", (), timedelta(weeks=1), dublin(2026, 1, 5, 9, 0)),
            "hourly": Rotation("hourly", ("fiona", "gus"), timedelta(hours=1), dublin(2026, 1, 1)),
        },
        overrides=(
            Override("weekend", "xena", dublin(2026, 1, 2, 0, 0), dublin(2026, 1, 3, 0, 0)),
            Override("weekend", "yusuf", dublin(2026, 1, 3, 0, 0), dublin(2026, 1, 4, 0, 0)),
        ),
        escalation=(
            Level(("weekend",), timedelta(minutes=5)),
            Level(("hourly",), timedelta(minutes=5)),
        ),
        repeat=0,
        fallback=("fiona",),
    )


def test_level_with_nobody_on_call_gives_merged_windows():
    gaps = coverage_gaps(sparse_rota(), dublin(2026, 1, 1), dublin(2026, 1, 6))
    # The hourly handoffs of level 2 do not split level 1's gap.
    assert summary(gaps) == [
        ("01-01 00:00", "01-02 00:00", "nobody", 1, None),
        ("01-04 00:00", "01-06 00:00", "nobody", 1, None),
    ]
    assert gaps[0].message == (
        "level 1 has nobody on call from 2026-01-01 00:00 to 2026-01-02 00:00 (Europe/Dublin)"
    )


def test_language_gap_spans_back_to_back_overrides():
    gaps = coverage_gaps(sparse_rota(), dublin(2026, 1, 1, 12), dublin(2026, 1, 5), ["ar"])
    assert summary(gaps) == [
        ("01-01 12:00", "01-02 00:00", "language", None, "ar"),
        ("01-01 12:00", "01-02 00:00", "nobody", 1, None),
        ("01-04 00:00", "01-05 00:00", "language", None, "ar"),
        ("01-04 00:00", "01-05 00:00", "nobody", 1, None),
    ]


def test_language_gaps_in_the_example_rota(rota: Rota):
    start = datetime(2026, 12, 25, 12, tzinfo=UTC)
    gaps = coverage_gaps(rota, start, start + timedelta(days=14), ["ar", "zh"])
    assert summary(gaps) == [
        ("12-25 12:00", "12-28 09:00", "language", None, "zh"),
        ("12-26 09:00", "12-27 09:00", "language", None, "ar"),
        ("12-28 09:00", "12-29 09:00", "language", None, "ar"),
        ("12-30 09:00", "12-31 09:00", "language", None, "ar"),
        ("01-01 09:00", "01-02 09:00", "language", None, "ar"),
        ("01-03 09:00", "01-04 09:00", "language", None, "ar"),
        ("01-04 09:00", "01-08 12:00", "language", None, "zh"),
    ]
    assert gaps[1].message == (
        "nobody on call speaks 'ar' from 2026-12-26 09:00 to 2026-12-27 09:00 (Europe/Dublin)"
    )
    assert all(g.start.tzinfo == DUBLIN for g in gaps)


def test_no_gaps_when_covered(rota: Rota):
    start = dublin(2026, 11, 2, 9)
    assert coverage_gaps(rota, start, start + timedelta(days=14), ["en"]) == []


def test_fallback_does_not_count_as_coverage(rota: Rota):
    start = dublin(2026, 11, 2, 9)
    # George (fallback) speaks en but is not in any level; nobody in the levels speaks 'ga'.
    (gap,) = coverage_gaps(rota, start, start + timedelta(days=1), ["ga"])
    assert (gap.start, gap.end, gap.language) == (start, start + timedelta(days=1), "ga")


def test_override_boundaries_split_gaps(rota: Rota):
    gaps = coverage_gaps(rota, dublin(2026, 12, 24, 9), dublin(2026, 12, 27, 12), ["fr"])
    # Ben (fr) holds primary except while Dana's override runs.
    assert summary(gaps) == [("12-24 18:00", "12-27 09:00", "language", None, "fr")]


def test_matches_brute_force_sampling(rota: Rota):
    start = dublin(2026, 12, 20, 0)
    gaps = coverage_gaps(rota, start, start + timedelta(days=14), ["ar", "zh", "fr"])
    at = start
    while at < start + timedelta(days=14):
        spoken = {c for lv in who_is_on_call(rota, at) for s in lv.staff for c in s.languages}
        for language in ["ar", "zh", "fr"]:
            in_gap = any(g.language == language and g.start <= at < g.end for g in gaps)
            assert in_gap == (language not in spoken), (at, language)
        at += timedelta(minutes=30)


def test_fourteen_days_of_half_hour_shifts_is_fast():
    r = sparse_rota()
    fast = Rotation("hourly", ("fiona", "gus"), timedelta(minutes=30), dublin(2026, 1, 1))
    r = Rota(**{**r.__dict__, "rotations": {**r.rotations, "hourly": fast}})
    began = time.perf_counter()
    gaps = coverage_gaps(r, dublin(2026, 1, 1), dublin(2026, 1, 15), ["ar"])
    assert time.perf_counter() - began < 2.0
    assert [g.level for g in gaps if g.kind == "nobody"] == [1, 1]


def test_empty_window_and_naive_datetimes(rota: Rota):
    at = dublin(2026, 12, 1)
    assert coverage_gaps(rota, at, at) == []
    assert coverage_gaps(rota, at, at - timedelta(days=1)) == []
    with pytest.raises(ValueError, match="naive"):
        coverage_gaps(rota, datetime(2026, 12, 1), at)
