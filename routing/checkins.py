"""Check-ins: a defender who goes silent is noticed, and a duress word raises the alarm quietly.

`CHECKIN 17 <when>` (a staff command) writes a `Checkin` row: the defender of #17 must get in
touch by `due_at`. Every contact of theirs (a message or a call, on any channel) goes through
the intake's thread step, which calls `on_contact` in its own transaction: a one-off check-in
ends `kept`, a standing one (`every 6h`) moves its deadline to 6 h after the contact.

A deadline is held in the database like an escalation step: a job scheduled for it
(routing.tasks.checkin_job) and every worker's sweeper call `miss`, which claims the check-in
under its incident's row lock only once it is due, so it is never early and runs once. A miss
reopens the incident and puts its escalation cursor back at step 0, due now: level 1 is paged
`MISSED CHECK-IN #17` (run_step takes the text from `alarm_page`) and the chain runs as for a
new incident.

A message under an active check-in that holds a duress word (settings.duress_words; case and
accents ignored, whole words) is, for the defender, like any other message (same reply, same
auto-reply), and raises the same alarm as `DURESS #17` at once, also on an acknowledged
incident, whose taker is told too. It is no safe check-in: the deadline stands.

Nothing here ever sends anything to the defender: a seized phone must show nothing unusual.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable
from datetime import UTC, datetime, time, timedelta, tzinfo

from sqlalchemy import delete
from sqlmodel import Session, select

import oncall
from oncall import Staff, format_duration
from routing import jobqueue, outbox
from routing.directory import staff_name, staff_phone
from routing.locks import lock_incident
from routing.masking import show_number
from routing.parse_commands import CheckinSpec, Command
from routing.runtime import Runtime
from routing.tables import Acknowledgement, Checkin, Event, Incident, Message
from routing.texts import CHANNEL_LABEL, alarm_text, local_time
from routing.uow import UnitOfWork, unit_of_work

log = logging.getLogger(__name__)

ACTIVE = "active"
MIN_AHEAD = timedelta(seconds=5)  # short ones are for trying it out; a typo can't page at once
MAX_AHEAD = timedelta(days=7)
# events that start an alarm, and those that end it (someone took the incident again)
ALARMS = ("checkin_missed", "duress")
ALARM_ENDS = ("acknowledged", "resolved")


class Refused(ValueError):
    """A check-in that cannot be set; the message is the reason, as staff read it."""


# --- the deadline (pure) ------------------------------------------------------------------


def deadline(spec: CheckinSpec, now: datetime, zone: tzinfo) -> datetime:
    """The instant (UTC) `spec` names, seen at `now` in the rota's `zone`.

    A duration counts from `now`. A time of day alone (`18:00`) is the next one strictly after
    `now` by the zone's wall clock, across daylight-saving changes; a wall time the clocks skip
    is read with the offset before the change (an hour later by the new clock), one they pass
    twice is the first. `today 9:00`, `tomorrow 9:00` and a dated time name one instant.
    Raises Refused when that instant has passed, is less than MIN_AHEAD or more than
    MAX_AHEAD away.
    """
    if spec.every is not None or spec.after is not None:
        at = now + (spec.every if spec.every is not None else spec.after)
    elif spec.clock is not None:
        local_now = now.astimezone(zone)
        day = spec.on or local_now.date() + timedelta(days=spec.day_offset or 0)
        at = datetime.combine(day, time(*spec.clock), tzinfo=zone)
        if at <= now:
            if spec.on is not None or spec.day_offset is not None:
                raise Refused(
                    f"{local_time(at, now, zone)} has passed (it is {local_time(now, now, zone)})"
                )
            at = datetime.combine(day + timedelta(days=1), time(*spec.clock), tzinfo=zone)
        at = at.astimezone(UTC)
    else:
        raise Refused("no time given")
    if at - now < MIN_AHEAD:
        raise Refused(f"a check-in must be at least {format_duration(MIN_AHEAD)} away")
    if at - now > MAX_AHEAD:
        raise Refused("a check-in may be at most 7 days away")
    return at


def fold(text: str) -> str:
    """`text` without case or accents: NFKD, combining marks dropped, casefolded."""
    return "".join(
        ch for ch in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(ch)
    )


def _tokens(text: str) -> list[str]:
    return re.findall(r"\w+", fold(text))


def has_duress_word(body: str, words: Iterable[str]) -> bool:
    """True when `body` holds one of `words` (each a word or a phrase) as whole words,
    ignoring case, accents and punctuation: "Tournesol!" matches "tournesol", "sunflowers"
    does not match "sunflower"."""
    tokens = _tokens(body or "")
    for phrase in words:
        wanted = _tokens(phrase)
        size = len(wanted)
        if size and any(tokens[i : i + size] == wanted for i in range(len(tokens) - size + 1)):
            return True
    return False


# --- CHECKIN n ... (staff) ----------------------------------------------------------------


def checkin_command(rt: Runtime, staff: Staff, command: Command) -> str:
    """Set, replace or cancel (OFF) the check-in of incident `command.incident`. Returns the
    one confirming SMS, or the reason nothing was set."""
    number, spec = command.incident, command.checkin
    now, zone = rt.clock(), rt.rota.current().timezone
    if spec.off:
        return _off(rt, staff, number)
    try:
        due = deadline(spec, now, zone)
    except Refused as exc:
        return f"#{number}: no check-in set: {exc}. E.g. CHECKIN {number} 18:00 or 2h."
    with unit_of_work(rt) as uow:
        session = uow.session
        incident = lock_incident(session, number)
        refused = _cannot_check_in(session, incident, number)
        if refused:
            return refused
        previous = _active(session, number)
        if previous is not None:
            previous.status, previous.ended_at = "replaced", now
            session.flush()  # one active check-in per incident: end the old one first
        checkin = Checkin(
            incident_id=number,
            set_by=staff.id,
            notify=spec.notify,
            due_at=due,
            every_s=int(spec.every.total_seconds()) if spec.every else None,
            created_at=now,
        )
        session.add(checkin)
        session.flush()
        kind = f"every {format_duration(spec.every)}, first" if spec.every else "one-off"
        session.add(
            Event(
                incident_id=number,
                at=now,
                kind="checkin_set",
                actor=staff.id,
                detail=f"{kind} by {due.isoformat()}" + (", notify" if spec.notify else ""),
            )
        )
        uow.after_commit(lambda: jobqueue.schedule_checkin(rt, checkin.id, due))
        resolved = incident.status == "resolved"
        when = local_time(due, now, zone)
        _tell_taker_of(uow, incident, staff.id, f"set a check-in by {when}")
    text = (
        f"#{number}: standing check-in every {format_duration(spec.every)}, next by {when};"
        " each contact moves it."
        if spec.every
        else f"#{number}: check-in by {when}."
    )
    text += f" Missed: #{number} {'reopens and ' if resolved else ''}pages level 1."
    if spec.notify:
        text += " You get a note at each contact."
    if previous is not None:
        text += f" Replaces the one due {local_time(previous.due_at, now, zone)}."
    return text + f" CHECKIN {number} OFF cancels."


def _cannot_check_in(session: Session, incident: Incident | None, number: int) -> str | None:
    """Why no check-in can be set on `incident`, or None."""
    if incident is None:
        return f"No incident #{number}. STATUS lists open ones."
    if incident.purged_at is not None:
        return (
            f"#{number}: its personal data was erased, so no contact can be matched to "
            "the defender. No check-in set."
        )
    if incident.defender_enc is None:
        return (
            f"#{number}: the defender's number was withheld, so no contact can be matched "
            "to them. No check-in set."
        )
    if incident.status == "resolved":
        other = session.exec(
            select(Incident.id).where(
                Incident.defender_hash == incident.defender_hash, Incident.status != "resolved"
            )
        ).first()
        if other is not None:
            return (
                f"#{number} is resolved; the defender's open incident is #{other}: "
                f"CHECKIN {other} ... instead."
            )
    return None


def _off(rt: Runtime, staff: Staff, number: int) -> str:
    now, zone = rt.clock(), rt.rota.current().timezone
    with unit_of_work(rt) as uow:
        incident = lock_incident(uow.session, number)
        if incident is None:
            return f"No incident #{number}. STATUS lists open ones."
        checkin = _active(uow.session, number)
        if checkin is None:
            return f"#{number} has no check-in. CHECKIN {number} 2h sets one."
        checkin.status, checkin.ended_at = "off", now
        uow.session.add(
            Event(
                incident_id=number,
                at=now,
                kind="checkin_off",
                actor=staff.id,
                detail=f"was due {checkin.due_at.isoformat()}",
            )
        )
        _tell_taker_of(uow, incident, staff.id, "switched its check-in off")
    return f"#{number}: check-in off (it was due {local_time(checkin.due_at, now, zone)})."


def _tell_taker_of(uow: UnitOfWork, incident: Incident, actor: str, what: str) -> None:
    """Whoever took `incident` hears that `actor`, someone else, did `what` (as for every
    command on a taken incident: routing.incidents.tell_taker, a sibling module)."""
    taker = incident.acknowledged_by
    phone = staff_phone(uow.rt, taker) if incident.status == "acknowledged" else None
    if phone and taker != actor:
        outbox.add_message(
            uow,
            to=phone,
            purpose="alert",
            incident_id=incident.id,
            staff_id=taker,
            body=f"#{incident.id}: {staff_name(uow.rt, actor)} {what}.",
        )


def _active(session: Session, incident_id: int) -> Checkin | None:
    return session.exec(
        select(Checkin)
        .where(Checkin.incident_id == incident_id, Checkin.status == ACTIVE)
        .with_for_update()
    ).first()


# --- a contact (the intake's hook) --------------------------------------------------------


def on_contact(
    uow: UnitOfWork,
    incident: Incident,
    hashes: list[str],
    *,
    kind: str,
    channel: str,
    body: str,
    opened: bool,
    schedule: bool = True,
) -> None:
    """A contact of the person behind `hashes` joined `incident` (in `uow`, its row locked).

    `schedule` False keeps Redis out of it, as for the intake (the sweeper runs what is due).
    Their active check-ins follow them to `incident` when it is a new one. A message holding
    a duress word raises the DURESS alarm on `incident` and leaves the deadlines as they are;
    any other contact before a deadline keeps that check-in (a one-off ends, a standing one
    moves), records `checkin_kept` and, when asked for, notes it to whoever set it. A contact
    after the deadline keeps nothing: the miss stands.
    """
    rt, session = uow.rt, uow.session
    now = incident.last_inbound_at or rt.clock()  # the contact's own instant
    with session.no_autoflush:  # what is pending (events, the contact's row) is not asked
        rows = session.exec(
            select(Checkin)
            .join(Incident, Incident.id == Checkin.incident_id)
            .where(Checkin.status == ACTIVE, Incident.defender_hash.in_(hashes))
            .order_by(Checkin.id)
            .with_for_update(of=Checkin)
        ).all()
    if not rows:
        return
    how = f"{channel} {'message' if kind == 'message' else 'call'}"
    for checkin in rows:
        if checkin.incident_id != incident.id:
            _move(session, checkin, incident.id, now)
    if kind == "message" and has_duress_word(body, rt.settings.duress_words):
        taker = raise_alarm(
            uow, incident, "duress", f"a duress word in an {how}", schedule=schedule and not opened
        )
        if taker is not None:
            _tell_taker(uow, incident, taker)
        return
    zone = rt.rota.current().timezone
    for checkin in rows:
        if checkin.status != ACTIVE or checkin.due_at <= now:
            continue  # past its deadline: `miss` runs it within a second
        if checkin.every_s:
            checkin.due_at = now + timedelta(seconds=checkin.every_s)
            detail, note = (
                f"{how}; next by {checkin.due_at.isoformat()}",
                f"Next by {local_time(checkin.due_at, now, zone)}.",
            )
            if schedule:  # else Redis is kept out of it (the fallback URL): the sweeper runs it
                due, checkin_id = checkin.due_at, checkin.id
                uow.after_commit(lambda c=checkin_id, d=due: jobqueue.schedule_checkin(rt, c, d))
        else:
            checkin.status, checkin.ended_at = "kept", now
            detail, note = f"{how}; check-in done", "Check-in done."
        session.add(
            Event(
                incident_id=checkin.incident_id,
                at=now,
                kind="checkin_kept",
                actor="defender",
                detail=detail,
            )
        )
        phone = staff_phone(rt, checkin.set_by) if checkin.notify else None
        if phone:
            label = CHANNEL_LABEL.get(channel, channel)
            outbox.add_message(
                uow,
                to=phone,
                purpose="note",
                incident_id=checkin.incident_id,
                staff_id=checkin.set_by,
                body=f"#{checkin.incident_id}: the defender checked in "
                f"({label}, {local_time(now, now, zone)}). {note}",
            )


def _move(session: Session, checkin: Checkin, to: int, now: datetime) -> None:
    """A contact opened a new incident (theirs was resolved): the check-in goes with them, so
    a miss reopens the incident they are in, never a second one."""
    old = checkin.incident_id
    if _active(session, to) is not None:
        checkin.status, checkin.ended_at = "replaced", now
        session.add(
            Event(
                incident_id=old,
                at=now,
                kind="checkin_off",
                actor="system",
                detail=f"#{to} has its own check-in",
            )
        )
        return
    checkin.incident_id = to
    session.add(
        Event(
            incident_id=old,
            at=now,
            kind="checkin_moved",
            actor="system",
            detail=f"to #{to}, the defender's new incident",
        )
    )
    session.add(
        Event(
            incident_id=to,
            at=now,
            kind="checkin_moved",
            actor="system",
            detail=f"from #{old}; due {checkin.due_at.isoformat()}",
        )
    )


def _tell_taker(uow: UnitOfWork, incident: Incident, taker: str) -> None:
    """The taker of an incident that raised DURESS hears of it at once, unless level 1's page
    reaches them anyway."""
    rt = uow.rt
    level1 = oncall.escalation_step(rt.rota.current(), rt.clock(), 0, incident.language)
    phone = staff_phone(rt, taker)
    if phone and taker not in {person.id for person in (level1.staff if level1 else ())}:
        outbox.add_message(
            uow,
            to=phone,
            purpose="alert",
            incident_id=incident.id,
            staff_id=taker,
            body=_alarm_body(rt, uow.session, incident, False),
        )


# --- the alarm ----------------------------------------------------------------------------


def raise_alarm(
    uow: UnitOfWork, incident: Incident, kind: str, detail: str, *, schedule: bool = True
) -> str | None:
    """Record alarm `kind` ("checkin_missed" or "duress") on `incident` (locked in `uow`) and
    restart its escalation: resolved or acknowledged become open again, the cursor goes to
    step 0 due now, so level 1 is paged (with `alarm_page`'s text) and the chain runs as for
    a new incident. Returns the staff id of the taker it had, or None."""
    session, now = uow.session, uow.rt.clock()
    was, taker = incident.status, None
    session.add(Event(incident_id=incident.id, at=now, kind=kind, actor="system", detail=detail))
    if was == "acknowledged":
        taker = incident.acknowledged_by
        incident.acknowledged_at = incident.acknowledged_by = None
        # the next ACK takes it afresh: the Acknowledgement's key decides that race again
        session.exec(delete(Acknowledgement).where(Acknowledgement.incident_id == incident.id))
    if was == "resolved":
        incident.resolved_at = incident.resolved_by = None
    if was != "open":
        session.add(
            Event(
                incident_id=incident.id,
                at=now,
                kind="reopened",
                actor="system",
                detail=f"was {was}; {kind}",
            )
        )
    incident.status, incident.next_step, incident.next_step_at = "open", 0, now
    session.flush()
    if schedule:
        uow.schedule_step(incident.id, 0, now)
    return taker


def miss(rt: Runtime, checkin_id: int) -> bool:
    """Run check-in `checkin_id`'s deadline if it is active and due: it ends `missed` and its
    incident raises MISSED CHECK-IN. Returns True when this call did it, False when there was
    nothing to do (kept, off, moved on, already run, or not yet due). Idempotent."""
    now = rt.clock()
    with unit_of_work(rt) as uow:
        session = uow.session
        incident_id = session.exec(
            select(Checkin.incident_id).where(Checkin.id == checkin_id)
        ).first()
        if incident_id is None:
            return False
        incident = lock_incident(session, incident_id)  # first, as every writer of it does
        checkin = session.exec(
            select(Checkin).where(Checkin.id == checkin_id).with_for_update()
        ).first()
        if (
            checkin is None
            or checkin.status != ACTIVE
            or checkin.incident_id != incident_id
            or checkin.due_at > now
        ):
            return False
        checkin.status, checkin.ended_at = "missed", now
        last = incident.last_inbound_at
        detail = (
            f"due {checkin.due_at.isoformat()} (set by {checkin.set_by}); last contact "
            f"{last.isoformat() if last else 'none'}"
        )
        target = incident
        if incident.status == "resolved":
            # only one unresolved incident per person: raise it there (a contact moves a
            # check-in to its new incident, so this is the rare leftover case)
            other = session.exec(
                select(Incident)
                .where(
                    Incident.defender_hash == incident.defender_hash, Incident.status != "resolved"
                )
                .with_for_update()
            ).first()
            if other is not None:
                session.add(
                    Event(
                        incident_id=incident.id,
                        at=now,
                        kind="checkin_missed",
                        actor="system",
                        detail=f"{detail}; raised on #{other.id}",
                    )
                )
                target = other
        raise_alarm(uow, target, "checkin_missed", detail)
    log.warning("check-in %s of incident %s missed: paging", checkin_id, target.id)
    return True


def overdue(session: Session, now: datetime, grace: timedelta, limit: int) -> list[int]:
    """Active check-ins whose deadline passed more than `grace` ago, oldest first."""
    return list(
        session.exec(
            select(Checkin.id)
            .where(Checkin.status == ACTIVE, Checkin.due_at <= now - grace)
            .order_by(Checkin.due_at)
            .limit(limit)
        ).all()
    )


def alarm_page(rt: Runtime, session: Session, incident: Incident, fallback: bool) -> str | None:
    """The page text while `incident`'s latest alarm (MISSED CHECK-IN, DURESS) stands, i.e.
    until someone acknowledges or resolves it; None when there is none (a normal page)."""
    latest = session.exec(
        select(Event.kind)
        .where(Event.incident_id == incident.id, Event.kind.in_(ALARMS + ALARM_ENDS))
        .order_by(Event.id.desc())
        .limit(1)
    ).first()
    if latest not in ALARMS:
        return None
    return _alarm_body(rt, session, incident, fallback, latest)


def _alarm_body(
    rt: Runtime, session: Session, incident: Incident, fallback: bool, kind: str = "duress"
) -> str:
    sender = show_number(rt.vault.decrypt(incident.defender_enc), rt.settings.reveal_numbers)
    if kind == "duress":
        last = session.exec(
            select(Message)
            .where(Message.incident_id == incident.id, Message.direction == "in")
            .order_by(Message.id.desc())
            .limit(1)
        ).first()
        words = (rt.vault.decrypt(last.body_enc) or "") if last else ""
        return alarm_text(
            "duress",
            incident.id,
            last.channel if last else incident.channel,
            sender,
            words=words,
            fallback=fallback,
        )
    seen = incident.last_inbound_at
    zone = rt.rota.current().timezone
    return alarm_text(
        "missed",
        incident.id,
        incident.channel,
        sender,
        fallback=fallback,
        last_contact=local_time(seen, rt.clock(), zone) if seen else "",
    )


# --- reading, and retention ---------------------------------------------------------------


def active_checkins(session: Session) -> dict[int, Checkin]:
    """Every active check-in, by incident id."""
    rows = session.exec(select(Checkin).where(Checkin.status == ACTIVE)).all()
    return {row.incident_id: row for row in rows}


def status_notes(rt: Runtime, session: Session) -> dict[int, str]:
    """For STATUS: " check-in 18:00 GMT today" (" every 6h" for a standing one), by incident."""
    now, zone = rt.clock(), rt.rota.current().timezone
    return {
        number: f" check-in {local_time(row.due_at, now, zone)}"
        + (f" (every {format_duration(timedelta(seconds=row.every_s))})" if row.every_s else "")
        for number, row in active_checkins(session).items()
    }


def end_for_erased(session: Session, incident_ids: list[int], now: datetime) -> int:
    """End the active check-ins of incidents whose personal data is being erased (no contact
    can be matched to them any more). Returns how many ended."""
    rows = session.exec(
        select(Checkin)
        .where(Checkin.incident_id.in_(incident_ids), Checkin.status == ACTIVE)
        .with_for_update()
    ).all()
    for row in rows:
        row.status, row.ended_at = "erased", now
        session.add(
            Event(
                incident_id=row.incident_id,
                at=now,
                kind="checkin_off",
                actor="system",
                detail="personal data erased",
            )
        )
    return len(rows)
