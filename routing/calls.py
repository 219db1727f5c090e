"""Calls as rows: outbound calls queued, claimed and placed once; status callbacks applied.

An outbound `Call` (a notification call of a page, or a CALL bridge) is written `pending` with
its transaction, placed by `place_call` after the commit (a job; the sweeper places any the
queue lost), then follows Twilio's statuses, only ever forward. A notification call that ends
without the staff member pressing a key (no answer, busy, failed, an answering machine) fails
its page, so the next contact or level is tried at once when nobody else of the step can answer.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from urllib.parse import urlencode

from sqlmodel import Session, select

from routing.locks import lock_incident
from routing.notifier import SendError
from routing.runtime import Runtime
from routing.tables import Call, Event, Incident, Page

log = logging.getLogger(__name__)

CALL_RANK = {
    "pending": 0, "submitting": 1, "queued": 2, "initiated": 3, "ringing": 4,
    "in-progress": 5, "answered": 5, "accepted": 5,
    "completed": 6, "busy": 6, "failed": 6, "no-answer": 6, "canceled": 6,
}
ENDED = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
STALE_SUBMIT = timedelta(seconds=30)
NOTIFY_TIMEOUT_S = 25  # ring a staff phone this long before Twilio gives up


def flow_url(rt: Runtime, path: str, **params: object) -> str:
    """URL of one of our call-flow steps: absolute under HOTLINE_PUBLIC_URL when it is set
    (Twilio signs exactly that, query included), else relative to the request."""
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return (rt.settings.public_url or "") + path + (f"?{query}" if query else "")


def queue_call(session: Session, rt: Runtime, *, to: str, purpose: str, incident_id: int,
               staff_id: str) -> Call:
    """Add a pending outbound call to `session`; place it with `schedule_call` after commit."""
    now = rt.clock()
    call = Call(incident_id=incident_id, direction="out", purpose=purpose, staff_id=staff_id,
                address_hash=rt.vault.lookup_hash(to), address_enc=rt.vault.encrypt(to),
                status="pending", created_at=now, updated_at=now)
    session.add(call)
    session.flush()
    return call


def place_call_job(call_id: int) -> None:
    from routing import runtime as runtime_module

    place_call(runtime_module.current(), call_id)


def schedule_call(rt: Runtime, call_id: int) -> bool:
    """Queue the placing of a pending call (after the commit that wrote it)."""
    from routing.jobs import enqueue

    return enqueue(rt, place_call_job, call_id)


def place_call(rt: Runtime, call_id: int) -> None:
    """Place one pending outbound call. Idempotent: only a pending (or stale) call is placed.

    A notification call is placed while holding its incident's row lock and only while the
    incident is open, as pages are (routing.delivery): none leaves after an ack is committed.
    """
    if not _claim(rt, call_id):
        return
    failed_page = None
    with Session(rt.engine, expire_on_commit=False) as session:
        # held across the call, so a status callback racing our commit waits for the sid
        call = session.exec(select(Call).where(Call.id == call_id).with_for_update()).one()
        page = session.exec(select(Page).where(Page.call_id == call_id)).first()
        incident = lock_incident(session, call.incident_id)
        # a page is moot once someone took the incident; a CALL bridge only once it is closed
        if incident.status == "resolved" or (page is not None and incident.status != "open"):
            _set(call, page, "canceled", rt, page_status="cancelled")
            session.commit()
            return
        if call.purpose == "notify":
            url = flow_url(rt, "/twilio/voice/notify", incident=incident.id, page=page.id)
        else:
            url = flow_url(rt, "/twilio/voice/bridge", incident=incident.id)
        try:
            result = rt.notifier.place_call(
                to=rt.vault.decrypt(call.address_enc), from_=rt.settings.number, url=url,
                # our id in the URL: the callback may beat the commit of Twilio's sid
                status_callback=rt.callback_url(f"/twilio/status?call={call.id}"),
                machine_detection=call.purpose == "notify", timeout=NOTIFY_TIMEOUT_S,
            )
        except SendError as exc:
            # calls are not retried: the SMS page of the same step is already on its way
            log.warning("%s call %s to %s failed: %s", call.purpose, call.id, call.staff_id, exc)
            _set(call, page, "failed", rt, page_status="failed")
            if page is not None:
                page.error_code = exc.code
            failed_page = page
        else:
            call.sid = call.sid or result.sid
            if CALL_RANK.get(result.status or "queued", 0) > CALL_RANK.get(call.status, -1):
                _set(call, page, result.status or "queued", rt, page_status="calling")
        session.commit()
    if failed_page is not None:
        from routing.escalation import page_failed

        page_failed(rt, failed_page.id)


def _claim(rt: Runtime, call_id: int) -> bool:
    now = rt.clock()
    with Session(rt.engine) as session:
        call = session.exec(select(Call).where(Call.id == call_id).with_for_update()).first()
        if call is None or call.direction != "out":
            return False
        stale = call.status == "submitting" and call.updated_at <= now - STALE_SUBMIT
        if call.status != "pending" and not stale:
            return False
        call.status, call.updated_at = "submitting", now
        session.commit()
    return True


def _set(call: Call, page: Page | None, status: str, rt: Runtime, *,
         page_status: str | None = None) -> None:
    call.status, call.updated_at = status, rt.clock()
    if page is not None and page_status is not None:
        page.status, page.updated_at = page_status, rt.clock()


def due_calls(session: Session, rt: Runtime, grace: timedelta) -> list[int]:
    """Outbound calls the queue should have placed by now (for the sweeper)."""
    now = rt.clock()
    rows = session.exec(
        select(Call.id).where(
            Call.direction == "out",
            ((Call.status == "pending") & (Call.created_at <= now - grace))
            | ((Call.status == "submitting") & (Call.updated_at <= now - STALE_SUBMIT)),
        ).limit(100)
    ).all()
    return list(rows)


def record_call_status(rt: Runtime, sid: str, status: str, answered_by: str | None, *,
                       call_id: int | None = None) -> bool:
    """Apply a call status callback. Unknown sids and backward moves change nothing.

    Returns True when the status moved forward. A defender's call that ends releases its
    incident's escalation (routing.voice.release_hold); a notification call that ends without
    a key pressed fails its page.
    """
    status = status.lower()
    with Session(rt.engine, expire_on_commit=False) as session:
        call = session.exec(select(Call).where(Call.sid == sid).with_for_update()).first()
        if call is None and call_id is not None:
            # the callback beat the placer's commit: that commit holds this row's lock
            call = session.exec(select(Call).where(Call.id == call_id).with_for_update()).first()
            if call is None or call.direction != "out" or call.sid not in (None, sid):
                return False
            call.sid = sid
        if call is None:
            return False
        if answered_by and not call.answered_by:
            call.answered_by = answered_by
        if CALL_RANK.get(status, -1) <= CALL_RANK.get(call.status, -1):
            session.commit()
            return False
        page = session.exec(select(Page).where(Page.call_id == call.id)).first()
        failed = None
        if status in ENDED and page is not None and page.status not in ("answered", "cancelled"):
            # ended without a key press: nobody took the page by this call
            _set(call, page, status, rt, page_status="failed")
            failed = page.id
        else:
            _set(call, None, status, rt)
        session.commit()
        purpose, incident_id = call.purpose, call.incident_id
    if failed is not None:
        from routing.escalation import page_failed

        page_failed(rt, failed)
    if status in ENDED and purpose == "defender" and incident_id is not None:
        from routing.voice import release_hold

        release_hold(rt, incident_id, "caller_hung_up", "the call ended before anyone took it")
    return True


def store_recording(rt: Runtime, *, call_sid: str, recording_sid: str, url: str,
                    incident_id: int | None) -> int | None:
    """Keep a voicemail's recording (encrypted; never logged). Returns the incident id it
    belongs to, or None for a repeated callback or a call we never stored."""
    now = rt.clock()
    with Session(rt.engine, expire_on_commit=False) as session:
        if session.exec(select(Call.id).where(Call.recording_sid == recording_sid)).first():
            return None  # a repeated delivery: done the first time
        call = session.exec(select(Call).where(Call.sid == call_sid).with_for_update()).first()
        if call is None:
            log.warning("recording for unknown call %s (incident %s) not stored", call_sid,
                        incident_id)
            return None
        call.recording_sid, call.recording_enc = recording_sid, rt.vault.encrypt(url)
        call.updated_at = now
        session.add(Event(incident_id=call.incident_id, at=now, kind="voicemail",
                          actor="defender", detail=f"recording on call {call.id}"))
        session.commit()
        return call.incident_id


def store_transcript(rt: Runtime, *, recording_sid: str, text: str) -> tuple[int, str] | None:
    """Keep a voicemail's transcript (encrypted). Returns (incident id, acker) when someone has
    taken the incident and should get it relayed, else None."""
    with Session(rt.engine, expire_on_commit=False) as session:
        call = session.exec(
            select(Call).where(Call.recording_sid == recording_sid).with_for_update()
        ).first()
        if call is None or call.transcript_enc is not None:
            return None
        call.transcript_enc, call.updated_at = rt.vault.encrypt(text), rt.clock()
        incident = session.get(Incident, call.incident_id)
        session.commit()
        if incident is not None and incident.status == "acknowledged" and incident.acknowledged_by:
            return incident.id, incident.acknowledged_by
    return None


def voicemail_transcript(rt: Runtime, session: Session, incident_id: int) -> str:
    """The incident's latest voicemail transcript (decrypted), or ""."""
    token = session.exec(
        select(Call.transcript_enc).where(Call.incident_id == incident_id,
                                          Call.transcript_enc.is_not(None))
        .order_by(Call.id.desc()).limit(1)
    ).first()
    return (rt.vault.decrypt(token) or "") if token else ""
