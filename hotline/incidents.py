"""`hotline incidents` and `hotline incident N`: the log, numbers masked."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from hotline.crypto import Vault
from hotline.db import make_engine, vault_on
from hotline.keycheck import check_key
from hotline.migrate import require_current
from hotline.settings import Settings
from routing.checkins import active_checkins
from routing.datakeys import unseal
from routing.display import clean_text
from routing.figures import iso, seconds_between
from routing.masking import show_number
from routing.tables import Checkin, Event, Incident, Message, Page
from routing.webconversation import contact_line


def shown(value: Any) -> Any:
    """`value` with every string in it cleaned of control and bidi characters: what reaches
    an operator's terminal came, in part, from whoever texted the hotline."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {key: shown(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shown(item) for item in value]
    return value


def incident_summary(
    incident: Incident, vault: Vault, reveal: bool, checkin_due: datetime | None = None
) -> dict:
    """The public fields of an incident (the `--json` contract: README.md, "The incident
    log"), number masked.
    `checkin_due`: the deadline of its active check-in, if any."""
    return {
        "number": incident.id,
        "status": incident.status,
        "channel": incident.channel,
        "language": incident.language,
        "defender": show_number(unseal(vault, incident, "defender"), reveal)
        if incident.defender_enc
        else "erased",
        "opened_at": iso(incident.opened_at),
        "first_paged_at": iso(incident.first_paged_at),
        "acknowledged_at": iso(incident.acknowledged_at),
        "acknowledged_by": incident.acknowledged_by,
        "resolved_at": iso(incident.resolved_at),
        "resolved_by": incident.resolved_by,
        "seconds_to_first_page": seconds_between(incident.opened_at, incident.first_paged_at),
        "seconds_to_ack": seconds_between(incident.opened_at, incident.acknowledged_at),
        "checkin_due": iso(checkin_due),
    }


def _open(settings: Settings):  # noqa: ANN202
    """Raises hotline.migrate.SchemaBehind when the database needs `hotline db upgrade`, and
    hotline.keycheck.KeyMismatch when the configured key is not the data's."""
    engine = make_engine(settings.database_url)
    vault = vault_on(engine, settings.secret_keys)
    require_current(engine)
    check_key(engine, vault)
    return engine, vault


def list_incidents(settings: Settings, *, status: str, as_json: bool) -> int:
    engine, vault = _open(settings)
    with Session(engine) as session:
        query = select(Incident).order_by(Incident.id)
        if status == "open":
            query = query.where(Incident.status != "resolved")
        due = {number: row.due_at for number, row in active_checkins(session).items()}
        rows = [
            shown(incident_summary(i, vault, settings.reveal_numbers, due.get(i.id)))
            for i in session.exec(query).all()
        ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("No incidents." if status == "all" else "No open incidents.")
        return 0
    print(
        f"{'#':>5}  {'status':<12} {'channel':<9} {'lang':<4} {'defender':<16} "
        f"{'opened (UTC)':<19} {'1st page':>8} {'ack':>8}  by"
    )
    for row in rows:
        print(
            f"{row['number']:>5}  {row['status']:<12} {row['channel']:<9} {row['language']:<4} "
            f"{row['defender']:<16} {row['opened_at'][:19]:<19} "
            f"{_fmt(row['seconds_to_first_page']):>8} {_fmt(row['seconds_to_ack']):>8}  "
            f"{row['acknowledged_by'] or '-'}"
        )
    return 0


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.0f}m"


def show_incident(settings: Settings, number: int, *, as_json: bool) -> int:
    """`hotline incident N [--json]`: one incident's summary, timeline, messages, check-ins and
    pages. Returns 1 when there is no such incident."""
    engine, vault = _open(settings)
    with Session(engine) as session:
        summary = _incident_record(session, vault, settings.reveal_numbers, number)
    if summary is None:
        print(f"hotline: no incident #{number}")
        return 1
    summary = shown(summary)
    if as_json:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        _print_incident(number, summary)
    return 0


def _incident_record(session: Session, vault: Vault, reveal: bool, number: int) -> dict | None:
    """Everything `hotline incident N` shows, as its JSON has it; None for no such incident."""
    incident = session.get(Incident, number)
    if incident is None:
        return None

    def rows(table, *order):  # noqa: ANN001, ANN202
        return session.exec(select(table).where(table.incident_id == number).order_by(*order)).all()

    checkins = rows(Checkin, Checkin.id)
    active = [c.due_at for c in checkins if c.status == "active"]
    summary = incident_summary(incident, vault, reveal, active[0] if active else None)
    if incident.channel == "web":  # how they asked to be reached: never sent in a page
        summary["contact"] = contact_line(session, vault, incident, reveal)
    summary["events"] = [
        {"at": iso(e.at), "kind": e.kind, "actor": e.actor, "detail": e.detail}
        for e in rows(Event, Event.at, Event.id)
    ]
    summary["messages"] = [
        _message_record(vault, m) for m in rows(Message, Message.created_at, Message.id)
    ]
    summary["checkins"] = [
        {
            "set_by": c.set_by,
            "due_at": iso(c.due_at),
            "every_s": c.every_s,
            "notify": c.notify,
            "status": c.status,
            "set_at": iso(c.created_at),
            "ended_at": iso(c.ended_at),
        }
        for c in checkins
    ]
    summary["pages"] = [
        {
            "step": p.step,
            "staff": p.staff_id,
            "method": p.method,
            "status": p.status,
            "error_code": p.error_code,
        }
        for p in rows(Page, Page.id)
    ]
    return summary


def _message_record(vault: Vault, m: Message) -> dict:
    return {
        "at": iso(m.created_at),
        "direction": m.direction,
        "purpose": m.purpose,
        "channel": m.channel,
        "staff": m.staff_id,
        "status": m.status,
        "error_code": m.error_code,
        "media": m.media_types or None,
        # what the defender sent, to fetch with the Twilio credentials (operators only)
        "media_urls": json.loads(unseal(vault, m, "media")) if m.media_enc else [],
        "text": unseal(vault, m, "body"),
    }


def _print_incident(number: int, summary: dict) -> None:
    print(
        f"#{number}  {summary['status']}  {summary['channel']}  {summary['language']}  "
        f"from {summary['defender']}"
    )
    print(
        f"  opened {summary['opened_at']}, first page after "
        f"{_fmt(summary['seconds_to_first_page'])}, ack after {_fmt(summary['seconds_to_ack'])}"
        f" by {summary['acknowledged_by'] or '-'}"
    )
    if summary.get("contact"):
        print(f"  contact: {clean_text(summary['contact'], one_line=True)}")
    if summary["checkin_due"]:
        print(f"  check-in due {summary['checkin_due']}")
    print("  timeline:")
    for event in summary["events"]:
        print(
            f"    {event['at'][11:19]}  {event['kind']:<16} {event['actor']:<10} {event['detail']}"
        )
    print("  messages:")
    for m in summary["messages"]:
        arrow = "<-" if m["direction"] == "in" else "->"
        who = m["staff"] or "defender"
        text = clean_text(m["text"], one_line=True)
        print(
            f"    {m['at'][11:19]} {arrow} {who:<10} {m['purpose']:<10} {m['status']:<10} "
            f"{text[:60]}"
        )
        for url in m["media_urls"]:
            print(f"             attachment: {clean_text(url, one_line=True)}")
