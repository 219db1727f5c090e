"""Who may use the staff console, and how they prove it: passkeys (WebAuthn) only.

An invite (`hotline staff invite ID`) is a random token, kept only as its SHA-256, good once
within 24 h: opening its link registers a passkey (the ceremonies: routing.passkeys). A
session is a random cookie token, kept only as its SHA-256; it ends after 15 idle minutes or
12 hours, on sign-out, and at once when its staff member is revoked or leaves the rota.
Revealing a defender's number or unblocking wants a passkey again within FRESH.

Every sign-in, enrolment, invite and revoke is an audit event (routing.tables.Event: who,
what, when, never content).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func
from sqlmodel import Session, select

from oncall import Staff
from routing.runtime import Runtime
from routing.tables import (
    ConsoleSession,
    Event,
    Passkey,
    StaffInvite,
)
from routing.uow import unit_of_work

INVITE_VALID = timedelta(hours=24)
IDLE = timedelta(minutes=15)
ABSOLUTE = timedelta(hours=12)
FRESH = timedelta(minutes=5)  # a passkey this recent allows a reveal or an unblock
CHALLENGE_VALID = timedelta(minutes=5)
OPERATOR = "operator"  # the actor of what the command line does


class Refused(Exception):
    """A sign-in step that cannot go on; the message is for the person at the browser."""


@dataclass(frozen=True)
class RelyingParty:
    """The console's own address, as the browser sees it: passkeys are bound to `id`."""

    id: str  # the host name, e.g. "console.example.org"
    origin: str  # e.g. "https://console.example.org"
    name: str = "Hotline console"


@dataclass(frozen=True)
class Ceremony:
    """What a page hands the browser for one passkey ceremony."""

    challenge_id: str
    options_json: str


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def audit(
    session: Session,
    now: datetime,
    actor: str,
    kind: str,
    incident_id: int | None = None,
    detail: str = "",
) -> None:
    """One audit row (never content: `detail` is an action's name, a staff id, a count)."""
    session.add(Event(incident_id=incident_id, at=now, kind=kind, actor=actor, detail=detail))


def staff_member(rt: Runtime, staff_id: str) -> Staff | None:
    """The staff member as the live rota has them, or None."""
    return rt.rota.current().staff.get(staff_id)


def is_coordinator(rt: Runtime, staff_id: str) -> bool:
    return staff_id in rt.rota.current().coordinators


# --- invites and revokes (the command line and the coordinators' page) ----------------------


def invite(rt: Runtime, staff_id: str, by: str = OPERATOR) -> str:
    """A new one-time enrolment token for `staff_id` (in the rota, else ValueError)."""
    if staff_member(rt, staff_id) is None:
        raise ValueError(f"{staff_id!r} is not a staff id in the rota")
    token = secrets.token_urlsafe(32)
    now = rt.clock()
    with unit_of_work(rt) as uow:
        uow.session.add(
            StaffInvite(
                token_hash=digest(token),
                staff_id=staff_id,
                created_by=by,
                created_at=now,
                expires_at=now + INVITE_VALID,
            )
        )
        audit(uow.session, now, by, "console_invited", detail=staff_id)
    return token


def revoke(rt: Runtime, staff_id: str, by: str = OPERATOR) -> tuple[int, int]:
    """Remove `staff_id`'s passkeys, unused invites and sessions at once. Returns (passkeys,
    sessions) removed."""
    now = rt.clock()
    with unit_of_work(rt) as uow:
        session = uow.session
        keys = session.exec(delete(Passkey).where(Passkey.staff_id == staff_id)).rowcount
        ended = session.exec(
            delete(ConsoleSession).where(ConsoleSession.staff_id == staff_id)
        ).rowcount
        session.exec(
            delete(StaffInvite).where(
                StaffInvite.staff_id == staff_id, StaffInvite.used_at.is_(None)
            )
        )
        audit(session, now, by, "console_revoked", detail=staff_id)
    return keys, ended


@dataclass(frozen=True)
class Access:
    staff_id: str
    name: str
    coordinator: bool
    passkeys: int
    last_sign_in: datetime | None
    invite_open: bool


def who_has_access(rt: Runtime) -> list[Access]:
    """Every staff member of the rota, with their passkeys and last sign-in."""
    rota = rt.rota.current()
    now = rt.clock()
    with Session(rt.engine) as session:
        keys = dict(
            session.exec(
                select(Passkey.staff_id, func.count(Passkey.id)).group_by(Passkey.staff_id)
            ).all()
        )
        last = dict(
            session.exec(
                select(Passkey.staff_id, func.max(Passkey.last_used_at)).group_by(Passkey.staff_id)
            ).all()
        )
        invited = set(
            session.exec(
                select(StaffInvite.staff_id).where(
                    StaffInvite.used_at.is_(None), StaffInvite.expires_at > now
                )
            ).all()
        )
    return [
        Access(
            staff_id=person.id,
            name=person.name,
            coordinator=person.id in rota.coordinators,
            passkeys=keys.get(person.id, 0),
            last_sign_in=last.get(person.id),
            invite_open=person.id in invited,
        )
        for person in sorted(rota.staff.values(), key=lambda p: p.id)
    ]


# --- sessions ------------------------------------------------------------------------------


def start_session(session: Session, staff_id: str, now: datetime) -> str:
    token = secrets.token_urlsafe(32)
    session.exec(delete(ConsoleSession).where(ConsoleSession.last_seen_at < now - IDLE))
    session.add(
        ConsoleSession(
            token_hash=digest(token),
            staff_id=staff_id,
            created_at=now,
            last_seen_at=now,
            verified_at=now,
        )
    )
    return token


@dataclass(frozen=True)
class SignedIn:
    staff: Staff
    coordinator: bool
    verified_at: datetime
    fresh: bool  # a passkey within FRESH: reveal, unblock and purge are allowed


def current(rt: Runtime, token: str | None, *, touch: bool = True) -> SignedIn | None:
    """Who this cookie token signs in, or None (no such session, idle or too old, revoked, or
    its person gone from the rota). A live session's idle clock restarts, unless `touch` is
    False (a page refreshing itself is nobody at work)."""
    if not token:
        return None
    now = rt.clock()
    with unit_of_work(rt) as uow:
        row = uow.session.get(ConsoleSession, digest(token))
        if row is None:
            return None
        person = staff_member(rt, row.staff_id)
        if now - row.last_seen_at > IDLE or now - row.created_at > ABSOLUTE or person is None:
            uow.session.delete(row)
            return None
        if touch:
            row.last_seen_at = now
            uow.session.add(row)
        verified_at = row.verified_at
    return SignedIn(
        staff=person,
        coordinator=is_coordinator(rt, person.id),
        verified_at=verified_at,
        fresh=now - verified_at <= FRESH,
    )


def sign_out(rt: Runtime, token: str) -> None:
    with unit_of_work(rt) as uow:
        row = uow.session.get(ConsoleSession, digest(token))
        if row is not None:
            uow.session.delete(row)
            audit(uow.session, rt.clock(), row.staff_id, "console_signed_out")
