"""The rota as iCalendar: `hotline rota ical` and the per-staff feeds at GET /rota/<token>.ics.

Events are the shifts of oncall.timeline (overrides applied), with UTC instants (`...Z`), so
every calendar shows them at the right local time across daylight-saving changes without
needing our VTIMEZONE. Only the rota is in a feed: rotation names, staff names, override
notes; never a phone number, and nothing about any defender or incident.

A feed's URL carries a token, the HMAC of the staff id and their feed salt under the secret
key: unguessable, stable across restarts, and checked in constant time. `hotline rota ical
--renew ID` gives a person a new salt (routing.staffstate.renew_feed), and their old URL
answers 404 from then on. Feeds are off unless `rota_feeds: true`.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta

import icalendar
from flask import Blueprint, Response, abort, current_app
from sqlmodel import Session

import oncall
from oncall.timeline import shifts_between
from routing.staffstate import feed_salts

PRODID = "-//hotline//rota//EN"
FEED_DAYS = 60
bp = Blueprint("rota_feeds", __name__)


def rota_calendar(
    rota: oncall.Rota, start: datetime, end: datetime, *, now: datetime, staff: str | None = None
) -> bytes:
    """An iCalendar file of the shifts overlapping [start, end) (of `staff` only, when given).

    Raises KeyError for a `staff` id the rota does not have.
    """
    if staff is not None and staff not in rota.staff:
        raise KeyError(staff)
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    who = f": {rota.staff[staff].name}" if staff else ""
    cal.add("x-wr-calname", f"Hotline rota{who}")
    for shift in shifts_between(rota, start, end, staff=staff):
        person = rota.staff.get(shift.staff)
        name = person.name if person else shift.staff
        event = icalendar.Event()
        event.add("uid", f"{shift.rotation}-{shift.staff}-{shift.start:%Y%m%dT%H%M%SZ}@hotline")
        event.add("dtstamp", now)
        event.add("dtstart", shift.start)
        event.add("dtend", shift.end)
        event.add("summary", f"On call: {shift.rotation}" if staff else f"{shift.rotation}: {name}")
        notes = []
        handover = rota.staff.get(shift.handover or "")
        if handover is not None:
            notes.append(f"taking over from {handover.name}")
        if shift.override is not None:
            notes.append(f"override{': ' + shift.override if shift.override else ''}")
        if notes:
            event.add("description", "; ".join(notes))
        event.add("transp", "OPAQUE")
        cal.add_component(event)
    return cal.to_ical()


def feed_token(secret: str, staff_id: str, salt: str = "") -> str:
    """The token in `staff_id`'s feed URL (hex HMAC-SHA256 of the id and their feed salt under
    `secret`; without a salt, the URLs handed out before salts existed)."""
    message = f"rota-feed:{staff_id}" + (f":{salt}" if salt else "")
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def staff_for_token(secret_keys: tuple[str, ...], salts: dict[str, str], token: str) -> str | None:
    """The staff id whose feed token is `token` under any of the keys, with their feed salt
    (`salts`: staff id -> salt), or None.

    Every candidate is compared, each in constant time, so the answer's timing says nothing
    about how close a guess came or whose it nearly was.
    """
    found = None
    for key in secret_keys:
        for staff_id, salt in salts.items():
            # bytes: compare_digest refuses a str with non-ASCII characters (a 500, and the
            # traceback logged the feed's path)
            if hmac.compare_digest(feed_token(key, staff_id, salt).encode(), token.encode()):
                found = staff_id
    return found


def feed_urls(base_url: str, secret: str, salts: dict[str, str]) -> dict[str, str]:
    """Each staff member's feed URL under `base_url` (`salts`: staff id -> feed salt)."""
    base = base_url.rstrip("/")
    return {sid: f"{base}/rota/{feed_token(secret, sid, salt)}.ics" for sid, salt in salts.items()}


@bp.get("/rota/<token>.ics")
def feed(token: str) -> Response:
    """One staff member's shifts for the next FEED_DAYS days; 404 for anything else, and for
    everything while `rota_feeds` is off."""
    rt = current_app.extensions["hotline"]
    if not rt.settings.rota_feeds or len(token) > 128:
        abort(404)
    rota = rt.rota.current()
    with Session(rt.engine) as session:
        salts = feed_salts(session, sorted(rota.staff))
    staff_id = staff_for_token(rt.settings.secret_keys, salts, token)
    if staff_id is None:
        abort(404)
    now = rt.clock()
    body = rota_calendar(rota, now, now + timedelta(days=FEED_DAYS), now=now, staff=staff_id)
    response = Response(body, mimetype="text/calendar")
    response.headers["Cache-Control"] = "private, max-age=300"
    response.headers["Referrer-Policy"] = "no-referrer"  # the token is the URL
    return response
