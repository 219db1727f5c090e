"""`hotline staff invite|revoke|list` and `hotline audit`: who may use the staff console, and
the record of what was done in it (routing.access, routing.casefile)."""

from __future__ import annotations

import json
import sys
from datetime import timedelta

from hotline.app import offline_runtime
from hotline.settings import Settings
from routing import access, caseactions, outbox
from routing.uow import unit_of_work


def enrol_link(settings: Settings, token: str) -> str:
    base = settings.console_url or "http://localhost:5000"
    return f"{base}/console/enrol/{token}"


def invite(settings: Settings, staff_id: str, *, sms: bool) -> int:
    """Print (or text to their rota phone) a one-time enrolment link for `staff_id`."""
    if not settings.console.enabled:
        print(
            "hotline: the staff console is off; set `console: {enabled: true}` first",
            file=sys.stderr,
        )
        return 2
    rt = offline_runtime(settings)
    try:
        try:
            token = access.invite(rt, staff_id)
        except ValueError as exc:
            print(f"hotline: {exc}", file=sys.stderr)
            return 2
        link = enrol_link(settings, token)
        if not sms:
            print(f"One-time enrolment link for {staff_id} (valid 24 hours):\n{link}")
            return 0
        person = access.staff_member(rt, staff_id)
        with unit_of_work(rt) as uow:
            outbox.add_message(
                uow,
                to=person.phone,
                body=f"Hotline console: enrol your passkey (one use, 24 hours): {link}",
                purpose="alert",
                staff_id=staff_id,
            )
        print(
            f"Enrolment link for {staff_id} queued by SMS to their rota phone "
            "(the worker sends it)."
        )
        return 0
    finally:
        rt.engine.dispose()


def revoke(settings: Settings, staff_id: str) -> int:
    rt = offline_runtime(settings)
    try:
        keys, ended = access.revoke(rt, staff_id)
    finally:
        rt.engine.dispose()
    print(
        f"{staff_id}: {keys} passkey(s) removed, {ended} session(s) ended, open invites cancelled."
    )
    return 0


def listing(settings: Settings, *, as_json: bool) -> int:
    rt = offline_runtime(settings)
    try:
        people = access.who_has_access(rt)
    finally:
        rt.engine.dispose()
    rows = [
        {
            "staff": p.staff_id,
            "name": p.name,
            "coordinator": p.coordinator,
            "passkeys": p.passkeys,
            "last_sign_in": p.last_sign_in.isoformat() if p.last_sign_in else None,
            "invite_open": p.invite_open,
        }
        for p in people
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        can = f"{row['passkeys']} passkey(s)" if row["passkeys"] else "cannot sign in"
        last = f", last signed in {row['last_sign_in'][:16]}" if row["last_sign_in"] else ""
        more = ", coordinator" if row["coordinator"] else ""
        invited = ", invite open" if row["invite_open"] else ""
        print(f"{row['staff']:<12} {can}{last}{more}{invited}")
    return 0


def audit(settings: Settings, *, since: timedelta, as_json: bool) -> int:
    """The audit events of the last `since`, oldest first: who, what, when, never content."""
    rt = offline_runtime(settings)
    try:
        rows = caseactions.audit_log(rt, since=rt.clock() - since, limit=100_000)
    finally:
        rt.engine.dispose()
    rows.reverse()
    if as_json:
        print(
            json.dumps(
                [
                    {
                        "at": r.at.isoformat(),
                        "actor": r.actor,
                        "kind": r.kind,
                        "incident": r.incident_id,
                        "detail": r.detail,
                    }
                    for r in rows
                ],
                indent=2,
            )
        )
        return 0
    for r in rows:
        where = f" #{r.incident_id}" if r.incident_id else ""
        detail = f" {r.detail}" if r.detail else ""
        print(f"{r.at:%Y-%m-%d %H:%M:%S} {r.actor:<10} {r.kind}{where}{detail}")
    return 0
