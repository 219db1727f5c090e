"""What we learn about staff at run time: who can no longer be reached by SMS.

A staff member who texts STOP (or whose carrier refuses our SMS, Twilio 21610) is opted out:
SMS pages skip them (calls still reach them where they have `notify: [sms, call]`) and the
fallback contacts are told once that a pager went dark. START brings them back.

Also each person's calendar feed generation (`feed_salt`): renewed, their old feed URL dies.
"""

from __future__ import annotations

import logging
import secrets

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from routing import outbox
from routing.directory import staff_name
from routing.runtime import Runtime
from routing.tables import Event, StaffState
from routing.uow import unit_of_work

log = logging.getLogger(__name__)


def opted_out(session: Session, staff_ids: list[str]) -> set[str]:
    """Which of `staff_ids` SMS cannot reach."""
    if not staff_ids:
        return set()
    rows = session.exec(
        select(StaffState.staff_id).where(StaffState.staff_id.in_(staff_ids), StaffState.opted_out)
    ).all()
    return set(rows)


def lock_staff(session: Session, staff_ids: list[str]) -> set[str]:
    """Lock these staff members' rows until the transaction ends, in one order (no deadlock).
    Returns which of them SMS cannot reach (as `opted_out`, read from the locked rows).

    Steps of different incidents run at once; what they decide per person (a page, or a
    place in the surge digest: routing.bundling) must see each other's pages.
    """
    unreachable: set[str] = set()
    for staff_id in sorted(set(staff_ids)):
        query = select(StaffState).where(StaffState.staff_id == staff_id).with_for_update()
        state = session.exec(query).first()
        if state is None:
            try:
                with session.begin_nested():
                    session.add(StaffState(staff_id=staff_id))
            except IntegrityError:
                pass  # another step created it first
            state = session.exec(query).one()
        if state.opted_out:
            unreachable.add(staff_id)
    return unreachable


def mark_opted_out(rt: Runtime, staff_id: str, reason: str) -> None:
    """Record that SMS can no longer reach this person and tell the fallback contacts once."""
    try:
        rota = rt.rota.current()
    except Exception:
        log.exception("rota unavailable: fallback contacts not told that %s went dark", staff_id)
        rota = None
    with unit_of_work(rt) as uow:
        if not _set(uow.session, rt, staff_id, True, reason) or rota is None:
            return
        person = rota.staff.get(staff_id)
        calls = (
            "They get calls only."
            if person and "call" in person.notify
            else "They cannot be paged until they text START."
        )
        text = f"Hotline alert: {staff_name(rt, staff_id)}'s pager went dark ({reason}). {calls}"
        outbox.alert(uow, rota, [c for c in rota.fallback if c != staff_id], text)


def mark_opted_in(rt: Runtime, staff_id: str, reason: str) -> bool:
    """Returns True when the person was opted out until now."""
    with unit_of_work(rt) as uow:
        return _set(uow.session, rt, staff_id, False, reason)


def _set(session: Session, rt: Runtime, staff_id: str, value: bool, reason: str) -> bool:
    """Returns True when the flag changed."""
    now = rt.clock()
    state = session.exec(
        select(StaffState).where(StaffState.staff_id == staff_id).with_for_update()
    ).first()
    if state is None:
        if not value:
            return False
        state = StaffState(staff_id=staff_id)
    elif state.opted_out == value:
        return False
    state.opted_out, state.opted_out_at = value, now if value else None
    session.add(state)
    session.add(
        Event(
            at=now,
            kind="staff_opted_out" if value else "staff_opted_in",
            actor=staff_id,
            detail=reason,
        )
    )
    log.warning("staff %s %s (%s)", staff_id, "opted out" if value else "opted back in", reason)
    return True


def feed_salts(session: Session, staff_ids: list[str]) -> dict[str, str]:
    """Each staff member's feed salt ("" for who has none yet)."""
    rows = session.exec(
        select(StaffState.staff_id, StaffState.feed_salt).where(StaffState.staff_id.in_(staff_ids))
    ).all()
    return {staff_id: "" for staff_id in staff_ids} | dict(rows)


def renew_feed(rt: Runtime, staff_id: str, actor: str) -> str:
    """Give `staff_id` a new feed salt, so their old feed URL no longer answers; audited.
    Returns the new salt."""
    salt = secrets.token_hex(16)
    with unit_of_work(rt) as uow:
        session, now = uow.session, rt.clock()
        state = session.exec(
            select(StaffState).where(StaffState.staff_id == staff_id).with_for_update()
        ).first() or StaffState(staff_id=staff_id)
        state.feed_salt = salt
        session.add(state)
        session.add(Event(at=now, kind="feed_renewed", actor=actor, detail=staff_id))
    log.warning("calendar feed of %s renewed: the old URL no longer answers", staff_id)
    return salt
