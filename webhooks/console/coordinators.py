"""What only coordinators (`coordinators:` in the rota) see: the audit log, staff access
(invite, revoke) and the break-glass reveal of a defender's number."""

from __future__ import annotations

from flask import g, request, url_for

from routing import access, caseactions
from webhooks.console.blueprint import bp
from webhooks.console.guard import coordinators_only, rt, signed_in
from webhooks.console.views import page

AUDIT_SHOWN = 500


@bp.get("/audit")
@signed_in
@coordinators_only
def audit():  # noqa: ANN201
    rows = caseactions.audit_log(rt(), limit=AUDIT_SHOWN)
    return page("audit.html", rows=rows, limit=AUDIT_SHOWN)


def _staff_page(status: int = 200, **context):  # noqa: ANN003, ANN202
    return page("staff.html", status, people=access.who_has_access(rt()), **context)


@bp.get("/staff")
@signed_in
@coordinators_only
def staff():  # noqa: ANN201
    return _staff_page()


@bp.post("/staff/invite")
@signed_in
@coordinators_only
def invite():  # noqa: ANN201
    staff_id = request.form.get("staff", "")
    try:
        token = access.invite(rt(), staff_id, by=g.who.staff.id)
    except ValueError as exc:
        return _staff_page(400, said=str(exc))
    link = url_for("console.enrol_page", token=token, _external=True)
    base = rt().settings.console_url
    if base:
        link = base + url_for("console.enrol_page", token=token)
    return _staff_page(invited=staff_id, link=link)


@bp.post("/staff/revoke")
@signed_in
@coordinators_only
def revoke():  # noqa: ANN201
    staff_id = request.form.get("staff", "")
    keys, ended = access.revoke(rt(), staff_id, by=g.who.staff.id)
    return _staff_page(said=f"{staff_id}: {keys} passkey(s) removed, {ended} session(s) ended.")


@bp.get("/incidents/<int:number>/reveal")
@signed_in
@coordinators_only
def reveal_page(number: int):  # noqa: ANN201
    return page("reveal.html", number=number, fresh=g.who.fresh)


@bp.post("/incidents/<int:number>/reveal")
@signed_in
@coordinators_only
def reveal(number: int):  # noqa: ANN201
    if not g.who.fresh:
        return page(
            "reveal.html",
            403,
            number=number,
            fresh=False,
            said="Use your passkey again first: a reveal wants a fresh verification.",
        )
    shown, said = caseactions.reveal(rt(), g.who.staff, number, request.form.get("reason", ""))
    return page(
        "reveal.html", 200 if shown else 400, number=number, fresh=True, shown=shown, said=said
    )
