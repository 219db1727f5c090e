"""Retention: personal data of old resolved incidents is erased here and at Twilio.

`purge` erases the numbers, bodies, recordings and transcripts of incidents resolved more
than N days ago, and of messages and calls older than that which belong to no incident (staff
commands, blocked senders). What remains is what reports need: statuses, timings, staff ids,
counts. Keyed hashes become tombstones (`purged:…`) that match no sender, and the blocks of
erased incidents go with them, so an erased incident can no longer be linked to its defender,
not even by someone who holds the key.

Twilio's copies of what is erased here are deleted there (routing.twiliocopies). Everything
is idempotent: a run finds only what earlier runs left.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, not_, or_, update
from sqlmodel import Session, select

from routing.agedout import close_aged_out
from routing.checkins import end_for_erased
from routing.datakeys import destroy
from routing.runtime import Runtime
from routing.tables import (
    AGED_OUT,
    UNTHREADED,
    Block,
    Call,
    Checkin,
    Event,
    Incident,
    Message,
    Note,
    Page,
)
from routing.twiliocopies import delete_at_twilio, find_answers_at_twilio, queue_deletion
from routing.uow import unit_of_work
from routing.webconversation import forget_receipts

log = logging.getLogger(__name__)

BATCH = 100
PURGE_EVERY = timedelta(days=1)
UNSENT = ("pending", "retrying", "submitting")


@dataclass
class PurgeReport:
    incidents: int = 0
    messages: int = 0
    calls: int = 0
    blocks: int = 0
    deleted_at_twilio: int = 0
    pending_at_twilio: int = 0

    def summary(self) -> str:
        return (
            f"{self.incidents} incident(s), {self.messages} message(s), {self.calls} "
            f"call(s) erased; {self.blocks} block(s) removed (expired, or of those incidents); "
            f"{self.deleted_at_twilio} deleted at Twilio, {self.pending_at_twilio} pending"
        )


def purge(rt: Runtime, older_than_days: int, *, actor: str = "system") -> PurgeReport:
    """Erase personal data older than `older_than_days` (see the module docstring) and ask
    Twilio to delete its copies. Records a `purge_ran` event. Returns the counts."""
    now = rt.clock()
    cutoff = now - timedelta(days=older_than_days)
    report = PurgeReport()
    close_aged_out(rt)  # never left unresolved, and so never erased, for good
    find_answers_at_twilio(rt, cutoff)
    while _erase_incidents(rt, cutoff, now, older_than_days, actor, report):
        pass
    while _erase_strays(rt, cutoff, report):
        pass
    with unit_of_work(rt) as uow:
        session = uow.session
        report.blocks += session.exec(delete(Block).where(Block.expires_at <= now)).rowcount
    deleted, pending = delete_at_twilio(rt)
    report.deleted_at_twilio, report.pending_at_twilio = deleted, pending
    with unit_of_work(rt) as uow:
        session = uow.session
        session.add(
            Event(
                at=rt.clock(),
                kind="purge_ran",
                actor=actor,
                detail=f"older than {older_than_days} days: {report.summary()}",
            )
        )
    log.info("purge: %s", report.summary())
    return report


def purge_due(rt: Runtime) -> bool:
    """True when no purge ran in the last PURGE_EVERY (any process: the database decides)."""
    with Session(rt.engine) as session:
        last = session.exec(
            select(Event.at).where(Event.kind == "purge_ran").order_by(Event.at.desc()).limit(1)
        ).first()
    return last is None or last <= rt.clock() - PURGE_EVERY


def _erase_incidents(
    rt: Runtime, cutoff: datetime, now: datetime, days: int, actor: str, report: PurgeReport
) -> bool:
    """Erase one batch of due incidents with their messages and calls. False when none left."""
    with unit_of_work(rt) as uow:
        session = uow.session
        incidents = session.exec(
            select(Incident)
            .where(
                Incident.status == "resolved",
                or_(Incident.resolved_at <= cutoff, Incident.resolved_by == AGED_OUT),
                Incident.purged_at.is_(None),
            )
            .order_by(Incident.id)
            .limit(BATCH)
            .with_for_update()
        ).all()
        if not incidents:
            return False
        ids = [incident.id for incident in incidents]
        keys = [incident.key_id for incident in incidents]
        for incident in incidents:
            if incident.channel == "web":  # its receipt must open nothing any more
                forget_receipts(session, rt.vault, incident.defender_hash)
            incident.defender_enc, incident.defender_hash = None, f"purged:{incident.id}"
            incident.key_id, incident.purged_at = None, now
            session.add(
                Event(
                    incident_id=incident.id,
                    at=now,
                    kind="erased",
                    actor=actor,
                    detail=f"personal data erased ({days}-day retention)",
                )
            )
        end_for_erased(session, ids, now)  # no contact can be matched to them any more
        # a block's keyed hash would let whoever holds the key find the number again
        report.blocks += session.exec(delete(Block).where(Block.incident_id.in_(ids))).rowcount
        for message in session.exec(select(Message).where(Message.incident_id.in_(ids))).all():
            report.messages += _let_go(session, message, now, keys)
        for call in session.exec(select(Call).where(Call.incident_id.in_(ids))).all():
            report.calls += _let_go(session, call, now, keys)
        # every copy of what they sealed, anywhere, stops opening (routing.datakeys)
        destroy(session, rt.vault, keys)
        _keep_only_coarse_figures(session, incidents, ids)
    report.incidents += len(ids)
    return True


def _keep_only_coarse_figures(session: Session, incidents: list[Incident], ids: list[int]) -> None:
    """What is left of erased incidents would still re-identify a defender when matched with
    a carrier's records: the exact instant of every contact, SIDs, error codes (21610: they
    texted STOP), media types, check-in deadlines, the silent flag. Their messages, calls and
    check-ins go (Twilio's copies were queued for deletion by then); the incidents, their pages
    and their audit trail keep channel, language, who did what, and times to the minute,
    which is all `hotline report` needs. The audit trail is otherwise append-only (see
    routing.tables.Event): this coarsening is the one change made to it, and it goes around
    the guard on purpose, by statement."""
    session.exec(
        update(Page)
        .where(Page.incident_id.in_(ids))
        .values(message_id=None, call_id=None, updated_at=None)
    )
    for page in session.exec(select(Page).where(Page.incident_id.in_(ids))).all():
        page.created_at = to_the_minute(page.created_at)
    session.flush()
    for table in (Message, Call, Checkin, Note):  # notes: sealed under the incident's key
        session.exec(delete(table).where(table.incident_id.in_(ids)))
    events = session.exec(select(Event.id, Event.at).where(Event.incident_id.in_(ids))).all()
    for event_id, at in events:
        if at != to_the_minute(at):
            session.exec(update(Event).where(Event.id == event_id).values(at=to_the_minute(at)))
    for incident in incidents:
        incident.silent, incident.next_step, incident.next_step_at = False, None, None
        for name in ("opened_at", "first_paged_at", "acknowledged_at", "resolved_at"):
            setattr(incident, name, to_the_minute(getattr(incident, name)))
        incident.last_inbound_at = None


def to_the_minute(when: datetime | None) -> datetime | None:
    return when.replace(second=0, microsecond=0) if when is not None else None


def _erase_strays(rt: Runtime, cutoff: datetime, report: PurgeReport) -> bool:
    """Erase one batch of old messages and calls of no incident. False when none left."""
    now = rt.clock()
    with unit_of_work(rt) as uow:
        session = uow.session
        messages = session.exec(
            select(Message)
            .where(
                Message.incident_id.is_(None),
                Message.created_at <= cutoff,
                or_(
                    Message.address_enc.is_not(None),
                    Message.body_enc.is_not(None),
                    Message.media_enc.is_not(None),
                ),
                # never a defender message the sweeper has yet to thread, nor an unsent one
                not_(and_(Message.purpose == "defender", Message.status.in_(UNTHREADED))),
                Message.status.not_in(UNSENT),
            )
            .order_by(Message.id)
            .limit(BATCH)
            .with_for_update()
        ).all()
        calls = session.exec(
            select(Call)
            .where(
                Call.incident_id.is_(None),
                Call.created_at <= cutoff,
                or_(
                    Call.address_enc.is_not(None),
                    Call.recording_enc.is_not(None),
                    Call.transcript_enc.is_not(None),
                ),
            )
            .order_by(Call.id)
            .limit(BATCH)
            .with_for_update()
        ).all()
        keys: list[str | None] = []
        for message in messages:
            report.messages += _erase(session, message, now, keys)
        for call in calls:
            report.calls += _erase(session, call, now, keys)
        destroy(session, rt.vault, keys)
    return bool(messages or calls)


# what erasing a row empties, the prefix of its tombstone hash, and what Twilio keeps of it:
# (kind, column of its sid). Deleting a message at Twilio deletes its media there too; a
# call keeps both parties' numbers there, and its recording its transcriptions
_ERASED = {
    Message: (("address_enc", "body_enc", "media_enc"), "m", (("message", "sid"),)),
    Call: (
        ("address_enc", "recording_enc", "transcript_enc"),
        "c",
        (("call", "sid"), ("recording", "recording_sid")),
    ),
}


def _erase(session: Session, row: Message | Call, now: datetime, keys: list[str | None]) -> int:
    """Empty a message's or a call's personal columns (a row that stays: one of no incident),
    after `_let_go`. Returns 1, or 0 when it held nothing left to erase."""
    if not _let_go(session, row, now, keys):
        return 0
    fields, prefix, _at_twilio = _ERASED[type(row)]
    row.key_id = None
    for field in fields:
        setattr(row, field, None)
    row.address_hash = f"purged:{prefix}{row.id}"
    row.updated_at = now
    return 1


def _let_go(session: Session, row: Message | Call, now: datetime, keys: list[str | None]) -> int:
    """Add a row's data key to `keys` (to be destroyed) and queue Twilio's copy of it for
    deletion; the row itself is the caller's (emptied, or deleted with its incident's).
    Returns 1, or 0 when it held nothing left to erase."""
    fields, _prefix, at_twilio = _ERASED[type(row)]
    if all(getattr(row, field) is None for field in fields):
        return 0
    keys.append(row.key_id)
    for twilio_kind, sid_field in at_twilio:
        if sid := getattr(row, sid_field):
            queue_deletion(session, twilio_kind, sid, row.incident_id, now)
    return 1
