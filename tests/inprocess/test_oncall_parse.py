"""Unit tests for parsing and validating rota YAML (oncall.parse, oncall.durations, schema.json)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import jsonschema
import pytest
import yaml
from oncall_example import EXAMPLE  # line numbers in the tests refer to it

from oncall import (
    ISO_639_1,
    SCHEMA_PATH,
    Level,
    Problem,
    RotaInvalid,
    format_duration,
    parse_duration,
    parse_rota,
)

DUBLIN = ZoneInfo("Europe/Dublin")


def edit(old: str, new: str, text: str = EXAMPLE) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def problems(text: str, **kwargs: object) -> list[str]:
    with pytest.raises(RotaInvalid) as caught:
        parse_rota(text, "rota.yaml", **kwargs)  # type: ignore[arg-type]
    return [str(p) for p in caught.value.problems]


def only_problem(text: str) -> str:
    found = problems(text)
    assert len(found) == 1, found
    return found[0]


# -- the valid example -----------------------------------------------------------------------


def test_example_rota_parses_into_values():
    rota = parse_rota(EXAMPLE, "rota.yaml")
    assert rota.timezone == DUBLIN
    assert rota.default_region == "IE"
    assert rota.staff["amina"].phone == "+353861234567"
    assert rota.staff["ben"].phone == "+353867654321"  # national format via default_region
    assert rota.staff["amina"].notify == ("sms", "call")
    assert rota.staff["ben"].notify == ("sms",)
    assert rota.staff["fiona"].languages == ()
    primary = rota.rotations["primary"]
    assert primary.members == ("amina", "ben", "chen")
    assert primary.shift == timedelta(weeks=1)
    assert primary.handoff == datetime(2026, 11, 2, 9, tzinfo=DUBLIN)
    (override,) = rota.overrides
    assert (override.rotation, override.staff, override.note, override.line) == (
        "primary",
        "dana",
        "swap",
        15,
    )
    assert override.start.astimezone(UTC) == datetime(2026, 12, 24, 18, tzinfo=UTC)
    assert rota.escalation == (
        Level(("primary",), timedelta(minutes=5)),
        Level(("backup",), timedelta(minutes=10)),
        Level(("fiona",), timedelta(minutes=15)),
    )
    assert rota.repeat == 2
    assert rota.fallback == ("fiona", "george")


def test_staff_by_phone_finds_exact_e164():
    rota = parse_rota(EXAMPLE, "rota.yaml")
    assert rota.staff_by_phone("+353867654321").id == "ben"
    assert rota.staff_by_phone("+353000000000") is None


def test_repeat_and_rotations_and_overrides_are_optional():
    text = EXAMPLE.split("rotations:")[0] + "escalation:\n  - {notify: [amina, ben], wait: 5m}\n"
    rota = parse_rota(text + "fallback: [fiona]\n", "rota.yaml")
    assert rota.repeat == 0 and rota.rotations == {} and rota.overrides == ()


def test_rota_under_a_key_in_a_config_file_keeps_file_line_numbers():
    config = "hotline:\n  name: test\nrota:\n" + "".join(
        f"  {line}\n" for line in EXAMPLE.splitlines()
    )
    rota = parse_rota(config, "config.yaml", key="rota")
    assert rota.rotations["backup"].members == ("dana", "eli")
    bad = config.replace("[dana, eli]", "[dna, eli]")
    assert problems(bad, key="rota") == [
        "rota.yaml:16: staff 'dna' in rotation 'backup' is not defined (did you mean 'dana'?)"
    ]


def test_missing_rota_key_in_config_file():
    assert problems("hotline: {}\n", key="rota") == [
        "rota.yaml:1: no 'rota:' section; add the rota under a top-level 'rota:' key"
    ]


def test_yaml_no_and_unquoted_plus_numbers_are_read_as_written():
    text = edit("languages: [es]}", "languages: [es, no]}")
    text = edit('phone: "+353 87 777 8888"', "phone: +353877778888", text)
    rota = parse_rota(text, "rota.yaml")
    assert rota.staff["dana"].languages == ("es", "no")  # not False
    assert rota.staff["fiona"].phone == "+353877778888"


def test_merge_keys_fill_in_defaults():
    text = edit(
        '  primary: {members: [amina, ben, chen], shift: 1w, handoff: "2026-11-02 09:00"}',
        '  primary: &weekly {members: [amina, ben, chen], shift: 1w, handoff: "2026-11-02 09:00"}\n'
        "  tertiary: {<<: *weekly, members: [fiona]}",
    )
    rota = parse_rota(text, "rota.yaml")
    assert rota.rotations["tertiary"].members == ("fiona",)
    assert rota.rotations["tertiary"].shift == timedelta(weeks=1)


def test_problem_str_is_file_line_message():
    assert str(Problem("rota.yaml", 14, "boom")) == "rota.yaml:14: boom"


# -- one test per kind of problem ------------------------------------------------------------


def test_yaml_syntax_error_has_line():
    text = edit("  - {notify: backup, wait: 10m}", "  - {notify: backup, wait: 10m")
    (message,) = problems(text)
    assert message.startswith("rota.yaml:19: YAML syntax error: expected ',' or '}'")
    assert "started on line 18" in message


def test_empty_file_and_non_mapping():
    assert problems("")[0].startswith("rota.yaml:1: the rota must be a mapping")
    assert problems("- a\n- b\n")[0].startswith("rota.yaml:1: the rota must be a mapping")


def test_unknown_staff_in_rotation_suggests_close_match():
    assert only_problem(edit("[dana, eli]", "[dna, eli]")) == (
        "rota.yaml:13: staff 'dna' in rotation 'backup' is not defined (did you mean 'dana'?)"
    )


def test_unknown_staff_in_override_and_fallback():
    assert only_problem(edit("staff: dana,", "staff: dan,")) == (
        "rota.yaml:15: staff 'dan' in override is not defined (did you mean 'dana'?)"
    )
    assert only_problem(edit("[fiona, george]", "[fiona, georg]")) == (
        "rota.yaml:21: staff 'georg' in fallback is not defined (did you mean 'george'?)"
    )


def test_coordinators_are_staff_of_the_rota_and_optional():
    assert parse_rota(EXAMPLE, "rota.yaml").coordinators == ()
    rota = parse_rota(EXAMPLE + "coordinators: [fiona, dana]\n", "rota.yaml")
    assert rota.coordinators == ("fiona", "dana") == rota.coordinators_or_fallback()
    assert parse_rota(EXAMPLE, "rota.yaml").coordinators_or_fallback() == ("fiona", "george")
    assert only_problem(EXAMPLE + "coordinators: [fiona, dna]\n").endswith(
        "staff 'dna' in coordinators is not defined (did you mean 'dana'?)"
    )
    assert "coordinators must be a list" in only_problem(EXAMPLE + "coordinators: fiona\n")
    validator = jsonschema.Draft202012Validator(load_schema())
    assert not list(validator.iter_errors(yaml.safe_load(EXAMPLE + "coordinators: [fiona]\n")))


def test_unknown_name_in_level_suggests_rotation_or_staff():
    assert only_problem(edit("notify: backup,", "notify: bakup,")) == (
        "rota.yaml:18: escalation level 2 notifies 'bakup', which is neither a rotation nor a "
        "staff id (did you mean 'backup'?)"
    )


def test_unknown_rotation_in_override():
    assert only_problem(edit("rotation: primary,", "rotation: primery,")) == (
        "rota.yaml:15: override names rotation 'primery', which is not defined "
        "(did you mean 'primary'?)"
    )


def test_duplicate_staff_id_is_reported_not_overwritten():
    text = edit("  fiona: {", '  ben: {name: Other, phone: "+353 87 999 0000"}\n  fiona: {')
    assert only_problem(text) == (
        "rota.yaml:9: duplicate key 'ben' in staff (first on line 5); remove or rename one"
    )


def test_duplicate_key_inside_an_entry():
    text = edit("{name: Fiona T.,", "{name: Fiona T., name: Fi,")
    assert only_problem(text) == (
        "rota.yaml:9: duplicate key 'name' in staff 'fiona' (first on line 9); remove or rename one"
    )


def test_duplicate_rotation_name():
    text = edit("  backup: {", '  primary: {members: [ben], shift: 1d, handoff: "2026-11-02"}\n'
                "  backup: {")  # fmt: skip
    assert problems(text)[0] == (
        "rota.yaml:13: duplicate key 'primary' in rotations (first on line 12); "
        "remove or rename one"
    )


def test_invalid_phone_number():
    assert only_problem(edit('"086 765 4321"', '"086 765 432"')) == (
        "rota.yaml:5: staff 'ben' has invalid phone number '086 765 432'; write it in "
        "international format, e.g. '+353 86 123 4567'"
    )


def test_national_number_without_default_region_suggests_setting_it():
    message = only_problem(edit("default_region: IE\n", ""))
    assert message.startswith("rota.yaml:4: staff 'ben' has invalid phone number '086 765 4321'")
    assert message.endswith("or set default_region")


def test_phone_number_shared_by_two_staff():
    text = edit('"+353 87 777 8888"', '"+353 87 555 6666"')
    assert only_problem(text) == (
        "rota.yaml:9: staff 'fiona' has the same phone number as 'eli' (line 8); "
        "each person needs their own number"
    )


def test_bad_duration_shows_examples():
    assert only_problem(edit("shift: 1w", "shift: 1week")) == (
        "rota.yaml:12: shift of rotation 'primary': invalid duration '1week' "
        "(e.g. '30s', '5m', '2h', '1d', '1w' or '1h30m')"
    )
    assert only_problem(edit("wait: 10m", "wait: 10")) == (
        "rota.yaml:18: wait of escalation level 2: duration '10' needs a unit, e.g. '10m' or '10s'"
    )
    assert only_problem(edit("shift: 1d", "shift: 0h")) == (
        "rota.yaml:13: shift of rotation 'backup' must be longer than zero, e.g. 5m"
    )


def test_bad_handoff_datetime():
    assert only_problem(edit('handoff: "2026-11-02 09:00"}', 'handoff: "next monday"}')) == (
        "rota.yaml:12: handoff of rotation 'primary': invalid date and time 'next monday': "
        "expected 'YYYY-MM-DD HH:MM', e.g. '2026-11-02 09:00', or ISO 8601 with an offset"
    )


def test_overlapping_overrides_of_one_rotation():
    text = edit(
        "escalation:\n",
        '  - {rotation: primary, staff: ben, from: "2026-12-26 09:00", to: "2026-12-28 09:00"}\n'
        '  - {rotation: backup, staff: ben, from: "2026-12-26 09:00", to: "2026-12-28 09:00"}\n'
        "escalation:\n",
    )
    assert only_problem(text) == (
        "rota.yaml:16: override of rotation 'primary' overlaps the one on line 15 "
        "(which ends 2026-12-27 09:00); make them not overlap"
    )


def test_back_to_back_overrides_do_not_overlap():
    text = edit(
        "escalation:\n",
        '  - {rotation: primary, staff: ben, from: "2026-12-27 09:00", to: "2026-12-28 09:00"}\n'
        "escalation:\n",
    )
    assert len(parse_rota(text, "rota.yaml").overrides) == 2


def test_override_to_must_be_after_from():
    text = edit('to: "2026-12-27 09:00"', 'to: "2026-12-24 18:00"')
    assert only_problem(text) == (
        "rota.yaml:15: override 'to' (2026-12-24 18:00) must be after 'from' (2026-12-24 18:00)"
    )


def test_level_with_empty_notify():
    assert only_problem(edit("notify: [fiona]", "notify: []")) == (
        "rota.yaml:19: escalation level 3 notifies nobody; add a rotation or staff ids to notify"
    )


def test_level_with_rotation_without_members():
    assert only_problem(edit("members: [dana, eli]", "members: []")) == (
        "rota.yaml:18: escalation level 2 notifies rotation 'backup', which has no members; "
        "add members or remove it from notify"
    )


def test_missing_or_empty_fallback():
    assert only_problem(edit("fallback: [fiona, george]\n", "")) == (
        "rota.yaml:1: the rota is missing required key 'fallback' (e.g. fallback: [fiona])"
    )
    assert only_problem(edit("fallback: [fiona, george]", "fallback: []")) == (
        "rota.yaml:21: fallback is empty; list who is paged when nobody else answers, "
        "e.g. fallback: [fiona]"
    )


def test_unknown_language_code():
    assert only_problem(edit("languages: [en, fr]", "languages: [EN, fr]")) == (
        "rota.yaml:5: staff 'ben' has unknown language code 'EN' (did you mean 'en'?); "
        "use ISO 639-1 two-letter codes such as 'en'"
    )


def test_unknown_notify_method():
    assert only_problem(edit("notify: [sms, call]", "notify: [sns, call]")) == (
        "rota.yaml:4: staff 'amina' has unknown notify method 'sns' (did you mean 'sms'?); "
        "use sms and/or call"
    )


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "repeat: 2",
            "repat: 2",
            "rota.yaml:20: unknown key 'repat' in the rota (did you mean 'repeat'?)",
        ),
        (
            '"+353 87 777 8888"}',
            '"+353 87 777 8888", langauges: [en]}',
            "rota.yaml:9: unknown key 'langauges' in staff 'fiona' (did you mean 'languages'?)",
        ),
        (
            'shift: 1d, handoff: "',
            'shift: 1d, handof: "',
            "rota.yaml:13: unknown key 'handof' in rotation 'backup' (did you mean 'handoff'?)",
        ),
        (
            "note: swap",
            "note: swap, reason: x",
            "rota.yaml:15: unknown key 'reason' in override",
        ),
        (
            "wait: 15m",
            "wiat: 15m",
            "rota.yaml:19: unknown key 'wiat' in escalation level 3 (did you mean 'wait'?)",
        ),
    ],
)
def test_unknown_key_at_every_level_with_suggestion(old: str, new: str, expected: str):
    assert only_problem(edit(old, new)) == expected


def test_missing_required_keys():
    assert only_problem(edit(', phone: "+353 87 777 8888"', "")) == (
        "rota.yaml:9: staff 'fiona' is missing required key 'phone' "
        "(e.g. phone: '+353 86 123 4567')"
    )
    assert only_problem(edit("shift: 1d, ", "")) == (
        "rota.yaml:13: rotation 'backup' is missing required key 'shift' (e.g. shift: 1w)"
    )


def test_unknown_timezone_suggests_close_match():
    assert only_problem(edit("Europe/Dublin", "Europe/Dublinn")) == (
        "rota.yaml:1: unknown timezone 'Europe/Dublinn' (did you mean 'Europe/Dublin'?); "
        "use an IANA name such as 'Europe/Dublin'"
    )


def test_bad_region():
    found = problems(edit("default_region: IE", "default_region: ie"))
    assert found[0] == (
        "rota.yaml:2: unknown default_region 'ie' (did you mean 'IE'?); use a two-letter "
        "country code such as 'IE'"
    )


@pytest.mark.parametrize("value", ["-1", "two", "yes", "1.5", "[2]"])
def test_repeat_must_be_a_non_negative_int(value: str):
    assert only_problem(edit("repeat: 2", f"repeat: {value}")) == (
        "rota.yaml:20: repeat must be a whole number, 0 or more (e.g. repeat: 2)"
    )


def test_wrong_types_for_sections():
    assert only_problem(edit("languages: [es]", "languages: es")) == (
        "rota.yaml:7: languages of staff 'dana' must be a list, e.g. [en, ar]"
    )
    text = edit("escalation:\n", "escalation:\n  - just a string\n")
    assert only_problem(text) == (
        "rota.yaml:17: escalation level 1 must be a mapping, e.g. {notify: primary, wait: 5m}"
    )


def test_escalation_must_not_be_empty():
    text = EXAMPLE.split("escalation:")[0] + "escalation: []\nfallback: [fiona]\n"
    assert only_problem(text) == (
        "rota.yaml:16: escalation must be a non-empty list of levels, "
        "e.g. - {notify: primary, wait: 5m}"
    )


def test_rotation_named_like_a_staff_id():
    text = edit("  backup: {", '  ben: {members: [amina], shift: 1d, handoff: "2026-11-02 09:00"}\n'
                "  backup: {")  # fmt: skip
    assert only_problem(text) == (
        "rota.yaml:13: rotation 'ben' has the same name as a staff id (line 5); rename the rotation"
    )


def test_three_mistakes_are_all_reported_with_lines():
    text = edit('handoff: "2026-11-02 09:00"}\n  backup', 'handof: "2026-11-02 09:00"}\n  backup')
    text = edit("[dana, eli]", "[dna, eli]", text)
    text = edit("wait: 10m", "wait: 10", text)
    with pytest.raises(RotaInvalid) as caught:
        parse_rota(text, "rota.yaml")
    assert [(p.line, p.message) for p in caught.value.problems] == [
        (12, "unknown key 'handof' in rotation 'primary' (did you mean 'handoff'?)"),
        (13, "staff 'dna' in rotation 'backup' is not defined (did you mean 'dana'?)"),
        (18, "wait of escalation level 2: duration '10' needs a unit, e.g. '10m' or '10s'"),
    ]
    assert str(caught.value).splitlines()[0] == (
        "rota.yaml:12: unknown key 'handof' in rotation 'primary' (did you mean 'handoff'?)"
    )


# -- durations -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1w", timedelta(weeks=1)),
        ("1h30m", timedelta(minutes=90)),
        (" 1w2d ", timedelta(days=9)),
        ("0m", timedelta(0)),
    ],
)
def test_parse_duration(text: str, expected: timedelta):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "5", "5 minutes", "1m1h", "1h1h", "-5m", "1.5h", "m"])
def test_parse_duration_rejects_with_helpful_message(text: str):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize("seconds", [0, 1, 59, 60, 90, 3600, 5400, 86400, 8 * 86400 + 61])
def test_format_duration_round_trips(seconds: int):
    assert parse_duration(format_duration(timedelta(seconds=seconds))) == timedelta(seconds=seconds)


def test_format_duration_examples():
    assert format_duration(timedelta(minutes=90)) == "1h30m"
    assert format_duration(timedelta(days=8)) == "1w1d"
    assert format_duration(timedelta(0)) == "0s"
    assert format_duration(timedelta(minutes=-5)) == "-5m"


# -- JSON Schema -----------------------------------------------------------------------------


def load_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def test_schema_is_valid_draft_2020_12():
    jsonschema.Draft202012Validator.check_schema(load_schema())


def test_example_rota_validates_against_schema():
    jsonschema.validate(yaml.safe_load(EXAMPLE), load_schema())


def test_schema_flags_typos_and_bad_values():
    validator = jsonschema.Draft202012Validator(load_schema())
    for old, new in [
        ("repeat: 2", "repat: 2"),
        ('shift: 1d, handoff: "', 'shift: 1d, handof: "'),
        ("shift: 1w", "shift: 1week"),
        ("languages: [es]", "languages: [xx]"),
        ("fallback: [fiona, george]", "fallback: []"),
    ]:
        assert list(validator.iter_errors(yaml.safe_load(edit(old, new)))), new


def test_schema_languages_match_iso_639_1():
    enum = load_schema()["$defs"]["staff"]["properties"]["languages"]["items"]["enum"]
    assert set(enum) == ISO_639_1 and len(ISO_639_1) == 184
