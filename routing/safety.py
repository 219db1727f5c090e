"""Defender safety commands: BLOCK, UNBLOCK and SILENT, and the sender lookups they share.

A sender is known only by keyed hashes (hotline.crypto). A defender may write by SMS and by
WhatsApp from the same number, so a block or a silence covers both forms of the address, under
every configured key (old keys still match until `hotline rekey` has run and they are removed).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel import Session, select

from oncall import Staff
from routing.commands import Command
from routing.locks import lock_incident
from routing.runtime import Crypto, Runtime
from routing.tables import Block, Event, Incident

log = logging.getLogger(__name__)
BLOCK_DAYS = 30


def address_variants(address: str) -> list[str]:
    """The forms one sender can arrive under: `+4477…` and `whatsapp:+4477…` (input first)."""
    bare = address.removeprefix("whatsapp:")
    variants = [address, bare, f"whatsapp:{bare}"]
    return list(dict.fromkeys(variants))


def sender_hashes(vault: Crypto, address: str) -> list[str]:
    """Keyed hashes of every form of `address` under every configured key."""
    return [h for variant in address_variants(address) for h in vault.lookup_hashes(variant)]


def was_silenced(session: Session, hashes: list[str]) -> bool:
    """True when an incident of this sender still on record was put in silent mode.

    Silence carries over to the sender's next incident: whoever asked for it is still at the
    same risk. It lasts as long as the records do: purged incidents no longer match any hash.
    """
    return session.exec(
        select(Incident.id).where(Incident.defender_hash.in_(hashes), Incident.silent)
    ).first() is not None


def block_command(rt: Runtime, staff: Staff, command: Command) -> str:
    """BLOCK n: the incident's sender opens no incident and pages nobody for BLOCK_DAYS.

    Their messages are still stored (marked `blocked`), so nothing is lost if the block was a
    mistake. The incident itself is left as it is: RESOLVE closes it.
    """
    number, now = command.incident, rt.clock()
    with Session(rt.engine) as session:
        incident = lock_incident(session, number)
        if incident is None:
            return f"No incident #{number}. STATUS lists open ones."
        address = rt.vault.decrypt(incident.defender_enc)
        if address is None:
            return f"#{number}: the sender's number is withheld or erased; nothing to block."
        expires = now + timedelta(days=BLOCK_DAYS)
        for variant in address_variants(address):
            _upsert_block(session, rt.vault.lookup_hash(variant), staff.id, number, now, expires)
        session.add(Event(incident_id=number, at=now, kind="blocked", actor=staff.id,
                          detail=f"sender blocked for {BLOCK_DAYS} days"))
        session.commit()
    return (f"#{number}: sender blocked for {BLOCK_DAYS} days. Their messages are kept but page "
            f"nobody. UNBLOCK {number} to undo, RESOLVE {number} to close.")


def _upsert_block(session: Session, digest: str, staff_id: str, number: int, now: datetime,
                  expires: datetime) -> None:
    block = session.exec(select(Block).where(Block.address_hash == digest)).first()
    if block is None:
        block = Block(address_hash=digest, created_by=staff_id, created_at=now)
    block.created_by, block.incident_id, block.expires_at = staff_id, number, expires
    session.add(block)


def unblock_command(rt: Runtime, staff: Staff, command: Command) -> str:
    """UNBLOCK n: the incident's sender is heard again at once."""
    number, now = command.incident, rt.clock()
    with Session(rt.engine) as session:
        incident = lock_incident(session, number)
        if incident is None:
            return f"No incident #{number}. STATUS lists open ones."
        if incident.defender_enc is None:
            hashes = [b for b in session.exec(
                select(Block.address_hash).where(Block.incident_id == number)).all()]
        else:
            hashes = sender_hashes(rt.vault, rt.vault.decrypt(incident.defender_enc))
        removed = session.exec(delete(Block).where(Block.address_hash.in_(hashes))).rowcount
        if removed:
            session.add(Event(incident_id=number, at=now, kind="unblocked", actor=staff.id))
        session.commit()
    if not removed:
        return f"#{number}: the sender was not blocked."
    return f"#{number}: sender unblocked. Their next message opens an incident as usual."


def silent_command(rt: Runtime, staff: Staff, command: Command) -> str:
    """SILENT n: nothing automatic is ever sent to this defender again (this incident and
    their later ones); staff replies (R n) still go out, because staff chose to send them."""
    number, now = command.incident, rt.clock()
    with Session(rt.engine) as session:
        incident = lock_incident(session, number)
        if incident is None:
            return f"No incident #{number}. STATUS lists open ones."
        if not incident.silent:
            incident.silent = True
            session.add(Event(incident_id=number, at=now, kind="silenced", actor=staff.id,
                              detail="no automatic messages to the defender"))
        session.commit()
    return (f"#{number} is silent: no automatic texts to the defender, now or on their next "
            f"incident. Only R{number} replies you send reach them.")
