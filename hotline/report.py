"""`hotline report [--since 30d] (--html FILE | --json)`: the line at a glance.

The figures (routing.figures) of the incidents opened in the window, and the coverage of the
next 14 days, as one self-contained HTML page (the charts inline as SVG, hotline.charts; no
script, no outside resource, no URL at all) a coordinator can open offline or mail to the
board, or as JSON for scripts. Counts and timings only: nothing of any defender is read, so
nothing of one can be shown. Every text on the page is HTML-escaped.

Exit codes: 0 done; 1 no valid rota (nor a stored one); 2 a bad `--since`, a file that cannot
be written, or a database behind its migrations (hotline.cli), each one line on stderr, with
nothing written.

One module over 300 lines on purpose: the page's words (titles, captions, the tables that
stand beside each chart) live beside the page they are written for.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path
from string import Template
from zoneinfo import ZoneInfo

from sqlmodel import Session

import oncall
from hotline.charts import (
    CHANNEL_LABEL,
    chart_svgs,
    human_duration,
    inline,
    level_label,
)
from hotline.db import make_engine
from hotline.filesafety import write_private
from hotline.liverota import live_rota
from hotline.migrate import require_current
from hotline.settings import Settings
from hotline.usage import UsageError, refused
from routing.figures import CHANNELS, COVERAGE_DAYS, PERCENTILES, Figures, Timing, collect
from routing.runtime import Runtime

LONGEST = timedelta(days=366)


def parse_since(text: str) -> timedelta:
    """`--since` as a duration of the rota (`30d`, `12h`, `2w`, `1d12h`), more than nothing
    and at most LONGEST. Raises UsageError saying what would work."""
    try:
        since = oncall.parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"--since: {exc}") from None
    if not timedelta(0) < since <= LONGEST:
        raise UsageError(f"--since {text!r}: give a duration from 1s to 366d, e.g. 30d, 12h or 2w")
    return since


def run_report(
    settings: Settings, *, since: str, html: str | None, as_json: bool, now: datetime | None = None
) -> int:
    """Print the figures as JSON (`as_json`), or write the page to `html` (mode 0600,
    atomically) and say so in one line. `now` defaults to the clock. Raises
    hotline.migrate.SchemaBehind for a database that needs `hotline db upgrade`."""
    try:
        window = parse_since(since)
        target = _writable(html) if html is not None else None
    except UsageError as exc:
        return refused(exc)
    engine = make_engine(settings.database_url)
    try:
        require_current(engine)
        try:
            rota = live_rota(settings)
        except oncall.RotaInvalid:
            print(
                f"hotline: {settings.rota_path.name}: no valid rota; run `hotline rota check`",
                file=sys.stderr,
            )
            return 1
        now = now or datetime.now(UTC)
        with Session(engine) as session:
            figures = collect(session, rota, now=now, since=window, languages=settings.languages)
    finally:
        engine.dispose()
    if as_json or target is None:
        print(json.dumps(figures.as_json(), indent=2))
        return 0
    try:
        write_private(target, page(figures, now).encode("utf-8"))
    except OSError as exc:
        print(f"hotline: {target}: cannot write the report ({exc.strerror})", file=sys.stderr)
        return 2
    print(
        f"{target}: the line at a glance, {figures.incidents} incident"
        f"{'s' if figures.incidents != 1 else ''} since {_local(figures.start, figures)}"
    )
    return 0


def _writable(html: str) -> Path:
    target = Path(html)
    if not html or target.is_dir():
        raise UsageError(f"--html {html!r}: give a file name, e.g. report.html")
    if not target.parent.is_dir():
        raise UsageError(f"--html {html}: no folder {str(target.parent)!r}; create it first")
    return target


# --- the page ---------------------------------------------------------------------------------

CAPTIONS = {
    "volume": "Incidents opened each day (days in $zone), by the channel the defender first used.",
    "first_page": "How long it took from a defender's first message or call to the first page "
    "to staff. Read across at 90 % to see the time within which 9 in 10 "
    "incidents were paged. p50 is the median; p90 and p99 show the slow tail. A "
    "call answered while it rang through was never paged and is not counted here.",
    "ack": "How long it took until someone took the incident (ACK, a reply, or pressing 1 on a "
    "call), counted from the defender's first message or call.",
    "levels": "How many escalation levels were paged before someone took the incident. "
    "1 level: the first people paged took it. More: it had to escalate (counting on "
    "through repeated rounds and the fallback).",
    "hours": "When incidents come in: each square is one hour of one weekday, darker is busier "
    "(times in $zone).",
    "coverage": "Who is on call for each rotation over the next $days days (hatched: an "
    "override). Orange strips are gaps: a level with nobody on call, or nobody on "
    "call who speaks one of the hotline's languages: the warnings of "
    '"hotline rota check".',
}
TITLES = {
    "volume": "Incidents per day",
    "first_page": "Time to first page",
    "ack": "Time to acknowledgement",
    "levels": "Levels needed before someone took it",
    "hours": "Busiest hours of the week",
    "coverage": f"Coverage, next {COVERAGE_DAYS} days",
}

PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>The line at a glance: $span</title>
<style>
body { font: 15px/1.45 system-ui, sans-serif; color: #1a1a1a; margin: 0 auto;
       max-width: 60rem; padding: 1rem 1.25rem 3rem; }
h1 { font-size: 1.5rem; margin-bottom: .25rem; }
h2 { font-size: 1.15rem; margin: 2.2rem 0 .4rem; border-top: 1px solid #ddd;
     padding-top: 1rem; }
.lead { color: #444; margin-top: 0; }
figure { margin: .5rem 0; }
figure svg { width: 100%; max-width: 48rem; height: auto; display: block; }
figcaption { color: #444; font-size: .92rem; margin-top: .3rem; }
table { border-collapse: collapse; font-size: .88rem; margin: .4rem 0; }
th, td { border: 1px solid #ddd; padding: .15rem .45rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f3f3f3; }
details { margin: .3rem 0 .6rem; }
summary { cursor: pointer; color: #0b5394; }
.tiles { display: flex; flex-wrap: wrap; gap: .6rem; padding: 0; list-style: none; }
.tiles li { border: 1px solid #ddd; border-radius: .4rem; padding: .5rem .8rem;
            min-width: 9rem; }
.tiles b { display: block; font-size: 1.35rem; }
.gaps li { color: #a33c00; }
footer { margin-top: 2.5rem; color: #555; font-size: .85rem; }
</style>
</head>
<body>
<h1>The line at a glance</h1>
<p class="lead">$span ($zone). Counts and timings only: no phone numbers, no names of
defenders, no message words.</p>
<ul class="tiles">
$tiles
</ul>
$sections
<footer>Made by <code>hotline report</code> on $made UTC. Staff and rotations are named as in
the rota.</footer>
</body>
</html>
""")


def page(figures: Figures, made: datetime) -> str:
    """The report as one HTML document: charts inline, each with a caption and its figures as
    a table. Every text from outside this module is escaped."""
    svgs = chart_svgs(figures)
    sections = []
    words = {"zone": escape(figures.zone), "days": str(COVERAGE_DAYS)}
    tables = {
        "volume": _volume_table,
        "first_page": lambda f: _timing_table(f.first_page),
        "ack": lambda f: _timing_table(f.ack),
        "levels": _levels_table,
        "hours": _hours_table,
        "coverage": _coverage_table,
    }
    for name, svg in svgs.items():
        title = TITLES[name]
        sections.append(
            f'<section id="{name}">\n<h2>{escape(title)}</h2>\n<figure>\n'
            f"{inline(svg, name, title)}\n"
            f"<figcaption>{escape(Template(CAPTIONS[name]).substitute(words))}</figcaption>\n"
            f"</figure>\n{tables[name](figures)}\n</section>"
        )
    sections.append(_checkins_section(figures))
    return PAGE.substitute(
        span=escape(f"{_local(figures.start, figures)} to {_local(figures.end, figures)}"),
        zone=escape(figures.zone),
        tiles="\n".join(_tiles(figures)),
        sections="\n".join(sections),
        made=escape(made.astimezone(UTC).strftime("%Y-%m-%d %H:%M")),
    )


def _tiles(figures: Figures) -> list[str]:
    checkins = dict(figures.checkins)
    levels = dict(figures.levels_needed)
    tiles = [
        ("incidents", str(figures.incidents)),
        ("median time to first page", human_duration(figures.first_page.percentile(50))),
        ("median time to acknowledgement", human_duration(figures.ack.percentile(50))),
        ("not taken by anyone", str(levels.get("not_taken", 0))),
        ("missed check-ins", str(checkins["missed"])),
        ("duress alarms", str(checkins["duress"])),
    ]
    return [f"<li><b>{escape(value)}</b>{escape(label)}</li>" for label, value in tiles]


def _table(head: list[str], rows: list[list[str]], summary: str | None = None) -> str:
    header = "".join(f'<th scope="col">{escape(cell)}</th>' for cell in head)
    body = "\n".join(
        "<tr>"
        + "".join(
            (f'<th scope="row">{escape(cell)}</th>' if i == 0 else f"<td>{escape(cell)}</td>")
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    table = f"<table>\n<thead><tr>{header}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"
    if summary is None:
        return table
    return f"<details>\n<summary>{escape(summary)}</summary>\n{table}\n</details>"


def _volume_table(figures: Figures) -> str:
    head = ["day", *(CHANNEL_LABEL[c] for c in CHANNELS), "all"]
    rows = [
        [day.isoformat(), *(str(n) for n in counts), str(sum(counts))]
        for day, counts in figures.per_day
    ]
    totals = [sum(counts[i] for _, counts in figures.per_day) for i in range(len(CHANNELS))]
    rows.append(["all days", *(str(n) for n in totals), str(sum(totals))])
    return _table(head, rows, "The figures, day by day")


def _timing_table(timing: Timing) -> str:
    head = ["incidents", *(f"p{p}" for p in PERCENTILES), "longest"]
    summary = timing.summary()
    return _table(
        head,
        [
            [
                str(timing.count),
                *(human_duration(summary[f"p{p}"]) for p in PERCENTILES),
                human_duration(summary["max"]),
            ]
        ],
    )


def _levels_table(figures: Figures) -> str:
    return _table(
        ["taken after", "incidents"],
        [[level_label(key), str(count)] for key, count in figures.levels_needed],
    )


def _hours_table(figures: Figures) -> str:
    head = ["day", *(f"{h:02d}" for h in range(24)), "all"]
    days = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
    rows = [
        [day, *(str(n) for n in row), str(sum(row))]
        for day, row in zip(days, figures.hours, strict=True)
    ]
    return _table(head, rows, "The figures, hour by hour")


def _coverage_table(figures: Figures) -> str:
    cover = figures.coverage
    gaps = "\n".join(f"<li>{escape(gap.message)}</li>" for gap in cover.gaps)
    listed = (
        f'<ul class="gaps">\n{gaps}\n</ul>'
        if gaps
        else "<p>No gaps: every level has someone on call, and someone on call speaks each "
        "of the hotline's languages.</p>"
    )
    rows = [
        [
            shift.rotation,
            f"{shift.name} ({shift.staff})",
            _local(shift.start, figures),
            _local(shift.end, figures),
            ""
            if shift.override is None
            else f"override{': ' if shift.override else ''}{shift.override}",
        ]
        for shift in cover.shifts
    ]
    return (
        listed
        + "\n"
        + _table(
            ["rotation", "on call", "from", "to", "note"], rows, "Who is on call, shift by shift"
        )
    )


def _checkins_section(figures: Figures) -> str:
    checkins = dict(figures.checkins)
    rows = [
        ["check-ins set", str(checkins["set"])],
        ["missed check-ins (each one paged MISSED CHECK-IN)", str(checkins["missed"])],
        ["duress alarms (a duress word from a defender under check-in)", str(checkins["duress"])],
    ]
    return (
        '<section id="checkins">\n<h2>Check-ins and duress alarms</h2>\n'
        + _table(["in this window", "count"], rows)
        + "\n</section>"
    )


def _local(at: datetime, figures: Figures) -> str:
    return at.astimezone(ZoneInfo(figures.zone)).strftime("%Y-%m-%d %H:%M")


CONSOLE_SINCE = timedelta(days=30)


def console_page(rt: Runtime) -> str:
    """The report of the last 30 days, for the staff console's Report page."""
    now = rt.clock()
    with Session(rt.engine) as session:
        figures = collect(
            session,
            rt.rota.current(),
            now=now,
            since=CONSOLE_SINCE,
            languages=rt.settings.languages,
        )
    return page(figures, now)
