"""The board, an incident's page and its buttons, who is on call, and the report.

Each view parses, calls routing.casefile (or oncall) once, and renders. A button's POST runs
the same engine function as its SMS command and shows the words that SMS would have carried.
"""

from __future__ import annotations

from datetime import timedelta

from flask import abort, current_app, g, render_template, request, url_for

import oncall
from oncall.timeline import shifts_between
from routing import caseactions, casefile
from webhooks.console.blueprint import bp
from webhooks.console.guard import rt, signed_in

ONCALL_DAYS = 14
REFRESH_SECONDS = 30


def page(template: str, status: int = 200, **context):  # noqa: ANN003, ANN201
    return render_template(f"console/{template}", who=g.who, csrf=g.csrf, **context), status


@bp.get("")
@signed_in
def board():  # noqa: ANN201
    state = request.args.get("state") or None
    channel = request.args.get("channel") or None
    live, recent = casefile.board(rt(), state=state, channel=channel)
    paused = request.args.get("refresh") == "off"
    body, status = page(
        "board.html",
        live=live,
        recent=recent,
        counts=casefile.counts(rt()),
        state=state,
        channel=channel,
        states=casefile.STATES,
        channels=casefile.CHANNELS,
        now=rt().clock(),
        paused=paused,
        refresh_seconds=REFRESH_SECONDS,
        limit=casefile.OPEN_SHOWN,
    )
    if paused:
        return body, status
    # Refreshes itself without a script: the Refresh header, which browsers treat as <meta
    # http-equiv="refresh">. The page says so and offers to stop it (WCAG 2.2.1: a time
    # limit the user can turn off); its own reloads keep no session alive (?auto=1).
    again = url_for("console.board", state=state, channel=channel, auto=1)
    return body, status, {"Refresh": f"{REFRESH_SECONDS}; url={again}"}


def _incident_page(number: int, said: str | None = None, status: int = 200):  # noqa: ANN202
    found = casefile.thread(rt(), g.who.staff, number)
    if found is None:
        abort(404)
    return page(
        "incident.html",
        status,
        case=found,
        said=said,
        now=rt().clock(),
        actions=caseactions.COMMANDS,
    )


@bp.get("/incidents/<int:number>")
@signed_in
def incident(number: int):  # noqa: ANN201
    return _incident_page(number)


@bp.post("/incidents/<int:number>/act/<action>")
@signed_in
def act(number: int, action: str):  # noqa: ANN201
    if action not in caseactions.COMMANDS:
        abort(404)
    if action in caseactions.NEEDS_FRESH and not g.who.fresh:
        return _incident_page(
            number,
            f"{action.upper()} wants your passkey again first: use 'Verify with passkey'.",
            403,
        )
    said = caseactions.act(rt(), g.who.staff, action, number, request.form.get("text", ""))
    return _incident_page(number, said)


@bp.post("/incidents/<int:number>/note")
@signed_in
def note(number: int):  # noqa: ANN201
    said = caseactions.add_note(rt(), g.who.staff, number, request.form.get("text", ""))
    return _incident_page(number, said)


@bp.get("/oncall")
@signed_in
def on_call():  # noqa: ANN201
    rota = rt().rota.current()
    now = rt().clock()
    end = now + timedelta(days=ONCALL_DAYS)
    return page(
        "oncall.html",
        levels=oncall.who_is_on_call(rota, now),
        shifts=shifts_between(rota, now, end),
        gaps=oncall.coverage_gaps(rota, now, end, rt().settings.languages),
        rota=rota,
        zone=rota.timezone,
        days=ONCALL_DAYS,
    )


@bp.get("/report")
@signed_in
def report():  # noqa: ANN201
    """`hotline report --html`'s page, made by the composition root (hotline.report)."""
    make = current_app.extensions.get("hotline_report_page")
    if make is None:
        abort(404)
    return (
        make(),
        200,
        {
            "Content-Type": "text/html; charset=utf-8",
            # the report's own styles are inline (one file a coordinator can also keep); no script
            "Content-Security-Policy": (
                "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                "form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
            ),
        },
    )
