"""Escalation: page level after level until someone acknowledges.

An open incident carries its cursor: `next_step` (index into the flattened chain of
oncall.escalation_step: levels round after round, then the fallback) and `next_step_at`. A step
runs once: `run_step` claims it by moving the cursor under the incident's row lock and writes
its pages into the outbox; after the commit the next step is scheduled and the pages are sent
(routing.uow). After the fallback step the fallback is paged again every wait, so an
unacknowledged incident always has a step pending.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlmodel import Session, select

import oncall
from routing import checkins, outbox
from routing.bundling import bundle_page, over_burst
from routing.commands import OPTED_OUT_EVENT
from routing.history import first_words, voicemail_transcript
from routing.locks import lock_incident
from routing.masking import show_number
from routing.runtime import Runtime
from routing.staffstate import lock_staff
from routing.tables import Event, Incident, Page
from routing.texts import page_text
from routing.uow import unit_of_work
from routing.webchannel import contact_line

log = logging.getLogger(__name__)
DEAD_PAGE = frozenset({"failed", "undelivered", "cancelled", "skipped"})


def run_step(rt: Runtime, incident_id: int, step: int) -> bool:
    """Run escalation step `step` of an incident if it is still the due, open step.

    Returns True when this call ran the step, False when there was nothing to do
    (acknowledged, resolved, already run, or not yet due).
    """
    rota = rt.rota.current()
    with unit_of_work(rt) as uow:
        session = uow.session
        incident = lock_incident(session, incident_id)
        now = rt.clock()  # after the lock: a step that waited for it ran later, not earlier
        if (incident is None or incident.status != "open" or incident.next_step != step
                or incident.next_step_at is None or incident.next_step_at > now):
            return False
        last = oncall.total_steps(rota) - 1
        planned = oncall.escalation_step(rota, now, min(step, last), incident.language)
        body = _page_body(rt, session, incident, planned.is_fallback)
        # From here to the commit, steps paging the same people run one at a time (a surge
        # pages one person for hundreds of incidents): read everything else before this.
        unreachable_by_sms = lock_staff(session, [s.id for s in planned.staff])
        pages: list[Page] = []
        for person in planned.staff:
            if "call" in person.notify:
                # a call goes out to opted-out staff too: STOP blocks only SMS (SPEC)
                call = outbox.add_call(uow, to=person.phone, purpose="notify",
                                       incident_id=incident.id, staff_id=person.id)
                pages.append(Page(incident_id=incident.id, step=step, staff_id=person.id,
                                  method="call", call_id=call.id, created_at=now))
            if person.id in unreachable_by_sms:
                pages.append(Page(incident_id=incident.id, step=step, staff_id=person.id,
                                  method="sms", status="skipped", created_at=now))
            elif over_burst(session, person.id, now):
                pages.append(bundle_page(uow, person, incident.id, step, now))
            else:
                message = outbox.add_message(uow, to=person.phone, purpose="page",
                                             incident_id=incident.id, staff_id=person.id,
                                             body=body)
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
        uow.schedule_step(incident_id, step + 1, incident.next_step_at)
    return True


def _page_body(rt: Runtime, session: Session, incident: Incident, fallback: bool) -> str:
    alarm = checkins.alarm_page(rt, session, incident, fallback)  # MISSED CHECK-IN, DURESS
    if alarm is not None:
        return alarm
    sender = (contact_line(rt, session, incident) if incident.channel == "web" else
              show_number(rt.vault.decrypt(incident.defender_enc), rt.settings.reveal_numbers))
    words = first_words(rt, session, incident.id)
    if not words and incident.channel == "voice":
        words = voicemail_transcript(rt, session, incident.id)
    no_sms = session.exec(
        select(Event.id).where(Event.incident_id == incident.id, Event.kind == OPTED_OUT_EVENT)
    ).first() is not None
    return page_text(incident.id, incident.channel, sender, words, fallback=fallback,
                     voicemail=incident.channel == "voice", no_sms=no_sms)


def advance_now(rt: Runtime, incident_id: int, actor: str, kind: str, detail: str = "") -> bool:
    """Make the incident's pending step due now (PASS, or every page of a step failed).

    Returns False when the incident is not open."""
    now = rt.clock()
    with unit_of_work(rt) as uow:
        incident = lock_incident(uow.session, incident_id)
        if incident is None or incident.status != "open" or incident.next_step is None:
            return False
        incident.next_step_at = min(incident.next_step_at or now, now)
        uow.session.add(Event(incident_id=incident_id, at=now, kind=kind, actor=actor,
                              detail=detail))
        uow.schedule_step(incident_id, incident.next_step, now)
    return True


def page_failed(rt: Runtime, page_id: int) -> bool:
    """A page could not be delivered: when nobody else of its step can still answer, escalate
    now instead of waiting out the step's timer. Returns True when it escalated."""
    with Session(rt.engine) as session:
        page = session.get(Page, page_id)
        if page is None:
            return False
        siblings = session.exec(
            select(Page.status).where(Page.incident_id == page.incident_id, Page.step == page.step)
        ).all()
        incident = session.get(Incident, page.incident_id)
        moved_on = incident is None or incident.next_step != page.step + 1
    # the whole step is dead only when every page of it is: a call still ringing may be taken
    if moved_on or not all(status in DEAD_PAGE for status in siblings):
        return False
    return advance_now(rt, page.incident_id, "system", "escalated_early",
                       f"step {page.step}: no page could be delivered")
