"""Twilio's copies of what retention erases (routing.retention).

Twilio keeps its own copy of every message, call (both parties' numbers), recording and
transcription. Each erased sid is queued as a `TwilioDeletion` in the transaction that erases
its row (`queue_deletion`), and deleted through the REST API afterwards, with no transaction
open (`delete_at_twilio`): a recording with its transcriptions, a 404 counting as done, any
other failure left queued for the next run. Once Twilio confirms, our own copies of the sid
go too. An auto-reply the webhook answered with as TwiML has no sid here: it is looked up at
Twilio before its number is erased (`find_answers_at_twilio`).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlmodel import Session, select

from routing.datakeys import unseal
from routing.notifier import SendError
from routing.outbox import sender_for
from routing.runtime import Runtime
from routing.tables import AGED_OUT, Call, Incident, Message, TwilioDeletion
from routing.uow import unit_of_work

log = logging.getLogger(__name__)

STALE_CLAIM = timedelta(minutes=10)  # a deletion claimed this long ago died with its process


def find_answers_at_twilio(rt: Runtime, cutoff: datetime) -> None:
    """An auto-reply the webhook answered with as TwiML was sent by Twilio, which never told
    us its sid. Before the incidents due are erased (with the number their auto-replies went
    to), look each up at Twilio and record its sid, so it is deleted there with the rest. No
    transaction is open during the lookups; one that fails leaves that auto-reply at Twilio,
    logged."""
    with Session(rt.engine) as session:
        answers = session.exec(
            select(Message)
            .join(Incident, Message.incident_id == Incident.id)
            .where(
                Incident.status == "resolved",
                or_(Incident.resolved_at <= cutoff, Incident.resolved_by == AGED_OUT),
                Incident.purged_at.is_(None),
                Message.purpose == "auto_reply",
                Message.sid.is_(None),
                Message.address_enc.is_not(None),
            )
        ).all()
        wanted = [
            (
                m.id,
                unseal(rt.vault, m, "address"),
                unseal(rt.vault, m, "body"),
                m.channel,
                m.created_at,
            )
            for m in answers
        ]
        session.rollback()
    for message_id, to, body, channel, at in wanted:
        try:
            sids = rt.notifier.find_sent(
                to=to, from_=sender_for(rt, channel), body=body or "", around=at
            )
        except SendError as exc:
            log.warning("auto-reply %s not found at Twilio (%s): it stays there", message_id, exc)
            continue
        if not sids:
            continue
        with unit_of_work(rt) as uow:
            taken = uow.session.exec(select(Message.sid).where(Message.sid.in_(sids))).all()
            sids = [sid for sid in sids if sid not in taken]  # another answer's already
            found = uow.session.get(Message, message_id)
            if sids and found is not None and found.sid is None:
                found.sid = sids[0]
                for extra in sids[1:]:  # the same answer twice (a repeated delivery)
                    queue_deletion(uow.session, "message", extra, found.incident_id, rt.clock())


def queue_deletion(
    session: Session, kind: str, sid: str, incident_id: int | None, now: datetime
) -> None:
    exists = session.exec(
        select(TwilioDeletion.id).where(TwilioDeletion.kind == kind, TwilioDeletion.sid == sid)
    ).first()
    if exists is None:
        session.add(TwilioDeletion(kind=kind, sid=sid, incident_id=incident_id, created_at=now))


def delete_at_twilio(rt: Runtime) -> tuple[int, int]:
    """Ask Twilio to delete every queued message and recording. Each is claimed first, so
    two workers never both try; a failure leaves it queued for the next run."""
    deleted = pending = 0
    with Session(rt.engine) as session:
        ids = session.exec(
            select(TwilioDeletion.id)
            .where(TwilioDeletion.done_at.is_(None))
            .order_by(TwilioDeletion.id)
        ).all()
        session.rollback()  # release the (SQLite) lock: the HTTP calls happen outside it
    for deletion_id in ids:
        claimed = _claim(rt, deletion_id)
        if claimed is None:
            continue
        kind, sid = claimed
        error: SendError | None = None
        try:
            delete = {
                "message": rt.notifier.delete_message,
                "call": rt.notifier.delete_call,
                "recording": rt.notifier.delete_recording,
            }[kind]
            delete(sid)
        except SendError as exc:
            error = exc
            log.warning(
                "Twilio %s deletion %s failed (%s); retried next run", kind, deletion_id, exc
            )
        with unit_of_work(rt) as uow:
            session = uow.session
            row = session.get(TwilioDeletion, deletion_id)
            row.claimed_at = None
            if error is None:
                row.done_at = rt.clock()
                _forget_sid(session, kind, sid)
                row.sid = f"deleted:{row.id}"
                deleted += 1
            else:
                row.error_code = error.code
                pending += 1
            session.add(row)
    return deleted, pending


def _forget_sid(session: Session, kind: str, sid: str) -> None:
    """Twilio confirmed the deletion: our copies of the sid go too, so that no one holding
    the Twilio credentials can look the erased contact up there."""
    columns = {
        "message": (Message.sid,),
        "call": (Call.sid,),
        "recording": (Call.recording_sid,),
    }[kind]
    for column in columns:
        table = column.class_
        session.exec(update(table).where(column == sid).values({column.key: None}))


def _claim(rt: Runtime, deletion_id: int) -> tuple[str, str] | None:
    now = rt.clock()
    with unit_of_work(rt) as uow:
        session = uow.session
        claimed = session.exec(
            update(TwilioDeletion)
            .where(
                TwilioDeletion.id == deletion_id,
                TwilioDeletion.done_at.is_(None),
                or_(
                    TwilioDeletion.claimed_at.is_(None),
                    TwilioDeletion.claimed_at <= now - STALE_CLAIM,
                ),
            )
            .values(claimed_at=now, attempts=TwilioDeletion.attempts + 1)
        ).rowcount
        row = session.get(TwilioDeletion, deletion_id) if claimed else None
        result = (row.kind, row.sid) if row else None
    return result
