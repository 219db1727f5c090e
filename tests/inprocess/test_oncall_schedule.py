"""Unit tests for who is on call: handoffs, overrides, DST, escalation steps (oncall.schedule)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oncall_example import EXAMPLE  # line numbers in the tests refer to it

from oncall import (
    Level,
    Override,
    Rota,
    Rotation,
    Staff,
    escalation_step,
    on_call,
    parse_rota,
    total_steps,
    who_is_on_call,
)
from oncall.localtime import localize
from oncall.shifts import handoffs_between, shift_index, shift_start

DUBLIN = ZoneInfo("Europe/Dublin")
MEXICO = ZoneInfo("America/Mexico_City")


TICK = timedelta(microseconds=1)


@pytest.fixture(scope="module")
def rota() -> Rota:
    return parse_rota(EXAMPLE, "rota.yaml")


def local(zone: ZoneInfo, *args: int) -> datetime:
    return localize(datetime(*args), zone)  # type: ignore[arg-type]


def person(sid: str, languages: tuple[str, ...] = ()) -> Staff:
    return Staff(sid, sid.title(), f"+35387000{abs(hash(sid)) % 10000:04d}", languages)


def one_rotation_rota(
    zone: ZoneInfo,
    members: tuple[str, ...],
    shift: timedelta,
    handoff: datetime,
    overrides: tuple[Override, ...] = (),
) -> Rota:
    ids = {*members, *(o.staff for o in overrides), "fallback"}
    return Rota(
        timezone=zone,
        default_region=None,
        staff={sid: person(sid) for sid in sorted(ids)},
        rotations={"r": Rotation("r", members, shift, handoff)},
        overrides=overrides,
        escalation=(Level(("r",), timedelta(minutes=5)),),
        repeat=0,
        fallback=("fallback",),
    )


# -- handoffs --------------------------------------------------------------------------------


def test_new_person_is_on_call_at_the_exact_handoff_instant(rota: Rota):
    handoff = local(DUBLIN, 2026, 11, 9, 9, 0)
    assert on_call(rota, "primary", handoff - TICK) == "amina"
    assert on_call(rota, "primary", handoff) == "ben"
    assert on_call(rota, "primary", local(DUBLIN, 2026, 11, 16, 9, 0)) == "chen"
    assert on_call(rota, "primary", local(DUBLIN, 2026, 11, 23, 9, 0)) == "amina"


def test_at_may_be_given_in_any_zone(rota: Rota):
    assert on_call(rota, "primary", datetime(2026, 11, 9, 9, 0, tzinfo=UTC)) == "ben"
    assert on_call(rota, "primary", datetime(2026, 11, 9, 8, 59, tzinfo=UTC)) == "amina"


def test_daily_shift(rota: Rota):
    assert on_call(rota, "backup", local(DUBLIN, 2026, 11, 2, 9, 0)) == "dana"
    assert on_call(rota, "backup", local(DUBLIN, 2026, 11, 3, 8, 59)) == "dana"
    assert on_call(rota, "backup", local(DUBLIN, 2026, 11, 3, 9, 0)) == "eli"
    assert on_call(rota, "backup", local(DUBLIN, 2026, 11, 4, 9, 0)) == "dana"


def test_handoffs_before_the_anchor_negative_k(rota: Rota):
    anchor = local(DUBLIN, 2026, 11, 2, 9, 0)
    assert on_call(rota, "primary", anchor - TICK) == "chen"  # k = -1
    assert on_call(rota, "primary", local(DUBLIN, 2026, 10, 26, 9, 0)) == "chen"
    assert on_call(rota, "primary", local(DUBLIN, 2026, 10, 26, 8, 59)) == "ben"  # k = -2
    assert on_call(rota, "primary", local(DUBLIN, 2025, 1, 1, 12, 0)) in ("amina", "ben", "chen")
    assert on_call(rota, "backup", anchor - TICK) == "eli"


def test_hour_shifts_step_in_absolute_time_across_spring_forward():
    handoff = local(DUBLIN, 2026, 3, 28, 21, 0)  # GMT, so 21:00 UTC
    r = one_rotation_rota(DUBLIN, ("a", "b", "c"), timedelta(hours=8), handoff)
    # Eight real hours later is 05:00 UTC, which is 06:00 Irish Summer Time after the change.
    assert on_call(r, "r", local(DUBLIN, 2026, 3, 29, 5, 59)) == "a"
    assert on_call(r, "r", local(DUBLIN, 2026, 3, 29, 6, 0)) == "b"
    assert on_call(r, "r", datetime(2026, 3, 29, 13, 0, tzinfo=UTC)) == "c"


def test_minute_shifts():
    r = one_rotation_rota(
        DUBLIN, ("a", "b"), timedelta(minutes=30), datetime(2026, 1, 1, tzinfo=UTC)
    )
    assert on_call(r, "r", datetime(2026, 1, 1, 0, 29, 59, tzinfo=UTC)) == "a"
    assert on_call(r, "r", datetime(2026, 1, 1, 0, 30, tzinfo=UTC)) == "b"
    assert on_call(r, "r", datetime(2025, 12, 31, 23, 59, tzinfo=UTC)) == "b"


def handoff_local_times(r: Rota, start: datetime, end: datetime) -> list[str]:
    rotation = r.rotations["r"]
    return [
        f"{h.astimezone(r.timezone):%a %m-%d %H:%M %Z}"
        for h in handoffs_between(rotation, start, end, r.timezone)
    ]


@pytest.mark.parametrize(
    ("zone", "anchor", "week_start", "next_start", "hours"),
    [
        # Dublin: clocks go forward Sun 2026-03-29, back Sun 2026-10-25.
        (DUBLIN, (2026, 1, 5, 9, 0), (2026, 3, 23, 9, 0), (2026, 3, 30, 9, 0), 167),
        (DUBLIN, (2026, 1, 5, 9, 0), (2026, 10, 19, 9, 0), (2026, 10, 26, 9, 0), 169),
        # Mexico City had DST in 2021: forward Sun 2021-04-04, back Sun 2021-10-31.
        (MEXICO, (2021, 1, 4, 9, 0), (2021, 3, 29, 9, 0), (2021, 4, 5, 9, 0), 167),
        (MEXICO, (2021, 1, 4, 9, 0), (2021, 10, 25, 9, 0), (2021, 11, 1, 9, 0), 169),
    ],
)
def test_weekly_handoff_keeps_local_time_across_dst(zone, anchor, week_start, next_start, hours):
    r = one_rotation_rota(zone, ("a", "b"), timedelta(weeks=1), local(zone, *anchor))
    start, end = local(zone, *week_start), local(zone, *next_start)
    assert (end - start.astimezone(UTC)).total_seconds() / 3600 == hours  # the DST week
    person_this_week = on_call(r, "r", start)
    assert on_call(r, "r", end - TICK) == person_this_week
    assert on_call(r, "r", end) != person_this_week
    assert on_call(r, "r", end.astimezone(UTC) - timedelta(hours=1)) == person_this_week
    assert handoff_local_times(r, start - TICK, end + TICK) == [
        f"{start:%a %m-%d %H:%M %Z}",
        f"{end:%a %m-%d %H:%M %Z}",
    ]


@pytest.mark.parametrize(
    ("zone", "first_day"),
    [(DUBLIN, (2026, 3, 26)), (DUBLIN, (2026, 10, 22)), (MEXICO, (2021, 4, 1)),
     (MEXICO, (2021, 10, 28))],
)  # fmt: skip
def test_daily_handoff_stays_at_nine_local_across_dst(zone, first_day):
    r = one_rotation_rota(zone, ("a", "b", "c"), timedelta(days=1), local(zone, 2020, 6, 1, 9, 0))
    start = local(zone, *first_day, 0, 0)
    times = handoff_local_times(r, start, start + timedelta(days=7))
    assert len(times) == 7
    assert all(t.split()[2] == "09:00" for t in times), times


def test_nonexistent_local_handoff_resolves_forward():
    # 02:30 on 2021-04-04 did not exist in Mexico City (02:00 CST -> 03:00 CDT).
    text = EXAMPLE.replace("Europe/Dublin", "America/Mexico_City").replace(
        'shift: 1d, handoff: "2026-11-02 09:00"', 'shift: 1d, handoff: "2021-04-04 02:30"'
    )
    r = parse_rota(text, "rota.yaml")
    handoff = r.rotations["backup"].handoff
    assert handoff.astimezone(UTC) == datetime(2021, 4, 4, 8, 30, tzinfo=UTC)
    assert f"{handoff:%H:%M}" == "02:30"  # kept as written; the instant is 03:30 CDT
    assert f"{handoff.astimezone(UTC).astimezone(MEXICO):%H:%M %Z}" == "03:30 CDT"
    assert on_call(r, "backup", datetime(2021, 4, 4, 8, 29, tzinfo=UTC)) == "eli"
    assert on_call(r, "backup", datetime(2021, 4, 4, 8, 30, tzinfo=UTC)) == "dana"
    # The next day 02:30 exists again.
    assert on_call(r, "backup", datetime(2021, 4, 5, 7, 30, tzinfo=UTC)) == "eli"


def test_ambiguous_local_handoff_means_first_occurrence():
    # 01:30 on 2021-10-31 happened twice in Mexico City; the first (CDT, UTC-5) is meant.
    text = EXAMPLE.replace("Europe/Dublin", "America/Mexico_City").replace(
        'shift: 1d, handoff: "2026-11-02 09:00"', 'shift: 1d, handoff: "2021-10-31 01:30"'
    )
    r = parse_rota(text, "rota.yaml")
    assert r.rotations["backup"].handoff.astimezone(UTC) == datetime(
        2021, 10, 31, 6, 30, tzinfo=UTC
    )
    assert on_call(r, "backup", datetime(2021, 10, 31, 6, 30, tzinfo=UTC)) == "dana"


def test_dublin_spring_forward_gap_handoff():
    r = one_rotation_rota(DUBLIN, ("a", "b"), timedelta(days=1), local(DUBLIN, 2026, 3, 1, 1, 30))
    # 01:30 on 2026-03-29 does not exist in Dublin; that day's handoff is 02:30 IST (01:30 UTC).
    k = shift_index(r.rotations["r"], datetime(2026, 3, 29, 12, tzinfo=UTC), DUBLIN)
    assert shift_start(r.rotations["r"], k, DUBLIN) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


# -- overrides -------------------------------------------------------------------------------


def test_override_starting_and_ending_mid_shift(rota: Rota):
    assert on_call(rota, "primary", local(DUBLIN, 2026, 12, 24, 17, 59)) == "ben"
    assert on_call(rota, "primary", local(DUBLIN, 2026, 12, 24, 18, 0)) == "dana"
    assert on_call(rota, "primary", local(DUBLIN, 2026, 12, 27, 9, 0) - TICK) == "dana"
    assert on_call(rota, "primary", local(DUBLIN, 2026, 12, 27, 9, 0)) == "ben"
    assert on_call(rota, "primary", local(DUBLIN, 2026, 12, 28, 9, 0)) == "chen"
    assert on_call(rota, "backup", local(DUBLIN, 2026, 12, 25, 12, 0)) in ("dana", "eli")


def test_override_spanning_a_handoff_and_written_with_offset():
    text = EXAMPLE.replace(
        'from: "2026-12-24 18:00", to: "2026-12-27 09:00"',
        'from: "2026-12-27T12:00+00:00", to: "2026-12-29T12:00Z"',
    )
    r = parse_rota(text, "rota.yaml")
    assert on_call(r, "primary", local(DUBLIN, 2026, 12, 27, 11, 59)) == "ben"
    assert on_call(r, "primary", local(DUBLIN, 2026, 12, 28, 9, 0)) == "dana"  # chen's week
    assert on_call(r, "primary", local(DUBLIN, 2026, 12, 29, 12, 0)) == "chen"


def test_rotation_without_members():
    r = one_rotation_rota(
        DUBLIN,
        (),
        timedelta(days=1),
        local(DUBLIN, 2026, 1, 1, 9, 0),
        (Override("r", "x", local(DUBLIN, 2026, 1, 2, 0, 0), local(DUBLIN, 2026, 1, 3, 0, 0)),),
    )
    assert on_call(r, "r", local(DUBLIN, 2026, 1, 1, 12, 0)) is None
    assert on_call(r, "r", local(DUBLIN, 2026, 1, 2, 12, 0)) == "x"
    assert who_is_on_call(r, local(DUBLIN, 2026, 1, 1, 12, 0))[0].staff == ()


def test_unknown_rotation_and_naive_instant(rota: Rota):
    with pytest.raises(KeyError):
        on_call(rota, "tertiary", local(DUBLIN, 2026, 12, 1, 9, 0))
    with pytest.raises(ValueError, match="naive"):
        on_call(rota, "primary", datetime(2026, 12, 1, 9, 0))
    with pytest.raises(ValueError, match="naive"):
        escalation_step(rota, datetime(2026, 12, 1, 9, 0), 9)


# -- property: exactly one person on call ----------------------------------------------------

SHIFTS = [timedelta(minutes=30), timedelta(hours=2), timedelta(hours=8), timedelta(days=1),
          timedelta(days=2), timedelta(weeks=1)]  # fmt: skip
ZONES = [DUBLIN, MEXICO, ZoneInfo("America/New_York"), ZoneInfo("UTC")]
NAIVE = st.datetimes(min_value=datetime(2019, 1, 1), max_value=datetime(2023, 12, 31))


@st.composite
def rotas_and_instants(draw: st.DrawFn) -> tuple[Rota, datetime]:
    zone = draw(st.sampled_from(ZONES))
    members = tuple(draw(st.lists(st.sampled_from("abcd"), min_size=1, max_size=5)))
    shift = draw(st.sampled_from(SHIFTS))
    handoff = localize(draw(NAIVE).replace(second=0, microsecond=0), zone)
    overrides = []
    cursor = localize(draw(NAIVE), zone).astimezone(UTC)
    for _ in range(draw(st.integers(0, 3))):
        start = cursor + timedelta(minutes=draw(st.integers(0, 60 * 24 * 30)))
        end = start + timedelta(minutes=draw(st.integers(1, 60 * 24 * 10)))
        overrides.append(Override("r", draw(st.sampled_from(["x", "y"])), start, end))
        cursor = end
    at = draw(st.one_of(NAIVE.map(lambda n: localize(n, zone)), st.sampled_from(
        [o.start for o in overrides] + [o.end for o in overrides] + [handoff]
    ) if overrides else st.just(handoff)))  # fmt: skip
    return one_rotation_rota(zone, members, shift, handoff, tuple(overrides)), at


@settings(max_examples=300, deadline=None)
@given(rotas_and_instants())
def test_exactly_one_person_is_on_call_and_is_a_member_or_override(case: tuple[Rota, datetime]):
    r, at = case
    rotation = r.rotations["r"]
    who = on_call(r, "r", at)
    covering = [o for o in r.overrides if o.start <= at.astimezone(UTC) < o.end]
    if covering:
        assert who == covering[0].staff
    else:
        k = shift_index(rotation, at, r.timezone)
        assert shift_start(rotation, k, r.timezone) <= at < shift_start(rotation, k + 1, r.timezone)
        assert who == rotation.members[k % len(rotation.members)]
    assert who in rotation.members or who in {o.staff for o in covering}
    (level,) = who_is_on_call(r, at)
    assert [s.id for s in level.staff] == [who]


# -- levels, languages and the escalation chain ------------------------------------------------


def test_who_is_on_call_lists_every_level(rota: Rota):
    levels = who_is_on_call(rota, local(DUBLIN, 2026, 11, 3, 10, 0))
    assert [(lv.number, lv.wait, [s.id for s in lv.staff]) for lv in levels] == [
        (1, timedelta(minutes=5), ["amina"]),
        (2, timedelta(minutes=10), ["eli"]),
        (3, timedelta(minutes=15), ["fiona"]),
    ]


def test_level_mixing_rotations_and_staff_is_deduplicated_in_order():
    text = EXAMPLE.replace("notify: [fiona]", "notify: [primary, amina, fiona, backup, fiona]")
    r = parse_rota(text, "rota.yaml")
    level = who_is_on_call(r, local(DUBLIN, 2026, 11, 2, 10, 0))[2]
    assert [s.id for s in level.staff] == ["amina", "fiona", "dana"]


def test_speakers_of_the_language_come_first_in_stable_order():
    text = EXAMPLE.replace("notify: [fiona]", "notify: [fiona, george, amina, eli, ben]")
    r = parse_rota(text, "rota.yaml")
    at = local(DUBLIN, 2026, 11, 2, 10, 0)

    def ids(language: str | None) -> list[str]:
        return [s.id for s in who_is_on_call(r, at, language)[2].staff]

    assert ids(None) == ["fiona", "george", "amina", "eli", "ben"]
    assert ids("ar") == ["amina", "eli", "fiona", "george", "ben"]
    assert ids("en") == ["george", "amina", "ben", "fiona", "eli"]
    assert ids("sw") == ids(None)


def test_escalation_step_flattens_rounds_then_fallback(rota: Rota):
    at = local(DUBLIN, 2026, 11, 3, 10, 0)
    assert total_steps(rota) == 3 * 3 + 1
    steps = [escalation_step(rota, at, i) for i in range(total_steps(rota))]
    assert [(s.index, s.level, s.round, s.is_fallback) for s in steps] == [
        (0, 1, 0, False), (1, 2, 0, False), (2, 3, 0, False),
        (3, 1, 1, False), (4, 2, 1, False), (5, 3, 1, False),
        (6, 1, 2, False), (7, 2, 2, False), (8, 3, 2, False),
        (9, None, 3, True),
    ]  # fmt: skip
    assert [s.staff[0].id for s in steps[:3]] == ["amina", "eli", "fiona"]
    assert steps[4].wait == timedelta(minutes=10)
    fallback = steps[-1]
    assert [s.id for s in fallback.staff] == ["fiona", "george"]
    assert fallback.wait == timedelta(minutes=15)
    assert escalation_step(rota, at, total_steps(rota)) is None
    with pytest.raises(ValueError):
        escalation_step(rota, at, -1)


def test_escalation_step_without_repeat_and_with_language(rota: Rota):
    text = EXAMPLE.replace("repeat: 2\n", "")
    r = parse_rota(text, "rota.yaml")
    at = local(DUBLIN, 2026, 11, 3, 10, 0)
    assert total_steps(r) == 4
    assert escalation_step(r, at, 3).is_fallback
    assert escalation_step(r, at, 3).round == 1
    assert [s.id for s in escalation_step(r, at, 3, language="en").staff] == ["george", "fiona"]
    assert escalation_step(r, at, 4) is None
