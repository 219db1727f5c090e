"""Calendar feeds: `hotline rota ical` and GET /rota/<token>.ics, parsed back with icalendar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import icalendar
import pytest
from sqlmodel import Session, create_engine, select

import oncall
from hotline.cli import main
from routing.staffstate import renew_feed
from routing.tables import Event
from webhooks.feeds import feed_token, rota_calendar

ROTA = """\
timezone: Europe/Dublin
staff:
  amina: {name: Amina K., phone: "+353 86 123 4567", languages: [en]}
  ben:   {name: Ben O.,   phone: "+353 86 765 4321", languages: [en]}
  dana:  {name: Dana M.,  phone: "+353 86 222 3344", languages: [en]}
rotations:
  primary: {members: [amina, ben], shift: 1d, handoff: "2026-10-20 09:00"}
overrides:
  - {rotation: primary, staff: dana, from: "2026-10-25 18:00", to: "2026-10-26 09:00", note: swap}
escalation:
  - {notify: primary, wait: 5m}
fallback: [dana]
"""


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def events(body: bytes) -> list[tuple[str, datetime, datetime]]:
    cal = icalendar.Calendar.from_ical(body)
    return [
        (
            str(e["summary"]),
            e.decoded("dtstart").astimezone(UTC),
            e.decoded("dtend").astimezone(UTC),
        )
        for e in cal.walk("VEVENT")
    ]


def test_ics_has_the_shifts_at_the_right_instants_across_the_dst_change():
    rota = oncall.parse_rota(ROTA, "rota.yaml")
    body = rota_calendar(rota, utc(2026, 10, 24, 12), utc(2026, 10, 27, 12), now=utc(2026, 10, 1))
    # 09:00 in Dublin is 08:00 UTC before Sunday 25 October 2026 (02:00 IST -> 01:00 GMT),
    # 09:00 UTC after; dana's swap is 18:00 GMT Sunday to 09:00 GMT Monday
    assert events(body) == [
        ("primary: Amina K.", utc(2026, 10, 24, 8), utc(2026, 10, 25, 9)),  # 25 hours
        ("primary: Ben O.", utc(2026, 10, 25, 9), utc(2026, 10, 25, 18)),
        ("primary: Dana M.", utc(2026, 10, 25, 18), utc(2026, 10, 26, 9)),
        ("primary: Amina K.", utc(2026, 10, 26, 9), utc(2026, 10, 27, 9)),
        ("primary: Ben O.", utc(2026, 10, 27, 9), utc(2026, 10, 28, 9)),
    ]


def test_a_staff_members_ics_has_only_their_shifts_and_no_phone_numbers():
    rota = oncall.parse_rota(ROTA, "rota.yaml")
    body = rota_calendar(
        rota, utc(2026, 10, 20), utc(2026, 10, 30), now=utc(2026, 10, 1), staff="dana"
    )
    assert events(body) == [("On call: primary", utc(2026, 10, 25, 18), utc(2026, 10, 26, 9))]
    [event] = icalendar.Calendar.from_ical(body).walk("VEVENT")
    assert str(event["description"]) == "taking over from Ben O.; override: swap"
    text = body.decode()
    assert "+353" not in text and "86 123" not in text


@pytest.fixture
def live(tmp_path, monkeypatch):
    for name in (
        "DATABASE_URL",
        "REDIS_URL",
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "HOTLINE_PUBLIC_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "rota.yaml").write_text(ROTA)
    (tmp_path / "config.yaml").write_text(
        'hotline:\n  number: "+35312100489"\nrota_file: rota.yaml\nrota_feeds: true\n'
    )
    monkeypatch.setenv("HOTLINE_CONFIG", str(tmp_path / "config.yaml"))
    monkeypatch.setenv("HOTLINE_SECRET_KEY", "feed-test-secret-0123456789abcdef")
    monkeypatch.setenv("HOTLINE_PUBLIC_URL", "https://hotline.example.org")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'hotline.db'}")
    monkeypatch.chdir(tmp_path)
    assert main(["db", "upgrade"]) == 0
    return tmp_path


def test_rota_ical_writes_a_file_of_every_shift_in_the_days_asked(live, capsys):
    assert main(["rota", "ical", "--days", "10", "-o", "all.ics"]) == 0
    found = events((live / "all.ics").read_bytes())
    now = datetime.now(UTC)
    assert 10 <= len(found) <= 12  # one a day, plus the one running now (and an edge)
    assert all(end > now - timedelta(minutes=1) for _, _, end in found)
    assert main(["rota", "ical", "--staff", "amina", "--days", "10"]) == 0
    mine = events(capsys.readouterr().out.encode())
    assert mine and all(summary == "On call: primary" for summary, _, _ in mine)
    assert main(["rota", "ical", "--staff", "nobody"]) == 2


def test_rota_ical_urls_lists_each_feed(live, capsys):
    assert main(["rota", "ical", "--urls"]) == 0
    lines = capsys.readouterr().out.splitlines()
    token = feed_token("feed-test-secret-0123456789abcdef", "ben")
    assert f"ben  https://hotline.example.org/rota/{token}.ics" in lines
    assert len(lines) == 3


def test_rota_ical_renew_gives_one_person_a_new_url_and_audits_it(live, capsys):
    main(["rota", "ical", "--urls"])
    before = dict(line.split("  ") for line in capsys.readouterr().out.splitlines())
    assert main(["rota", "ical", "--renew", "ben"]) == 0
    out, err = capsys.readouterr()
    [(who, url)] = [line.split("  ") for line in out.splitlines()]
    assert who == "ben" and url != before["ben"] and url.startswith("https://hotline.example.org")
    assert "old feed URL no longer answers" in err
    main(["rota", "ical", "--urls"])
    after = dict(line.split("  ") for line in capsys.readouterr().out.splitlines())
    assert after == before | {"ben": url}, "the others' URLs are unchanged"
    engine = create_engine(f"sqlite:///{live / 'hotline.db'}")
    with Session(engine) as session:
        [renewed] = session.exec(select(Event).where(Event.kind == "feed_renewed")).all()
    engine.dispose()
    assert (renewed.actor, renewed.detail) == ("operator", "ben")
    assert main(["rota", "ical", "--renew", "nobody"]) == 2
    assert "--renew 'nobody': no such staff member" in capsys.readouterr().err


def test_a_renewed_feed_answers_at_its_new_url_only(make_hotline):
    hotline = make_hotline(rota=ROTA, config="rota_feeds: true\n")
    secret = hotline.settings.secret_keys[0]
    old = f"/rota/{feed_token(secret, 'ben')}.ics"
    assert hotline.get(old).status == 200
    salt = renew_feed(hotline.rt, "ben", actor="operator")
    assert hotline.get(old).status == 404
    renewed = hotline.get(f"/rota/{feed_token(secret, 'ben', salt)}.ics")
    assert renewed.status == 200 and "On call: primary" in renewed.body
    assert hotline.get(f"/rota/{feed_token(secret, 'amina')}.ics").status == 200


def test_the_feed_answers_only_with_the_right_token(make_hotline):
    hotline = make_hotline(rota=ROTA, config="rota_feeds: true\n")
    secret = hotline.settings.secret_keys[0]
    response = hotline.get(f"/rota/{feed_token(secret, 'ben')}.ics")
    assert response.status == 200 and response.content_type.startswith("text/calendar")
    found = events(response.body.encode())
    assert found and all(summary == "On call: primary" for summary, _, _ in found)
    # every 'ben' shift, and no one else's: amina's token gives amina's, not ben's
    amina = events(hotline.get(f"/rota/{feed_token(secret, 'amina')}.ics").body.encode())
    assert not {start for _, start, _ in amina} & {start for _, start, _ in found}
    wrong = feed_token(secret, "ben")[:-1] + ("0" if feed_token(secret, "ben")[-1] != "0" else "1")
    for path in (
        f"/rota/{wrong}.ics",
        "/rota/ben.ics",
        f"/rota/{feed_token('x' * 20, 'ben')}.ics",
        "/rota/.ics",
    ):
        assert hotline.get(path).status == 404, path


def test_the_feed_is_404_when_rota_feeds_is_off(make_hotline):
    hotline = make_hotline(rota=ROTA)
    token = feed_token(hotline.settings.secret_keys[0], "ben")
    assert hotline.get(f"/rota/{token}.ics").status == 404
