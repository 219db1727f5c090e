"""Escalation: page level after level until someone acknowledges.

An open incident carries its cursor: `next_step` (index into the flattened chain of
oncall.escalation_step: levels round after round, then the fallback) and `next_step_at`. A step
runs once: `run_step` claims it by moving the cursor under the incident's row lock and writes
its pages into the outbox; after the commit the next step is scheduled and the pages are sent
(routing.uow). After the fallback step the fallback is paged again every wait, so an
unacknowledged incident always has a step pending. Steps that fall due together (a surge)
run in batches, one transaction each (`run_steps`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlmodel import Session, select

import oncall
from routing import checkins, outbox
from routing.bundling import Burst, bundle_page, rewrite_digest
from routing.locks import lock_incident, lock_incidents
from routing.pagetext import page_body_later
from routing.runtime import Runtime
from routing.staffstate import lock_staff
from routing.tables import Event, Incident, Message, Page
from routing.uow import UnitOfWork, unit_of_work

log = logging.getLogger(__name__)
DEAD_PAGE = frozenset({"failed", "undelivered", "cancelled", "skipped"})
# a page on its way: written, claimed by its sender, or waiting in a surge digest
UNDER_WAY = frozenset({"pending", "submitting", "bundled"})


# Steps due together run in batches of at most this many, in one transaction (run_steps).
STEPS_AT_ONCE = 25


def run_step(rt: Runtime, incident_id: int, step: int) -> bool:
    """Run escalation step `step` of an incident if it is still the due, open step.

    Returns True when this call ran the step, False when there was nothing to do
    (acknowledged, resolved, already run, or not yet due).
    """
    return run_steps(rt, [(incident_id, step)]) == 1


def run_steps(rt: Runtime, due: list[tuple[int, int]]) -> int:
    """Run each `(incident_id, step)` that is still its incident's due, open step, all in
    one transaction; returns how many ran.

    A burst (hundreds of steps paging the same person, who then get one digest) costs one
    commit, one turn at the people's locks and one rewrite of each digest per batch instead
    of one per step. A step that fails is undone alone (its savepoint) and left to the
    sweeper; the others stand.
    """
    rota = rt.rota.current()
    last = oncall.total_steps(rota) - 1
    wanted: dict[int, set[int]] = {}
    for incident_id, step in due:
        wanted.setdefault(incident_id, set()).add(step)
    with unit_of_work(rt) as uow:
        session = uow.session
        incidents = lock_incidents(session, sorted(wanted))
        now = rt.clock()  # after the locks: a step that waited for them ran later, not earlier
        # only an open incident's own step, once it is due (its cursor is the claim)
        planned = [
            (
                incident,
                incident.next_step,
                oncall.escalation_step(rota, now, min(incident.next_step, last), incident.language),
            )
            for incident in incidents
            if incident.status == "open"
            and incident.next_step in wanted[incident.id]
            and incident.next_step_at is not None
            and incident.next_step_at <= now
        ]
        if not planned:
            return 0
        # a page's text is read only for a page of its own (in a batch most join a digest);
        # a lone step most often pages at once, so its text is read before the lock below
        bodies = {
            incident.id: page_body_later(rt, session, incident, plan.is_fallback)
            for incident, _step, plan in planned
        }
        lone = len(planned) == 1
        if lone:
            bodies[planned[0][0].id]()
        # From here to the commit, steps paging the same people run one at a time (a surge
        # pages one person for hundreds of incidents): read everything else before this.
        unreachable = lock_staff(session, [s.id for *_, plan in planned for s in plan.staff])
        people = Burst(unreachable)
        alarms = checkins.alarms_standing(session, [incident.id for incident, *_ in planned])
        ran = _write_steps(uow, planned, bodies, people, now, alarms)
        for digest_id in people.digests:
            digest = session.get(Message, digest_id)
            if digest is not None:  # None: started by a step that was undone
                rewrite_digest(uow, digest, now)
    return ran


def _write_steps(
    uow: UnitOfWork,
    planned: list[tuple[Incident, int, oncall.Step]],
    bodies: dict[int, Callable[[], str]],
    people: Burst,
    now: datetime,
    alarms: set[int],
) -> int:
    """Write the planned steps; in a batch each in a savepoint of its own, so that one that
    fails is undone alone and left to the sweeper. Returns how many were written. The
    incidents in `alarms` page as alarms (never folded into a digest, sent first)."""
    if len(planned) == 1:
        incident, step, plan = planned[0]
        alarm = incident.id in alarms
        _write_step(uow, incident, step, plan, bodies[incident.id], people, now, alarm)
        return 1
    ran = 0
    for incident, step, plan in planned:
        alarm = incident.id in alarms
        try:
            with uow.savepoint():
                _write_step(uow, incident, step, plan, bodies[incident.id], people, now, alarm)
            ran += 1
        except Exception:
            log.exception("step %d of #%d failed; the sweeper will run it", step, incident.id)
    return ran


def _write_step(
    uow: UnitOfWork,
    incident: Incident,
    step: int,
    planned: oncall.Step,
    body: Callable[[], str],
    people: Burst,
    now: datetime,
    alarm: bool = False,
) -> None:
    """Write one step's pages (the people locked), move the cursor, schedule the next.
    `alarm`: the incident's alarm stands (MISSED CHECK-IN, DURESS)."""
    pages = [
        page
        for person in planned.staff
        for page in _person_pages(uow, incident, step, person, body, people, now, alarm)
    ]
    uow.session.add_all(pages)
    reachable = any(p.status in UNDER_WAY for p in pages)
    # a level with nobody on call, or nobody reachable, moves on at once
    wait = planned.wait if reachable else timedelta(0)
    incident.next_step = step + 1
    incident.next_step_at = now + wait
    if reachable and incident.first_paged_at is None:
        incident.first_paged_at = now
    who = ",".join(dict.fromkeys(p.staff_id for p in pages if p.status in UNDER_WAY)) or "nobody"
    where = "fallback" if planned.is_fallback else f"level {planned.level}"
    uow.session.add(
        Event(
            incident_id=incident.id,
            at=now,
            kind="paged",
            actor="system",
            detail=f"step {step} ({where}, round {planned.round + 1}): {who}",
        )
    )
    uow.session.flush()  # in a batch, inside the step's savepoint: a failure undoes it alone
    uow.schedule_step(incident.id, step + 1, incident.next_step_at)


def _person_pages(
    uow: UnitOfWork,
    incident: Incident,
    step: int,
    person: oncall.Staff,
    body: Callable[[], str],
    people: Burst,
    now: datetime,
    alarm: bool,
) -> list[Page]:
    """The pages of one person for one step: a notification call where they asked for one,
    and an SMS: skipped when SMS cannot reach them, folded into their digest in a surge, or
    written claimed (the incident is locked and open: routing.outbox). An alarm's page is
    never folded (a crackdown is when alarms matter most) and leaves ahead of other sends."""

    def page(method: str, **fields) -> Page:  # noqa: ANN003
        return Page(
            incident_id=incident.id,
            step=step,
            staff_id=person.id,
            method=method,
            created_at=now,
            **fields,
        )

    pages = []
    if "call" in person.notify:
        # a call goes out to opted-out staff too: STOP blocks only SMS (README.md, "Staff
        # SMS commands")
        call = outbox.add_call(
            uow, to=person.phone, purpose="notify", incident_id=incident.id, staff_id=person.id
        )
        pages.append(page("call", call_id=call.id))
    if person.id in people.unreachable_by_sms:
        pages.append(page("sms", status="skipped"))
    elif not alarm and people.folds(uow.session, person.id, now):
        bundled = bundle_page(uow, person, incident.id, step, now)
        people.digests.add(bundled.message_id)
        pages.append(bundled)
    else:
        message = outbox.add_message(
            uow,
            to=person.phone,
            purpose="page",
            incident_id=incident.id,
            staff_id=person.id,
            body=body(),
            claim_now=True,
            urgent=alarm,
        )
        people.paged(person.id)
        pages.append(page("sms", status=message.status, message_id=message.id))
    return pages


def advance_now(rt: Runtime, incident_id: int, actor: str, kind: str, detail: str = "") -> bool:
    """Make the incident's pending step due now (PASS, or every page of a step failed).

    Returns False when the incident is not open."""
    now = rt.clock()
    with unit_of_work(rt) as uow:
        incident = lock_incident(uow.session, incident_id)
        if incident is None or incident.status != "open" or incident.next_step is None:
            return False
        incident.next_step_at = min(incident.next_step_at or now, now)
        uow.session.add(
            Event(incident_id=incident_id, at=now, kind=kind, actor=actor, detail=detail)
        )
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
    return advance_now(
        rt,
        page.incident_id,
        "system",
        "escalated_early",
        f"step {page.step}: no page could be delivered",
    )
