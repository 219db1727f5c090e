"""oncall.timeline: shifts as people live them, overrides applied, across daylight saving."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import oncall
from oncall.timeline import shifts_between, shifts_starting

ROTA = """\
timezone: Europe/Dublin
staff:
  amina: {name: Amina K., phone: "+353 86 123 4567"}
  ben:   {name: Ben O.,   phone: "+353 86 765 4321", remind: false}
  dana:  {name: Dana M.,  phone: "+353 86 222 3344"}
rotations:
  primary: {members: [amina, ben], shift: 1d, handoff: "2026-10-20 09:00"}
  solo:    {members: [dana], shift: 1d, handoff: "2026-10-20 09:00"}
overrides:
  - {rotation: primary, staff: dana, from: "2026-10-22 18:00", to: "2026-10-23 09:00", note: swap}
escalation:
  - {notify: primary, wait: 5m}
fallback: [dana]
"""


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def rota():
    return oncall.parse_rota(ROTA, "rota.yaml")


def test_remind_is_read_per_staff_member_and_defaults_to_true(rota):
    assert rota.staff["amina"].remind is True
    assert rota.staff["ben"].remind is False


def test_remind_must_be_a_boolean():
    with pytest.raises(oncall.RotaInvalid) as caught:
        oncall.parse_rota(ROTA.replace("remind: false", "remind: nope"), "rota.yaml")
    assert "remind of staff 'ben' must be true or false" in str(caught.value.problems[0])


def test_daily_handoffs_stay_at_nine_local_across_the_october_change(rota):
    shifts = shifts_between(rota, utc(2026, 10, 24, 12), utc(2026, 10, 27, 12), staff=None)
    primary = [s for s in shifts if s.rotation == "primary"]
    # 09:00 IST is 08:00 UTC; clocks go back at 02:00 on 25 October 2026; 09:00 GMT is 09:00
    assert [s.start for s in primary] == [
        utc(2026, 10, 24, 8),
        utc(2026, 10, 25, 9),
        utc(2026, 10, 26, 9),
        utc(2026, 10, 27, 9),
    ]
    assert primary[0].end - primary[0].start == timedelta(hours=25)  # the long night
    assert [s.staff for s in primary] == ["amina", "ben", "amina", "ben"]
    assert [s.handover for s in primary] == ["ben", "amina", "ben", "amina"]


def test_an_override_cuts_a_shift_and_names_who_hands_over(rota):
    shifts = shifts_between(rota, utc(2026, 10, 22, 0), utc(2026, 10, 23, 12), staff=None)
    primary = [
        (s.staff, s.start, s.end, s.handover, s.override) for s in shifts if s.rotation == "primary"
    ]
    assert primary == [
        ("ben", utc(2026, 10, 21, 8), utc(2026, 10, 22, 8), "amina", None),
        ("amina", utc(2026, 10, 22, 8), utc(2026, 10, 22, 17), "ben", None),
        ("dana", utc(2026, 10, 22, 17), utc(2026, 10, 23, 8), "amina", "swap"),
        ("ben", utc(2026, 10, 23, 8), utc(2026, 10, 24, 8), "dana", None),
    ]


def test_back_to_back_turns_of_one_person_are_one_shift(rota):
    solo = shifts_between(rota, utc(2026, 10, 22), utc(2026, 10, 23), staff="dana")
    assert [s.rotation for s in solo] == ["solo", "primary"]
    assert solo[0].end - solo[0].start > timedelta(days=1)


def test_shifts_starting_excludes_the_one_already_running(rota):
    starting = shifts_starting(rota, utc(2026, 10, 22, 12), utc(2026, 10, 23, 8))
    assert [(s.rotation, s.staff, s.start) for s in starting] == [
        ("primary", "dana", utc(2026, 10, 22, 17)),
        ("primary", "ben", utc(2026, 10, 23, 8)),
    ]


def test_naive_instants_are_refused(rota):
    with pytest.raises(ValueError):
        shifts_between(rota, datetime(2026, 10, 22), utc(2026, 10, 23))
