"""`hotline report`: the line at a glance, as a coordinator runs it.

The database is filled through the real engine (tests/report_helpers.py: incidents on every
channel, taken at known levels after known times, a missed check-in, a duress alarm), then
the real command runs (in this process, and once as the console script) and what it says is
checked against the figures worked out by hand from that story, and searched for everything
of the defenders it must never show. The browser's view of the page is in
tests/endtoend/test_web_browser.py.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from conftest import rota_text
from harness import ROOT, migrated
from report_helpers import DURESS, at_utc, cli_env, seed_week
from sqlmodel import Session

from hotline.charts import chart_svgs
from hotline.cli import main
from hotline.db import make_engine
from routing.figures import CHANNELS, Timing, collect

CHARTS = ("volume", "first_page", "ack", "levels", "hours", "coverage")


@pytest.fixture
def world(make_world, monkeypatch):
    # `hotline report` counts back from the real clock: the rota is built for now
    made = make_world(rota_text(wait1="5m", wait2="5m"), config=DURESS)
    for key, value in cli_env(made).items():
        monkeypatch.setenv(key, value)
    return made


def report(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["report", *args])
    out, err = capsys.readouterr()
    return code, out, err


def leaks(text: str, forbidden: set[str]) -> list[str]:
    lowered = text.lower()
    return sorted(word for word in forbidden if word.lower() in lowered)


# --- the figures --------------------------------------------------------------------------


def test_json_gives_the_figures_of_the_window_as_worked_out_by_hand(world, capsys):
    seeded = seed_week(world)
    code, out, err = report(capsys, "--json")
    assert code == 0, err
    figures = json.loads(out)

    assert figures["incidents"] == 6, "the incident from 37 days ago is outside --since 30d"
    assert figures["window"]["zone"] == "Europe/Dublin"
    start = datetime.fromisoformat(figures["window"]["start"])
    end = datetime.fromisoformat(figures["window"]["end"])
    assert end - start == timedelta(days=30) and abs(datetime.now(UTC) - end) < timedelta(minutes=1)

    by_day = {row["date"]: {c: row[c] for c in CHANNELS if row[c]} for row in figures["per_day"]}
    assert {day: counts for day, counts in by_day.items() if counts} == {
        day.isoformat(): counts for day, counts in seeded.days.items()
    }
    assert len(by_day) in (30, 31)  # every local day the window touches, empty ones too
    totals = {c: sum(row[c] for row in figures["per_day"]) for c in CHANNELS}
    assert totals == {"sms": 3, "whatsapp": 1, "voice": 1, "web": 1}

    # paged after 1, 2, 3, 4 and 5 s; the call answered while it rang was never paged
    assert figures["time_to_first_page"] == {
        "count": 5,
        "p50": 3.0,
        "p90": 5.0,
        "p99": 5.0,
        "max": 5.0,
        "seconds": [1.0, 2.0, 3.0, 4.0, 5.0],
    }
    # taken after 20 s (on the call), 40 s, 60 s (the first ACK, not the one after the
    # missed check-in reopened it) and 6 min 1 s (level 2)
    assert figures["time_to_ack"] == {
        "count": 4,
        "p50": 40.0,
        "p90": 361.0,
        "p99": 361.0,
        "max": 361.0,
        "seconds": [20.0, 40.0, 60.0, 361.0],
    }
    assert figures["levels_needed"] == {
        "1": 2,
        "2": 1,
        "before_page": 1,
        "not_taken": 2,
        "being_paged": 0,
    }

    hours = figures["busiest_hours"]
    assert len(hours) == 7 and all(len(row) == 24 for row in hours)
    assert {
        (d, h): n for d, row in enumerate(hours) for h, n in enumerate(row) if n
    } == seeded.hours

    # one missed check-in on #2, one raised on #7 for #6 (two events, one miss); one duress
    assert figures["checkins"] == {"set": 3, "missed": 2, "duress": 1}

    words = leaks(out, seeded.forbidden)
    assert not words, f"the JSON holds {words}"


@pytest.mark.one_database  # the figures' SQL runs on both above
def test_since_narrows_the_window(world, capsys):
    seeded = seed_week(world)
    # back to day 2 12:30: its three incidents (13:00 on), none of day 1's (12:00 and before)
    back = datetime.now(UTC) - at_utc(seeded.day0, 2, 12, 30)
    code, out, _ = report(capsys, "--json", "--since", f"{int(back.total_seconds() // 60)}m")
    figures = json.loads(out)
    assert code == 0
    assert figures["incidents"] == 3
    assert figures["levels_needed"] == {
        "1": 1,
        "before_page": 0,
        "not_taken": 2,
        "being_paged": 0,
    }


def test_percentiles_are_nearest_rank_observed_values():
    timing = Timing(tuple(float(s) for s in range(1, 101)))
    assert [timing.percentile(p) for p in (50, 90, 99, 100)] == [50.0, 90.0, 99.0, 100.0]
    assert Timing((7.0,)).summary() == {"count": 1, "p50": 7.0, "p90": 7.0, "p99": 7.0, "max": 7.0}
    assert Timing(()).summary() == {"count": 0, "p50": None, "p90": None, "p99": None, "max": None}


@pytest.mark.one_database  # the figures' SQL runs on both above
def test_coverage_is_what_rota_check_warns_about(world, capsys):
    for _attempt in range(3):  # both count from the current minute: retry across a minute
        code, out, _ = report(capsys, "--json")
        assert code == 0
        coverage = json.loads(out)["coverage"]
        assert main(["rota", "check"]) == 0
        warnings = [
            line.strip().removeprefix("WARNING ")
            for line in capsys.readouterr().out.splitlines()
            if line.strip().startswith("WARNING")
        ]
        if [gap["message"] for gap in coverage["gaps"]] == warnings:
            break
    assert [gap["message"] for gap in coverage["gaps"]] == warnings
    # only Ben speaks French, on call every other week: there is always a gap in 14 days
    assert any(gap["language"] == "fr" for gap in coverage["gaps"])
    assert set(coverage["rotations"]) == {"primary", "backup"}
    for shifts in coverage["rotations"].values():
        # back to back, from the window's start to its end, one person at a time
        assert shifts[0]["start"] == coverage["start"] and shifts[-1]["end"] == coverage["end"]
        assert all(a["end"] == b["start"] for a, b in zip(shifts, shifts[1:], strict=False))
        assert {s["staff"] for s in shifts} <= {"amina", "ben", "chen", "dana"}


# --- the page -----------------------------------------------------------------------------


@pytest.mark.one_database  # the figures' SQL runs on both above
def test_the_page_holds_every_chart_as_svg_and_nothing_of_any_defender(world, tmp_path, capsys):
    seeded = seed_week(world)
    target = tmp_path / "glance.html"
    code, out, err = report(capsys, "--html", str(target))
    assert code == 0, err
    assert out.startswith(f"{target}: the line at a glance, 6 incidents since ")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    page = target.read_text(encoding="utf-8")

    assert page.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in page
    assert "content=\"default-src 'none'; style-src 'unsafe-inline'\"" in page
    assert page.count("<svg") == len(CHARTS) == page.count("</svg>")
    for name in CHARTS:
        assert re.search(rf'<section id="{name}">\s*<h2>[^<]+</h2>\s*<figure>\s*<svg ', page)
    assert "no incidents in this window" not in page
    # self-contained: no script, nothing fetched from anywhere, not even a URL
    for thing in (
        "<script",
        "http://",
        "https://",
        "<img",
        "<image",
        "<link",
        "<iframe",
        "@import",
        "src=",
        "data:",
        "<?xml",
        "<!-- ",
    ):
        assert thing not in page.lower(), thing
    assert set(re.findall(r"url\(([^)]*)\)", page)) <= {
        f"#{i}" for i in re.findall(r'id="([^"]+)"', page)
    }, "a url() that is not on the page"
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), "two charts share an id"
    # the figures are on the page as words and tables too
    assert '<th scope="row">1 level</th><td>2</td>' in page
    assert (
        '<th scope="row">missed check-ins (each one paged MISSED CHECK-IN)</th><td>2</td>' in page
    )
    assert "nobody on call speaks &#x27;fr&#x27;" in page  # the warning, escaped as text

    words = leaks(page, seeded.forbidden)
    assert not words, f"the page holds {words}"


@pytest.mark.slow  # runs the console script
@pytest.mark.one_database  # the figures' SQL runs on both above
def test_the_console_script_writes_the_page_over_an_old_one_privately(world, tmp_path):
    seed_week(world)
    target = tmp_path / "board.html"
    target.write_text("an old report")
    target.chmod(0o644)
    env = {**os.environ, **cli_env(world)}
    done = subprocess.run(
        [sys.executable, "-m", "hotline", "report", "--since", "2w", "--html", str(target)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert stat.S_IMODE(target.stat().st_mode) == 0o600, "replaced, not rewritten in place"
    assert target.read_text().count("<svg") == len(CHARTS)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".board")] == [], (
        "a temporary file left behind"
    )


@pytest.mark.one_database  # the figures' SQL runs on both above
def test_the_same_figures_draw_the_same_bytes(world):
    seed_week(world)
    rota = world.rt.rota.current()
    with Session(world.rt.engine) as session:
        figures = collect(
            session,
            rota,
            now=world.now + timedelta(hours=1),
            since=timedelta(days=30),
            languages=("en", "fr"),
        )
    first, second = chart_svgs(figures), chart_svgs(figures)
    assert first == second
    assert list(first) == list(CHARTS)
    for name, svg in first.items():
        assert svg.startswith("<svg ") and svg.rstrip().endswith("</svg>"), name
        assert len(svg.encode()) < 60_000, f"{name} is {len(svg.encode())} bytes"


@pytest.mark.one_database  # drawing an empty window; the figures' SQL runs on both above
def test_an_empty_database_gives_a_page_that_says_so(world, tmp_path, capsys):
    target = tmp_path / "empty.html"
    code, _, err = report(capsys, "--html", str(target))
    assert code == 0, err
    page = target.read_text()
    assert page.count("<svg") == len(CHARTS)
    assert page.count("no incidents in this window") == len(CHARTS) - 1  # coverage has shifts
    code, out, _ = report(capsys, "--json")
    figures = json.loads(out)
    assert figures["incidents"] == 0
    assert figures["time_to_ack"] == {
        "count": 0,
        "p50": None,
        "p90": None,
        "p99": None,
        "max": None,
        "seconds": [],
    }
    assert figures["levels_needed"] == {"before_page": 0, "not_taken": 0, "being_paged": 0}
    assert figures["checkins"] == {"set": 0, "missed": 0, "duress": 0}


# --- used wrongly -------------------------------------------------------------------------


@pytest.mark.one_database  # the command's own checks, before any SQL
@pytest.mark.parametrize(
    ("since", "says"),
    [
        ("30", "needs a unit"),
        ("3x", "invalid duration"),
        ("0d", "from 1s to 366d"),
        ("400d", "from 1s to 366d"),
        ("-1d", "invalid duration"),
    ],
)
def test_a_bad_since_is_one_line_and_writes_nothing(world, tmp_path, capsys, since, says):
    target = tmp_path / "report.html"
    code, out, err = report(capsys, f"--since={since}", "--html", str(target))
    assert code == 2 and out == ""
    assert err.startswith("hotline: --since") and err.count("\n") == 1 and says in err
    assert not target.exists()


@pytest.mark.one_database  # the command's own checks, before any SQL
@pytest.mark.parametrize("args", [[], ["--json", "--html", "x.html"]])
def test_html_or_json_one_of_them(world, capsys, args):
    with pytest.raises(SystemExit) as exit_:
        main(["report", *args])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--html" in err and "--json" in err


@pytest.mark.one_database  # the command's own checks, before any SQL
def test_a_folder_that_is_not_there_is_one_line(world, tmp_path, capsys):
    code, _, err = report(capsys, "--html", str(tmp_path / "no" / "report.html"))
    assert code == 2 and err.count("\n") == 1 and "create it first" in err


def test_a_database_behind_its_migrations_is_refused(world, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'old.db'}")
    target = tmp_path / "report.html"
    code, out, err = report(capsys, "--html", str(target))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "hotline db upgrade" in err
    assert not target.exists()
    migrated(f"sqlite:///{tmp_path / 'old.db'}")
    assert report(capsys, "--json")[0] == 0


def test_figures_never_select_a_personal_column(world):
    """Belt and braces for the search above: the queries name no encrypted column at all."""
    statements: list[str] = []
    engine = make_engine(world.settings.database_url)

    from sqlalchemy import event

    event.listen(engine, "before_cursor_execute", lambda _c, _cur, sql, *_: statements.append(sql))
    with Session(engine) as session:
        collect(
            session,
            world.rt.rota.current(),
            now=datetime.now(UTC),
            since=timedelta(days=30),
            languages=("en",),
        )
    engine.dispose()
    assert statements
    for sql in statements:
        assert not re.search(r"_enc\b|_hash\b|body|address", sql), sql


@pytest.mark.one_database  # the command's own checks, before any SQL
def test_a_broken_rota_edit_reports_on_the_rota_the_hotline_uses(world, capsys):
    world.rt.rota.current()  # the hotline loaded the valid rota, and stored it
    world.write_rota("timezone: Nowhere/Else\n")
    code, out, err = report(capsys, "--json")
    assert code == 0 and "showing the last valid rota" in err
    assert set(json.loads(out)["coverage"]["rotations"]) == {"primary", "backup"}


@pytest.mark.one_database  # the command's own checks, before any SQL
def test_no_valid_rota_at_all_is_one_line_and_exit_1(world, tmp_path, capsys):
    world.write_rota("timezone: Nowhere/Else\n")  # and none was ever stored
    target = tmp_path / "report.html"
    code, out, err = report(capsys, "--html", str(target))
    assert code == 1 and out == "" and err.count("\n") == 1 and "no valid rota" in err
    assert not target.exists()


# --- what a new reader saw wrong -----------------------------------------------------------


def test_durations_under_a_second_read_in_milliseconds():
    from hotline.charts import human_duration

    assert [human_duration(s) for s in (0.005, 0.014, 0.9994, 4.5, 42, 250)] == [
        "5 ms",
        "14 ms",
        "999 ms",
        "4.5 s",
        "42 s",
        "4 min 10 s",
    ]


def test_every_channel_s_legend_entry_has_its_own_colour_with_no_incidents_too(world):
    from matplotlib.colors import to_hex

    from hotline.charts import CHANNEL_COLOUR, volume

    world.text("+447700900123", "help")  # one SMS incident; no WhatsApp, call or web one
    with Session(world.rt.engine) as session:
        figures = collect(
            session, world.rt.rota.current(), now=world.now + timedelta(minutes=1),
            since=timedelta(days=1), languages=("en",),
        )  # fmt: skip
    handles = volume(figures).axes[0].get_legend().legend_handles
    assert [to_hex(h.get_facecolor()) for h in handles] == [
        CHANNEL_COLOUR[c].lower() for c in CHANNELS
    ]
    assert [t.get_text() for t in volume(figures).axes[0].get_legend().get_texts()] == [
        "SMS (1)",
        "WhatsApp (0)",
        "voice (0)",
        "web form (0)",
    ]


def test_an_incident_still_being_paged_is_not_counted_as_not_taken(world):
    world.text("+447700900123", "help")  # paged, nobody has taken it yet
    world.text("+447700900456", "help too")
    world.text(world.staff_phone("amina"), "RESOLVE 2")  # closed, nobody took it
    with Session(world.rt.engine) as session:
        figures = collect(
            session, world.rt.rota.current(), now=world.now + timedelta(minutes=1),
            since=timedelta(days=1), languages=("en",),
        )  # fmt: skip
    assert dict(figures.levels_needed) == {"before_page": 0, "not_taken": 1, "being_paged": 1}


def test_the_coverage_labels_the_first_partial_day_too():
    from zoneinfo import ZoneInfo

    import matplotlib.dates as mdates

    from hotline.charts import _day_ticks

    dublin = ZoneInfo("Europe/Dublin")
    start = datetime(2026, 12, 7, 13, 40, tzinfo=UTC)
    ticks = _day_ticks(mdates.date2num(start), mdates.date2num(start + timedelta(days=14)), dublin)
    days = [mdates.num2date(t, tz=dublin) for t in ticks]
    assert days[0] == start and days[1] == datetime(2026, 12, 8, tzinfo=dublin)
    assert len(days) == 15
    late = datetime(2026, 12, 7, 23, 0, tzinfo=UTC)  # an hour to midnight: no room for a label
    ticks = _day_ticks(mdates.date2num(late), mdates.date2num(late + timedelta(days=2)), dublin)
    assert mdates.num2date(ticks[0], tz=dublin) == datetime(2026, 12, 8, tzinfo=dublin)
