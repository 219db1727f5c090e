"""The report's charts (`hotline report`): routing.figures drawn by matplotlib as SVG text.

Only matplotlib's SVG backend is used (Figure objects, no pyplot, no GUI, no global state
changed: every chart is drawn inside its own rc_context). The output is deterministic, so the
same figures give the same bytes: no date in the metadata, a fixed hash salt (one per chart,
so the clip-path ids of two charts never collide on one page), and text kept as text
(`svg.fonttype: none`), which also keeps each chart small. Math text is off: a staff name
with a `$` in it is shown as written.

`chart_svgs` gives each chart as a standalone SVG document (the README's images);
`inline` turns one into an `<svg>` element for an HTML page: no prolog, no namespace URLs,
ids prefixed with the chart's name, and a label for screen readers.

One module over 300 lines on purpose: the six charts of one page share one style, one
palette and one set of words.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable
from html import escape
from zoneinfo import ZoneInfo

import matplotlib
import matplotlib.dates as mdates
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.collections import PatchCollection
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import MaxNLocator, PercentFormatter

from routing.figures import (
    BEFORE_PAGE,
    BEING_PAGED,
    CHANNELS,
    NOT_TAKEN,
    PERCENTILES,
    Figures,
    Timing,
)

NO_INCIDENTS = "no incidents in this window"
CHANNEL_LABEL = {"sms": "SMS", "whatsapp": "WhatsApp", "voice": "voice", "web": "web form"}
# Okabe-Ito: told apart with every common colour-vision deficiency, and in greyscale print
CHANNEL_COLOUR = {"sms": "#0072B2", "whatsapp": "#009E73", "voice": "#E69F00", "web": "#CC79A7"}
STAFF_COLOURS = (
    "#9ecae1",
    "#a1d99b",
    "#fdd0a2",
    "#dadaeb",
    "#c7e9c0",
    "#fcbba1",
    "#d9d9d9",
    "#c6dbef",
    "#fdae6b",
    "#bcbddc",
)
GAP_COLOUR = "#D55E00"
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
WIDTH = 7.5  # inches; an SVG point is 1/72 inch, so charts are 540 pt wide
STYLE = {
    "svg.fonttype": "none",
    "text.parse_math": False,
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 9,
    "legend.fontsize": 8,
}
# coordinates to a hundredth of a point (matplotlib writes millionths): a third of the bytes
_GEOMETRY = re.compile(r'(\s(?:d|x|y|transform|points)=")([^"]*)"')
_DECIMALS = re.compile(r"(\d\.\d\d)\d+")
_NO_TURN = re.compile(r' transform="rotate\(-0 [\d.]+ [\d.]+\)"')  # upright text, said anyway
METADATA = {"Date": None, "Creator": None, "Format": None, "Type": None}


def chart_svgs(figures: Figures) -> dict[str, str]:
    """Every chart of the report as a standalone SVG document, by name, in page order:
    volume, first_page, ack, levels, hours, coverage."""
    drawers: dict[str, Callable[[], Figure]] = {
        "volume": lambda: volume(figures),
        "first_page": lambda: timing(
            figures.first_page,
            figures.incidents,
            "after the incident opened",
            "no incident was paged",
        ),
        "ack": lambda: timing(
            figures.ack, figures.incidents, "after the incident opened", "no incident was taken"
        ),
        "levels": lambda: levels(figures),
        "hours": lambda: hours(figures),
        "coverage": lambda: coverage(figures),
    }
    return {name: _render(name, draw) for name, draw in drawers.items()}


def inline(svg: str, name: str, label: str) -> str:
    """A standalone SVG document as an element to put in HTML: namespace declarations dropped
    (the HTML parser knows `svg` and `xlink:href`), ids prefixed with `name`, and `label` as its
    accessible name."""
    svg = re.sub(r'\s(?:xmlns(?::\w+)?|version)="[^"]*"', "", svg)
    svg = re.sub(r'\bid="([^"]+)"', rf'id="{name}-\1"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", rf"url(#{name}-\1)", svg)
    svg = re.sub(r'xlink:href="#([^"]+)"', rf'xlink:href="#{name}-\1"', svg)
    return svg.replace("<svg ", f'<svg role="img" aria-label="{escape(label)}" ', 1)


def _render(name: str, draw: Callable[[], Figure]) -> str:
    with matplotlib.rc_context({**STYLE, "svg.hashsalt": f"hotline-report-{name}"}):
        figure = draw()
        out = io.StringIO()
        figure.savefig(out, format="svg", metadata=METADATA)
    text = out.getvalue()
    text = text[text.index("<svg") :]  # no XML prolog or doctype (it names a DTD by URL)
    text = _NO_TURN.sub("", text)
    return _GEOMETRY.sub(lambda m: m.group(1) + _DECIMALS.sub(r"\1", m.group(2)) + '"', text)


def _empty(text: str) -> Figure:
    figure = Figure(figsize=(WIDTH, 0.8))
    figure.text(0.5, 0.5, text, ha="center", va="center", color="#555555", fontsize=10)
    return figure


# --- the charts -----------------------------------------------------------------------------


def volume(figures: Figures) -> Figure:
    """Incidents per day, stacked by channel."""
    if not figures.incidents:
        return _empty(NO_INCIDENTS)
    figure = Figure(figsize=(WIDTH, 2.6), layout="constrained")
    ax = figure.subplots()
    days = [day for day, _ in figures.per_day]
    positions = list(range(len(days)))
    bottom = [0] * len(days)
    for index, channel in enumerate(CHANNELS):
        heights = [counts[index] for _, counts in figures.per_day]
        drawn = [(x, h, b) for x, h, b in zip(positions, heights, bottom, strict=True) if h]
        ax.bar(
            [x for x, _, _ in drawn],
            [h for _, h, _ in drawn],
            bottom=[b for _, _, b in drawn],
            width=0.8,
            color=CHANNEL_COLOUR[channel],
        )
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    every = max(1, math.ceil(len(days) / 12))
    ax.set_xticks(positions[::every], [f"{day.day} {day:%b}" for day in days[::every]])
    ax.set_xlim(-0.6, len(days) - 0.4)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("incidents opened")
    # a channel with no incidents draws no bar, and its legend entry would take matplotlib's
    # default colour: the entries are drawn from the channels' own colours instead
    ax.legend(
        handles=[
            Patch(color=CHANNEL_COLOUR[channel], label=f"{CHANNEL_LABEL[channel]} ({total})")
            for channel, total in zip(CHANNELS, _channel_totals(figures), strict=True)
        ],
        ncols=4,
        loc="lower left",
        bbox_to_anchor=(0, 1.0),
        frameon=False,
    )
    return figure


def _channel_totals(figures: Figures) -> list[int]:
    return [sum(counts[i] for _, counts in figures.per_day) for i in range(len(CHANNELS))]


def timing(values: Timing, incidents: int, after: str, none_yet: str) -> Figure:
    """The share of incidents done within each time (an ECDF), with p50, p90 and p99 marked."""
    if not incidents:
        return _empty(NO_INCIDENTS)
    if not values.count:
        return _empty(f"{none_yet} in this window")
    unit, size = _unit(values.max or 0)
    figure = Figure(figsize=(WIDTH, 2.6), layout="constrained")
    ax = figure.subplots()
    scaled = [value / size for value in values.seconds]
    ax.ecdf(scaled, color="#0072B2", linewidth=1.8)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylim(0, 1.05)
    ax.set_xlim(0, max(scaled) * 1.08 or 1)
    ax.set_xlabel(f"{unit} {after}")
    ax.set_ylabel("share of incidents")
    marks: dict[float, list[int]] = {}
    for p in PERCENTILES:
        marks.setdefault(values.percentile(p) / size, []).append(p)
    for x, ps in marks.items():
        ax.axvline(x, color="#555555", linestyle="--", linewidth=0.8)
        label = " = ".join(f"p{p}" for p in ps) + f" {human_duration(x * size)}"
        ax.annotate(
            label,
            (x, min(ps) / 100),
            xytext=(4, -10),
            textcoords="offset points",
            fontsize=8,
            color="#333333",
        )
    return figure


def levels(figures: Figures) -> Figure:
    """How many escalation steps each incident needed before someone took it."""
    if not figures.incidents:
        return _empty(NO_INCIDENTS)
    rows = list(figures.levels_needed)
    figure = Figure(figsize=(WIDTH, 0.6 + 0.28 * len(rows)), layout="constrained")
    ax = figure.subplots()
    labels = [level_label(key) for key, _ in rows]
    counts = [count for _, count in rows]
    other = {NOT_TAKEN: "#999999", BEING_PAGED: "#CC79A7", BEFORE_PAGE: "#E69F00"}
    colours = [other.get(key, "#0072B2") for key, _ in rows]
    bars = ax.barh(range(len(rows)), counts, color=colours, height=0.7)
    ax.bar_label(bars, padding=3, fontsize=8)
    ax.set_yticks(range(len(rows)), labels)
    ax.invert_yaxis()
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("incidents")
    ax.set_xlim(0, max(counts) * 1.15 or 1)
    return figure


def hours(figures: Figures) -> Figure:
    """Incidents opened by weekday and hour in the rota's zone, as a heat map."""
    if not figures.incidents:
        return _empty(NO_INCIDENTS)
    figure = Figure(figsize=(WIDTH, 2.5), layout="constrained")
    ax = figure.subplots()
    data = [list(row) for row in figures.hours]
    peak = max(max(row) for row in data)
    scale = ScalarMappable(Normalize(0, max(peak, 1)), colormaps["Blues"])
    # an hour with no incident; only the others are drawn, each with its count (so no colour
    # bar, which matplotlib draws as an embedded bitmap the page's policy would block)
    ax.set_facecolor("#f4f6f8")
    cells = [
        (hour, day, count)
        for day, row in enumerate(data)
        for hour, count in enumerate(row)
        if count
    ]
    ax.add_collection(
        PatchCollection(
            [Rectangle((hour, day), 1, 1) for hour, day, _ in cells],
            facecolors=[scale.to_rgba(count) for _, _, count in cells],
            edgecolors="white",
            linewidths=0.6,
        )
    )
    for hour, day, count in cells:
        ax.text(
            hour + 0.5,
            day + 0.5,
            str(count),
            ha="center",
            va="center",
            fontsize=7,
            color="white" if count > peak * 0.6 else "#222222",
        )
    ax.set_xlim(0, 24)
    ax.set_ylim(0, 7)
    ax.set_yticks([d + 0.5 for d in range(7)], WEEKDAYS)
    ax.set_xticks(range(0, 25, 3), [f"{h:02d}:00" for h in range(0, 25, 3)])
    ax.invert_yaxis()
    ax.tick_params(length=0)
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)
    ax.set_xlabel(f"hour of the day ({figures.zone})")
    return figure


def coverage(figures: Figures) -> Figure:
    """The next days as a strip per rotation (who is on), and a strip per kind of gap."""
    cover = figures.coverage
    if not cover.rotations:
        return _empty("the rota has no rotations")
    zone = ZoneInfo(figures.zone)
    gap_rows = _gap_rows(figures)
    names = [*cover.rotations, *gap_rows]
    figure = Figure(figsize=(WIDTH, 0.9 + 0.32 * len(names)), layout="constrained")
    # the labels are measured in matplotlib's font; a browser without it draws them wider
    figure.get_layout_engine().set(w_pad=0.3)
    ax = figure.subplots()
    staff = sorted({shift.staff for shift in cover.shifts})
    colour = {sid: STAFF_COLOURS[i % len(STAFF_COLOURS)] for i, sid in enumerate(staff)}
    start, end = mdates.date2num(cover.start), mdates.date2num(cover.end)
    for shift in cover.shifts:
        row = names.index(shift.rotation)
        x0, x1 = mdates.date2num(shift.start), mdates.date2num(shift.end)
        ax.broken_barh(
            [(x0, x1 - x0)],
            (row - 0.38, 0.76),
            facecolors=colour[shift.staff],
            edgecolor="white",
            linewidth=0.8,
            hatch="///" if shift.override is not None else None,
        )
        if x1 - x0 >= 0.9:  # a name fits in about a day's width
            ax.text(
                (x0 + x1) / 2, row, shift.name, ha="center", va="center", fontsize=7, clip_on=True
            )
    for gap in cover.gaps:
        row = names.index(_gap_row(gap.kind, gap.level, gap.language))
        x0, x1 = mdates.date2num(gap.start), mdates.date2num(gap.end)
        ax.broken_barh([(x0, x1 - x0)], (row - 0.38, 0.76), facecolors=GAP_COLOUR)
    ax.set_yticks(range(len(names)), names)
    for label in ax.get_yticklabels()[len(cover.rotations) :]:
        label.set_color(GAP_COLOUR)
    ax.invert_yaxis()
    ax.set_xlim(start, end)
    ax.set_xticks(_day_ticks(start, end, zone))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%a\n%d", tz=zone))
    ax.tick_params(axis="x", labelsize=7)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_xlabel(f"days from now, {figures.zone} (hatched: an override)")
    return figure


def _day_ticks(start: float, end: float, zone: ZoneInfo) -> list[float]:
    """A tick at each local midnight in [start, end] (matplotlib date numbers), and one at
    the window's start, so that the first, partial day has its label too (unless it is too
    short to hold one)."""
    ticks = mdates.DayLocator(tz=zone).tick_values(mdates.num2date(start), mdates.num2date(end))
    midnights = [t for t in ticks if start <= t <= end]
    if not midnights or midnights[0] - start > 0.35:
        midnights.insert(0, start)
    return midnights


# --- words ------------------------------------------------------------------------------------


def level_label(key: str) -> str:
    """A levels_needed key as a coordinator reads it."""
    if key == BEFORE_PAGE:
        return "answered on the call"
    if key == NOT_TAKEN:
        return "not taken"
    if key == BEING_PAGED:
        return "still being paged"
    return f"{key} level{'s' if key != '1' else ''}"


def human_duration(seconds: float | None) -> str:
    """`14 ms`, `4.5 s`, `42 s`, `4 min 10 s`, `2 h 5 min`, `3 d 4 h`; `-` for None."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{round(seconds * 1000)} ms"
    whole = round(seconds)
    if whole < 60:
        return f"{seconds:.1f} s".replace(".0 s", " s") if seconds < 10 else f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours_, minutes = divmod(minutes, 60)
    if hours_ < 48:
        return f"{hours_} h {minutes} min" if minutes else f"{hours_} h"
    days, hours_ = divmod(hours_, 24)
    return f"{days} d {hours_} h" if hours_ else f"{days} d"


def _gap_rows(figures: Figures) -> list[str]:
    seen = dict.fromkeys(
        _gap_row(g.kind, g.level, g.language)
        for g in sorted(
            figures.coverage.gaps, key=lambda g: (g.kind, g.level or 0, g.language or "")
        )
    )
    return list(seen)


def _gap_row(kind: str, level: int | None, language: str | None) -> str:
    return f"level {level}: nobody" if kind == "nobody" else f"nobody speaks {language}"


def _unit(largest: float) -> tuple[str, float]:
    if largest < 120:
        return "seconds", 1.0
    if largest < 2 * 3600:
        return "minutes", 60.0
    return "hours", 3600.0
