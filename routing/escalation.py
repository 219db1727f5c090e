"""Escalation: page level after level until someone acknowledges.

An open incident carries its cursor: `next_step` (index into the flattened chain of
oncall.escalation_step: levels round after round, then the fallback) and `next_step_at`. A step
runs once: `run_step` claims it by moving the cursor under the incident's row lock, writes the
pages, commits, and only then schedules the next step and sends. After the fallback step the
fallback is paged again every wait, so an unacknowledged incident always has a step pending.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlmodel import Session, select

import oncall
from routing import jobs
from routing.bundling import DIGEST_DELAY, bundle_page, over_burst
from routing.calls import queue_call, schedule_call, voicemail_transcript
from routing.delivery import FAILED, deliver_message, queue_message
from routing.locks import lock_incident
from routing.masking import show_number
from routing.runtime import Runtime
from routing.tables import Event, Incident, Message, Page, StaffState
from routing.texts import page_text

log = logging.getLogger(__name__)
DEAD_PAGE = FAILED | {"cancelled", "skipped"}


def run_step(rt: Runtime, incident_id: int, step: int) -> bool:
    """Run escalation step `step` of an incident if it is still the due, open step.

    Returns True when this call ran the step, False when there was nothing to do
    (acknowledged, resolved, already run, or not yet due).
    """
    rota = rt.rota.current()
    now = rt.clock()
    with Session(rt.engine, expire_on_commit=False) as session:
        incident = lock_incident(session, incident_id)
        if (incident is None or incident.status != "open" or incident.next_step != step
                or incident.next_step_at is None or incident.next_step_at > now):
            return False
        last = oncall.total_steps(rota) - 1
        planned = oncall.escalation_step(rota, now, min(step, last), incident.language)
        opted_out = _opted_out(session, [s.id for s in planned.staff])
        body = _page_body(rt, session, incident, planned.is_fallback)
        pages: list[Page] = []
        digests: list[int] = []
        for person in planned.staff:
            if "call" in person.notify:
                # a call goes out to opted-out staff too: STOP blocks only SMS (SPEC)
                call = queue_call(session, rt, to=person.phone, purpose="notify",
                                  incident_id=incident.id, staff_id=person.id)
                pages.append(Page(incident_id=incident.id, step=step, staff_id=person.id,
                                  method="call", call_id=call.id, created_at=now))
            if person.id in opted_out:
                pages.append(Page(incident_id=incident.id, step=step, staff_id=person.id,
                                  method="sms", status="skipped", created_at=now))
                continue
            if over_burst(session, person.id, now):
                page, digest_id = bundle_page(session, rt, person, incident.id, step)
                pages.append(page)
                if digest_id is not None:
                    digests.append(digest_id)
                continue
            message = queue_message(
                session, rt, to=person.phone, purpose="page", incident_id=incident.id,
                staff_id=person.id, body=body,
            )
            pages.append(Page(incident_id=incident.id, step=step, staff_id=person.id,
                              method="sms", message_id=message.id, created_at=now))
        session.add_all(pages)
        reachable = any(p.status in ("pending", "bundled") for p in pages)
        # a level with nobody on call, or nobody reachable, moves on at once
        wait = planned.wait if reachable else timedelta(0)
        incident.next_step = step + 1
        incident.next_step_at = now + wait
        if reachable and incident.first_paged_at is None:
            incident.first_paged_at = now
        who = ",".join(dict.fromkeys(p.staff_id for p in pages
                                     if p.status in ("pending", "bundled"))) or "nobody"
        where = "fallback" if planned.is_fallback else f"level {planned.level}"
        session.add(Event(incident_id=incident.id, at=now, kind="paged", actor="system",
                          detail=f"step {step} ({where}, round {planned.round + 1}): {who}"))
        session.commit()
        due = incident.next_step_at
        message_ids = [p.message_id for p in pages if p.message_id and p.status == "pending"]
        call_ids = [p.call_id for p in pages if p.call_id]
    jobs.schedule_step(rt, incident_id, step + 1, due)
    for message_id in message_ids:
        _send_now(rt, message_id)
    for call_id in call_ids:
        schedule_call(rt, call_id)
    for digest_id in digests:
        jobs.schedule_delivery(rt, digest_id, at=now + DIGEST_DELAY)
    return True


def _send_now(rt: Runtime, message_id: int) -> None:
    """Send a page from this job rather than through another queue hop: the first page is the
    one that counts. Anything unexpected leaves it to the queue (and the sweeper)."""
    try:
        deliver_message(rt, message_id)
    except Exception:
        log.exception("page message %s not sent inline; queued instead", message_id)
        jobs.schedule_delivery(rt, message_id)


def _page_body(rt: Runtime, session: Session, incident: Incident, fallback: bool) -> str:
    sender = show_number(rt.vault.decrypt(incident.defender_enc), rt.settings.reveal_numbers)
    words = first_words(rt, session, incident.id)
    if not words and incident.channel == "voice":
        words = voicemail_transcript(rt, session, incident.id)
    return page_text(incident.id, incident.channel, sender, words, fallback=fallback,
                     voicemail=incident.channel == "voice")


def first_words(rt: Runtime, session: Session, incident_id: int) -> str:
    """The incident's first message body (decrypted), or "" when there is none."""
    body = session.exec(
        select(Message.body_enc).where(Message.incident_id == incident_id,
                                       Message.direction == "in")
        .order_by(Message.id).limit(1)
    ).first()
    return (rt.vault.decrypt(body) or "") if body else ""


def _opted_out(session: Session, staff_ids: list[str]) -> set[str]:
    if not staff_ids:
        return set()
    rows = session.exec(
        select(StaffState.staff_id).where(StaffState.staff_id.in_(staff_ids),
                                          StaffState.opted_out)
    ).all()
    return set(rows)


def advance_now(rt: Runtime, incident_id: int, actor: str, kind: str, detail: str = "") -> bool:
    """Make the incident's pending step due now (PASS, or every page of a step failed).

    Returns False when the incident is not open."""
    now = rt.clock()
    with Session(rt.engine, expire_on_commit=False) as session:
        incident = lock_incident(session, incident_id)
        if incident is None or incident.status != "open" or incident.next_step is None:
            return False
        incident.next_step_at = min(incident.next_step_at or now, now)
        session.add(Event(incident_id=incident_id, at=now, kind=kind, actor=actor, detail=detail))
        session.commit()
        step = incident.next_step
    jobs.enqueue(rt, jobs.run_step_job, incident_id, step)
    return True


def page_failed(rt: Runtime, page_id: int) -> None:
    """A page could not be delivered: when nobody else of its step can still answer, escalate
    now instead of waiting out the step's timer."""
    with Session(rt.engine) as session:
        page = session.get(Page, page_id)
        if page is None:
            return
        siblings = session.exec(
            select(Page.status).where(Page.incident_id == page.incident_id, Page.step == page.step)
        ).all()
        incident = session.get(Incident, page.incident_id)
        moved_on = incident is None or incident.next_step != page.step + 1
        staff_id, opted_out = page.staff_id, page.error_code == 21610
    if opted_out:
        from routing.staff import mark_opted_out

        mark_opted_out(rt, staff_id, reason="carrier refused SMS (21610)")
    if moved_on:
        return  # the chain has moved on already
    if all(status in DEAD_PAGE for status in siblings):
        advance_now(rt, page.incident_id, "system", "escalated_early",
                    f"step {page.step}: no page could be delivered")
