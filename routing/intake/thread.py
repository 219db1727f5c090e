"""Threading a stored contact: find the person behind it, then open their incident (and start
its escalation) or join the one they have, in a savepoint of the caller's transaction.

`thread` is the sweeper's way in, `thread_after_answer` a webhook's once its answer is out,
`thread_batch` a worker's for what busy webhooks stored.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from routing import checkins, outbox
from routing.datakeys import seal, unseal
from routing.identity import (
    Party,
    is_blocked,
    party,
    person_hashes,
    unresolved_incident,
    was_silenced,
)
from routing.intake.contacts import Received
from routing.intake.flood import watch_for_a_flood
from routing.intake.relay import media_note, relay_in_uow
from routing.intake.store import auto_reply_to, language_of
from routing.parse_commands import OPTED_OUT_EVENT, is_opt_out
from routing.runtime import Runtime
from routing.tables import ANSWERED, UNTHREADED, Call, Event, Incident, Message
from routing.texts import auto_reply
from routing.uow import UnitOfWork, unit_of_work

log = logging.getLogger(__name__)


def thread(
    rt: Runtime, kind: str, row_id: int, *, hold: timedelta | None = None, schedule: bool = True
) -> Received:
    """Attach a stored defender contact to its person's incident, opening one (and starting
    escalation) when they have none unresolved. Idempotent: the sweeper's way in."""
    with unit_of_work(rt) as uow:
        return _thread_stored(uow, kind, row_id, hold, schedule)


def thread_after_answer(rt: Runtime, row_id: int) -> None:
    """Thread a defender's message the webhook has answered (`Received.to_thread`). A
    failure is logged and left to the sweeper: the message is stored."""
    try:
        thread(rt, "message", row_id)
    except Exception:
        log.exception("message %s answered but not threaded; the sweeper will retry", row_id)


def thread_batch(rt: Runtime, keys: list[tuple[str, int]]) -> int:
    """Thread stored contacts (`(kind, row_id)`, as `thread`) in one transaction, each in a
    savepoint of its own (`_thread_in_savepoints`): one that fails is undone alone and left
    for the sweeper. Returns how many were threaded. A worker's way in for what busy
    webhooks deferred."""
    done = 0
    with unit_of_work(rt) as uow:
        for kind, row_id in sorted(keys):
            try:
                done += _thread_stored(uow, kind, row_id, None, True).row_id is not None
            except Exception:
                log.exception("%s %s not threaded; the sweeper will retry", kind, row_id)
    return done


def _thread_stored(
    uow: UnitOfWork, kind: str, row_id: int, hold: timedelta | None, schedule: bool
) -> Received:
    rt = uow.rt
    table = Message if kind == "message" else Call
    row = uow.session.exec(select(table).where(table.id == row_id).with_for_update()).first()
    if row is None:
        return Received(None)
    if (
        row.incident_id is not None
        or row.status not in (*UNTHREADED, "ringing")
        or (kind == "message" and row.purpose != "defender")
    ):
        return Received(row_id, row.incident_id)
    channel = row.channel if kind == "message" else "voice"
    who = party(unseal(rt.vault, row, "address") or "", channel, row.sid or str(row.id))
    body = (unseal(rt.vault, row, "body") or "") if kind == "message" else ""
    return thread_in_savepoints(uow, kind, row, who, body, hold, schedule)


def thread_in_savepoints(
    uow: UnitOfWork,
    kind: str,
    row: Message | Call,
    who: Party,
    body: str,
    hold: timedelta | None,
    schedule: bool,
) -> Received:
    for _attempt in range(3):
        try:
            with uow.savepoint():
                return _thread(uow, kind, row, who, body, hold, schedule)
        except IntegrityError:
            # another contact of the same person opened the incident first: join it
            continue
    raise RuntimeError(f"could not thread {kind} {row.id}")


def _thread(
    uow: UnitOfWork,
    kind: str,
    row: Message | Call,
    who: Party,
    body: str,
    hold: timedelta | None,
    schedule: bool,
) -> Received:
    """Thread `row` (stored, not yet threaded, in `uow`) from `who`, who said `body`.
    A new incident's auto-reply goes out through the outbox, unless the webhook's answer
    has carried it already (`ANSWERED`)."""
    rt, session, now = uow.rt, uow.session, uow.rt.clock()
    channel = row.channel if kind == "message" else "voice"
    hashes = person_hashes(rt.vault, who.key)
    answered = kind == "message" and row.status == ANSWERED
    if is_blocked(session, hashes, now):
        return _blocked(uow, kind, row, body, answered)
    incident = unresolved_incident(session, hashes)
    opened = incident is None
    if opened:
        incident = _open(uow, who, channel, body, hold)
    else:
        _join(uow, incident, kind, channel, row, body)
    row.incident_id = incident.id
    opted_out = kind == "message" and is_opt_out(body)
    if opted_out:
        # the carrier now refuses our SMS to them, but a defender in danger who typed
        # "Stop" must still reach a human: staff are told to call (routing.escalation)
        _event(uow, incident, OPTED_OUT_EVENT, "texted a carrier opt-out word")
    if kind == "message":
        row.status = "threaded"
    # a contact keeps their check-in; a duress word in it raises the alarm (quietly: the
    # defender gets exactly what any message gets, below)
    checkins.on_contact(
        uow,
        incident,
        hashes,
        kind=kind,
        channel=channel,
        body=body,
        opened=opened,
        schedule=schedule,
    )
    if not opened:
        _latest_channel(uow, incident, who)
    if answered:
        _record_answer(uow, row, incident.id, body)
    elif opened and kind == "message" and not opted_out:
        _auto_reply(uow, incident, who, channel)
    if opened and schedule:
        uow.schedule_step(incident.id, 0, incident.next_step_at)
    return Received(row.id, incident.id, opened=opened)


def _blocked(uow: UnitOfWork, kind: str, row: Message | Call, body: str, answered: bool):  # noqa: ANN202
    """A blocked person's contact: kept as blocked, threaded into nothing."""
    if answered:
        _record_answer(uow, row, None, body)
    row.status = "blocked"
    uow.session.add(
        Event(at=uow.rt.clock(), kind=f"blocked_{kind}", actor="system", detail=f"{kind} {row.id}")
    )
    return Received(row.id, blocked=True)


def _join(
    uow: UnitOfWork, incident: Incident, kind: str, channel: str, row: Message | Call, body: str
) -> None:
    """A further contact joins the person's unresolved incident: logged, and a message is
    relayed to whoever took the incident."""
    incident.last_inbound_at = uow.rt.clock()  # check-ins count from it (routing.checkins)
    _event(uow, incident, kind, f"{channel} {'message' if kind == 'message' else 'call'}")
    if kind == "message" and incident.status == "acknowledged":
        relay_in_uow(uow, incident, body + media_note(row))


def _latest_channel(uow: UnitOfWork, incident: Incident, who: Party) -> None:
    """Replies and relays go out on the channel the person last used."""
    vault = uow.rt.vault
    if who.address is not None and unseal(vault, incident, "defender") != who.address:
        seal(uow.session, vault, incident, defender=who.address)


def _auto_reply(uow: UnitOfWork, incident: Incident, who: Party, channel: str) -> None:
    """Tell a defender whose first message opened `incident` that help is coming, unless the
    incident is silent. A web conversation has no phone to text (its page says a person will
    answer there), and a withheld sender has nowhere to be texted."""
    if not uow.rt.settings.auto_reply or incident.silent or channel == "web" or who.address is None:
        return
    outbox.add_message(
        uow,
        to=who.address,
        body=auto_reply(incident.language),
        purpose="auto_reply",
        incident_id=incident.id,
    )


def _event(uow: UnitOfWork, incident: Incident, kind: str, detail: str) -> None:
    uow.session.add(
        Event(
            incident_id=incident.id, at=uow.rt.clock(), kind=kind, actor="defender", detail=detail
        )
    )


def _record_answer(uow: UnitOfWork, row: Message, incident_id: int | None, body: str) -> None:
    """Log the auto-reply the webhook answered `row` with (TwiML) as a message sent, at the
    moment it was answered."""
    vault = uow.rt.vault
    answer = Message(
        incident_id=incident_id,
        direction="out",
        channel=row.channel,
        purpose="auto_reply",
        address_hash=row.address_hash,
        status="sent",
        created_at=row.created_at,
        updated_at=row.created_at,
    )
    body_sealed = auto_reply_to(uow.rt, body)
    seal(uow.session, vault, answer, address=unseal(vault, row, "address"), body=body_sealed)
    uow.session.add(answer)


def _open(uow: UnitOfWork, who: Party, channel: str, body: str, hold: timedelta | None) -> Incident:
    rt, session, now = uow.rt, uow.session, uow.rt.clock()
    language = language_of(rt, body)
    incident = Incident(
        channel=channel,
        language=language,
        defender_hash=rt.vault.lookup_hash(who.key),
        opened_at=now,
        last_inbound_at=now,
        next_step=0,
        next_step_at=now + (hold or timedelta(0)),
        silent=who.identified and was_silenced(session, person_hashes(rt.vault, who.key)),
    )
    seal(session, rt.vault, incident, defender=who.address)  # under a data key of its own
    session.add(incident)
    session.flush()
    what = "message" if channel != "voice" else "call"
    session.add(
        Event(
            incident_id=incident.id,
            at=now,
            kind="opened",
            actor="defender",
            detail=f"{channel} {what}" if channel != "voice" else "voice call",
        )
    )
    watch_for_a_flood(uow, incident.id)
    return incident
