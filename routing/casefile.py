"""What the staff console shows: the board, and one incident's whole thread with its notes
(its buttons: routing.caseactions).

Reading a thread decrypts it for that one page and is an audit event (who, what, when; never
the words).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, select

from oncall import Staff
from routing.access import audit
from routing.datakeys import unseal
from routing.directory import staff_name
from routing.runtime import Runtime
from routing.tables import Call, Checkin, Event, Incident, Message, Note, Page
from routing.uow import unit_of_work

STATES = ("open", "acknowledged", "resolved")
CHANNELS = ("sms", "whatsapp", "voice", "web")
OPEN_SHOWN = 200  # open incidents on the board, oldest first; more is a flood: STATUS NEW
RECENT_SHOWN = 50
FLAG_KINDS = ("duress", "checkin_missed")


@dataclass(frozen=True)
class BoardRow:
    id: int
    status: str
    channel: str
    opened_at: datetime
    level: int | None  # the highest escalation step paged
    paged: tuple[str, ...]  # staff ids, in the order first paged
    taken_by: str | None
    checkin_due: datetime | None
    flags: tuple[str, ...]  # duress, checkin_missed
    silent: bool


def board(
    rt: Runtime, *, state: str | None = None, channel: str | None = None
) -> tuple[list[BoardRow], list[BoardRow]]:
    """(unresolved incidents oldest first, then the most recent resolved ones), filtered.

    A few indexed queries whatever the table's size: the unresolved (few, and capped), the
    newest resolved (a LIMIT on the primary key), then their pages, check-ins and flags by id.
    """
    wanted_state = state if state in STATES else None
    wanted_channel = channel if channel in CHANNELS else None
    with Session(rt.engine) as session:

        def query(*where):  # noqa: ANN001, ANN202
            q = select(Incident).where(*where)
            return q.where(Incident.channel == wanted_channel) if wanted_channel else q

        live, done = [], []
        if wanted_state in (None, "open", "acknowledged"):
            states = [wanted_state] if wanted_state else ["open", "acknowledged"]
            live = session.exec(
                query(Incident.status.in_(states)).order_by(Incident.id).limit(OPEN_SHOWN)
            ).all()
        if wanted_state in (None, "resolved"):
            done = session.exec(
                query(Incident.status == "resolved")
                .order_by(Incident.id.desc())
                .limit(RECENT_SHOWN)
            ).all()
        rows = _rows(session, [*live, *done])
    return rows[: len(live)], rows[len(live) :]


def _rows(session: Session, incidents: list[Incident]) -> list[BoardRow]:
    ids = [i.id for i in incidents]
    if not ids:
        return []
    paged: dict[int, list[str]] = defaultdict(list)
    level: dict[int, int] = {}
    for incident_id, step, staff_id in session.exec(
        select(Page.incident_id, Page.step, Page.staff_id)
        .where(Page.incident_id.in_(ids))
        .order_by(Page.id)
    ):
        level[incident_id] = max(level.get(incident_id, 0), step)
        if staff_id not in paged[incident_id]:
            paged[incident_id].append(staff_id)
    due = dict(
        session.exec(
            select(Checkin.incident_id, Checkin.due_at).where(
                Checkin.incident_id.in_(ids), Checkin.status == "active"
            )
        ).all()
    )
    flags: dict[int, set[str]] = defaultdict(set)
    for incident_id, kind in session.exec(
        select(Event.incident_id, Event.kind)
        .where(Event.incident_id.in_(ids), Event.kind.in_(FLAG_KINDS))
        .distinct()
    ):
        flags[incident_id].add(kind)
    return [
        BoardRow(
            id=i.id,
            status=i.status,
            channel=i.channel,
            opened_at=i.opened_at,
            level=(level[i.id] + 1) if i.id in level else None,
            paged=tuple(paged[i.id]),
            taken_by=i.acknowledged_by,
            checkin_due=due.get(i.id),
            flags=tuple(sorted(flags[i.id])),
            silent=i.silent,
        )
        for i in incidents
    ]


@dataclass(frozen=True)
class Entry:
    """One line of an incident's thread."""

    at: datetime
    kind: str  # defender, staff, page, call, event, note
    who: str
    what: str  # a label: "SMS from the defender", "Page by SMS to Ana: delivered" …
    text: str | None = None  # words someone wrote (shown dir="auto", never as markup)


@dataclass
class Thread:
    incident: Incident
    entries: list[Entry] = field(default_factory=list)
    checkin_due: datetime | None = None
    erased: bool = False


def thread(rt: Runtime, viewer: Staff, number: int) -> Thread | None:
    """Incident `number` with everything that happened in it, decrypted for this one view
    (audited as `console_viewed`). None when there is no such incident."""
    now = rt.clock()
    with unit_of_work(rt) as uow:
        session = uow.session
        incident = session.get(Incident, number)
        if incident is None:
            return None
        audit(session, now, viewer.id, "console_viewed", number)
        result = Thread(incident=incident, erased=incident.purged_at is not None)
        result.entries = sorted(
            [
                *_message_entries(rt, session, number),
                *_call_entries(rt, session, number),
                *_page_entries(rt, session, number),
                *_event_entries(rt, session, number),
                *_note_entries(rt, session, number),
            ],
            key=lambda e: e.at,
        )
        result.checkin_due = session.exec(
            select(Checkin.due_at).where(Checkin.incident_id == number, Checkin.status == "active")
        ).first()
        session.expunge(incident)
    return result


MESSAGE_LABELS = {
    "defender": "from the defender",
    "reply": "reply to the defender",
    "relay": "relayed to staff",
    "auto_reply": "auto-reply to the defender",
    "page": "page",
    "standdown": "stand-down",
    "confirm": "confirmation to staff",
    "alert": "alert",
    "command": "staff command",
}


def _message_entries(rt: Runtime, session: Session, number: int) -> list[Entry]:
    entries = []
    for m in session.exec(select(Message).where(Message.incident_id == number)):
        label = MESSAGE_LABELS.get(m.purpose, m.purpose)
        who = "defender" if m.purpose == "defender" else staff_name(rt, m.staff_id)
        channel = {"web": "web form", "whatsapp": "WhatsApp"}.get(m.channel, m.channel.upper())
        media = f", {m.media_count} attachment(s)" if m.media_count else ""
        entries.append(
            Entry(
                at=m.created_at,
                kind="defender" if m.direction == "in" and m.purpose == "defender" else "staff",
                who=who if m.staff_id or m.purpose == "defender" else "hotline",
                what=f"{channel} {label} ({m.status}){media}",
                text=_opened(rt, m, "body"),
            )
        )
    return entries


def _opened(rt: Runtime, row: object, name: str) -> str | None:
    try:
        return unseal(rt.vault, row, name)
    except Exception:  # an erased incident's key is gone: nothing of it opens, by design
        return "[erased]"


def _call_entries(rt: Runtime, session: Session, number: int) -> list[Entry]:
    entries = []
    for c in session.exec(select(Call).where(Call.incident_id == number)):
        who = staff_name(rt, c.staff_id) if c.staff_id else "defender"
        way = "from" if c.direction == "in" else "to"
        entries.append(
            Entry(
                at=c.created_at,
                kind="call",
                who=who,
                what=f"Call ({c.purpose}) {way} {who}: {c.status}",
                text=_opened(rt, c, "transcript") if c.transcript_enc else None,
            )
        )
    return entries


def _page_entries(rt: Runtime, session: Session, number: int) -> list[Entry]:
    return [
        Entry(
            at=p.created_at,
            kind="page",
            who=staff_name(rt, p.staff_id),
            what=f"Level {p.step + 1} page by {p.method} to {staff_name(rt, p.staff_id)}: "
            f"{p.status}" + (f" (error {p.error_code})" if p.error_code else ""),
        )
        for p in session.exec(select(Page).where(Page.incident_id == number))
    ]


def _event_entries(rt: Runtime, session: Session, number: int) -> list[Entry]:
    return [
        Entry(
            at=e.at,
            kind="event",
            who=e.actor if e.actor in ("defender", "system") else staff_name(rt, e.actor),
            what=e.kind.replace("_", " ") + (f": {e.detail}" if e.detail else ""),
        )
        for e in session.exec(
            select(Event).where(Event.incident_id == number, Event.kind != "console_viewed")
        )
    ]


def _note_entries(rt: Runtime, session: Session, number: int) -> list[Entry]:
    return [
        Entry(
            at=n.created_at,
            kind="note",
            who=staff_name(rt, n.staff_id),
            what="internal note (never sent)",
            text=_opened(rt, n, "body"),
        )
        for n in session.exec(select(Note).where(Note.incident_id == number))
    ]


def counts(rt: Runtime) -> dict[str, int]:
    """Incidents by status, for the board's heading."""
    with Session(rt.engine) as session:
        return dict(
            session.exec(
                select(Incident.status, func.count(Incident.id)).group_by(Incident.status)
            ).all()
        )
