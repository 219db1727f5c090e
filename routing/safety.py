"""Defender safety commands: BLOCK, UNBLOCK and SILENT, and the sender lookups they share.

A sender is known only by keyed hashes (hotline.crypto) of their identity (routing.identity):
a block or a silence covers the person on every channel (SMS, WhatsApp, calls), under every
configured key (old keys still match until `hotline rekey` has run and they are removed).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import delete
from sqlmodel import Session, select

from oncall import Staff
from routing.datakeys import unseal
from routing.identity import is_web, key_of, person_hashes
from routing.incidents import tell_taker
from routing.locks import lock_incident
from routing.parse_commands import Command
from routing.runtime import Runtime
from routing.tables import Block, Event, Incident
from routing.uow import UnitOfWork, unit_of_work

log = logging.getLogger(__name__)
BLOCK_DAYS = 30


def block_command(rt: Runtime, staff: Staff, command: Command) -> str:
    """BLOCK n: the incident's sender opens no incident and pages nobody for BLOCK_DAYS.

    Their messages are still stored (marked `blocked`), so nothing is lost if the block was a
    mistake. The incident itself is left as it is: RESOLVE closes it.
    """
    if command.last is not None:
        return _block_range(rt, staff, command)
    number = command.incident
    with unit_of_work(rt) as uow:
        session = uow.session
        incident = lock_incident(session, number)
        if incident is None:
            return f"No incident #{number}. STATUS lists open ones."
        address = unseal(rt.vault, incident, "defender")
        if address is None:
            return f"#{number}: the sender's number is withheld or erased; nothing to block."
        _block_sender(uow, incident, address, staff.id, f"sender blocked for {BLOCK_DAYS} days")
        tell_taker(uow, incident, staff.id, "blocked the sender")
    if is_web(address):
        # a web conversation is its own person: only this receipt is blocked, nobody else
        return (
            f"#{number}: this web form conversation is blocked for {BLOCK_DAYS} days: "
            f"messages on its receipt are kept but page nobody. UNBLOCK {number} to undo."
        )
    return (
        f"#{number}: sender blocked for {BLOCK_DAYS} days. Their messages are kept but page "
        f"nobody. UNBLOCK {number} to undo, RESOLVE {number} to close."
    )


def _block_sender(
    uow: UnitOfWork, incident: Incident, address: str, staff_id: str, detail: str
) -> None:
    """Block the person behind `address` (the sender of `incident`) for BLOCK_DAYS, on every
    channel (lookups match their key in all its forms), and log it on the incident."""
    session, now = uow.session, uow.rt.clock()
    digest = uow.rt.vault.lookup_hash(key_of(address))
    block = session.exec(select(Block).where(Block.address_hash == digest)).first()
    if block is None:
        block = Block(address_hash=digest, created_by=staff_id, created_at=now)
    block.created_by, block.incident_id = staff_id, incident.id
    block.expires_at = now + timedelta(days=BLOCK_DAYS)
    session.add(block)
    session.add(
        Event(incident_id=incident.id, at=now, kind="blocked", actor=staff_id, detail=detail)
    )


def _sender_hashes(rt: Runtime, session: Session, incident: Incident) -> list[str]:
    """The hashes the blocks of `incident`'s sender are kept under: their person's, or, once
    the incident is erased, those its blocks were recorded with."""
    if incident.defender_enc is None:
        return list(
            session.exec(select(Block.address_hash).where(Block.incident_id == incident.id)).all()
        )
    return person_hashes(rt.vault, key_of(unseal(rt.vault, incident, "defender")))


def unblock_command(rt: Runtime, staff: Staff, command: Command) -> str:
    """UNBLOCK n: the incident's sender is heard again at once."""
    if command.last is not None:
        return _unblock_range(rt, staff, command)
    number, now = command.incident, rt.clock()
    with unit_of_work(rt) as uow:
        session = uow.session
        incident = lock_incident(session, number)
        if incident is None:
            return f"No incident #{number}. STATUS lists open ones."
        hashes = _sender_hashes(rt, session, incident)
        removed = session.exec(delete(Block).where(Block.address_hash.in_(hashes))).rowcount
        if removed:
            session.add(Event(incident_id=number, at=now, kind="unblocked", actor=staff.id))
            tell_taker(uow, incident, staff.id, "unblocked the sender")
    if not removed:
        return f"#{number}: the sender was not blocked."
    return f"#{number}: sender unblocked. Their next message opens an incident as usual."


BULK_CLOSED = "bulk_closed"  # an open incident BLOCK a-b closed; UNBLOCK a-b reopens it


def _block_range(rt: Runtime, staff: Staff, command: Command) -> str:
    """BLOCK a-b: a flood cleared at once. Every sender of #a..#b is blocked, and those of the
    incidents still open (nobody took them) are closed quietly, without a stand-down each.
    Incidents someone took stay as they are. UNBLOCK a-b undoes both."""
    first, last, now = command.incident, command.last, rt.clock()
    label = f"BLOCK {first}-{last}"
    senders: set[str] = set()
    closed: list[int] = []
    with unit_of_work(rt) as uow:
        session = uow.session
        incidents = _locked_range(session, first, last)
        for incident in incidents:
            address = unseal(rt.vault, incident, "defender")
            if address is not None and key_of(address) not in senders:
                senders.add(key_of(address))
                _block_sender(uow, incident, address, staff.id, f"{label}: sender blocked")
            if incident.status == "open":
                incident.status, incident.resolved_at, incident.resolved_by = (
                    "resolved",
                    now,
                    staff.id,
                )
                incident.next_step = incident.next_step_at = None
                session.add(
                    Event(
                        incident_id=incident.id,
                        at=now,
                        kind=BULK_CLOSED,
                        actor=staff.id,
                        detail=label,
                    )
                )
                closed.append(incident.id)
    if not incidents:
        return f"No incidents #{first}-#{last}. STATUS lists open ones."
    return (
        f"#{first}-#{last}: {len(senders)} sender(s) blocked for {BLOCK_DAYS} days, "
        f"{len(closed)} open incident(s) closed. UNBLOCK {first}-{last} undoes both."
    )


def _unblock_range(rt: Runtime, staff: Staff, command: Command) -> str:
    """UNBLOCK a-b: lift the blocks of #a..#b's senders and reopen the incidents BLOCK a-b
    closed (paged again from level 1, as new)."""
    first, last, now = command.incident, command.last, rt.clock()
    reopened: list[int] = []
    with unit_of_work(rt) as uow:
        session = uow.session
        incidents = _locked_range(session, first, last)
        senders = [incident for incident in incidents if incident.defender_enc]
        hashes = [h for incident in senders for h in _sender_hashes(rt, session, incident)]
        removed = (
            session.exec(delete(Block).where(Block.address_hash.in_(hashes))).rowcount
            if hashes
            else 0
        )
        for incident in incidents:
            last_event = session.exec(
                select(Event.kind)
                .where(Event.incident_id == incident.id)
                .order_by(Event.id.desc())
                .limit(1)
            ).first()
            if (
                incident.status != "resolved"
                or last_event != BULK_CLOSED
                or incident.purged_at is not None
                or _has_another(session, incident)
            ):
                continue
            incident.status, incident.resolved_at, incident.resolved_by = "open", None, None
            incident.next_step, incident.next_step_at = 0, now
            session.add(
                Event(
                    incident_id=incident.id,
                    at=now,
                    kind="reopened",
                    actor=staff.id,
                    detail=f"UNBLOCK {first}-{last}",
                )
            )
            uow.schedule_step(incident.id, 0, now)
            reopened.append(incident.id)
    return (
        f"#{first}-#{last}: {removed} block(s) lifted, {len(reopened)} incident(s) "
        "reopened and paged again."
    )


def _locked_range(session: Session, first: int, last: int) -> list[Incident]:
    return list(
        session.exec(
            select(Incident)
            .where(Incident.id >= first, Incident.id <= last)
            .order_by(Incident.id)
            .with_for_update()
        ).all()
    )


def _has_another(session: Session, incident: Incident) -> bool:
    """True when the person wrote again meanwhile and has another unresolved incident."""
    return (
        session.exec(
            select(Incident.id).where(
                Incident.defender_hash == incident.defender_hash,
                Incident.status != "resolved",
                Incident.id != incident.id,
            )
        ).first()
        is not None
    )


def silent_command(rt: Runtime, staff: Staff, command: Command) -> str:
    """SILENT n: nothing automatic is ever sent to this defender again (this incident and
    their later ones); staff replies (R n) still go out, because staff chose to send them."""
    number, now = command.incident, rt.clock()
    with unit_of_work(rt) as uow:
        session = uow.session
        incident = lock_incident(session, number)
        if incident is None:
            return f"No incident #{number}. STATUS lists open ones."
        if not incident.silent:
            incident.silent = True
            session.add(
                Event(
                    incident_id=number,
                    at=now,
                    kind="silenced",
                    actor=staff.id,
                    detail="no automatic messages to the defender",
                )
            )
            tell_taker(uow, incident, staff.id, "made it silent (no automatic texts)")
    return (
        f"#{number} is silent: no automatic texts to the defender, now or on their next "
        f"incident. Only R{number} replies you send reach them."
    )
