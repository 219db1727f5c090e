"""Enrolment, sign-in, a fresh verification and sign-out: the passkey pages.

Each page hands the browser a stored, single-use challenge (routing.access) and the one
script, passkey.js, which asks the browser's passkey and posts its answer back in the form.
"""

from __future__ import annotations

from flask import g, redirect, render_template, request, url_for

from routing import access, passkeys
from webhooks.console.blueprint import bp
from webhooks.console.guard import (
    COOKIE,
    limited,
    refuse_cross_site,
    relying_party,
    rt,
    set_session_cookie,
    signed_in,
)


def _ceremony_page(template: str, ceremony, status: int = 200, **context):  # noqa: ANN001, ANN003, ANN202
    return render_template(
        f"console/{template}",
        challenge=ceremony.challenge_id if ceremony else "",
        options=ceremony.options_json if ceremony else "",
        who=g.get("who"),
        csrf=g.get("csrf", ""),
        **context,
    ), status


def _too_many(template: str, **context):  # noqa: ANN003, ANN202
    return _ceremony_page(
        template, None, 429, error="Too many sign-in attempts: wait a minute.", **context
    )


@bp.get("/signin")
def signin_page():  # noqa: ANN201
    return _ceremony_page("signin.html", passkeys.signin_options(rt(), relying_party()))


@bp.post("/signin")
def signin():  # noqa: ANN201
    refuse_cross_site()
    if limited():
        return _too_many("signin.html")
    try:
        token = passkeys.sign_in(
            rt(),
            request.form.get("challenge", ""),
            request.form.get("credential", ""),
            relying_party(),
        )
    except access.Refused as exc:
        ceremony = passkeys.signin_options(rt(), relying_party())
        return _ceremony_page("signin.html", ceremony, 403, error=str(exc))
    return set_session_cookie(redirect(url_for("console.board"), 303), token)


@bp.get("/enrol/<token>")
def enrol_page(token: str):  # noqa: ANN201
    try:
        ceremony, staff_id = passkeys.enrol_options(rt(), token, relying_party())
    except access.Refused as exc:
        return _ceremony_page("enrol.html", None, 404, error=str(exc), token=token)
    return _ceremony_page("enrol.html", ceremony, staff_id=staff_id, token=token)


@bp.post("/enrol/<token>")
def enrol(token: str):  # noqa: ANN201
    refuse_cross_site()
    if limited():
        return _too_many("enrol.html", token=token)
    try:
        session_token = passkeys.enrol(
            rt(),
            token,
            request.form.get("challenge", ""),
            request.form.get("credential", ""),
            relying_party(),
        )
    except access.Refused as exc:
        return _ceremony_page("enrol.html", None, 403, error=str(exc), token=token)
    return set_session_cookie(redirect(url_for("console.board"), 303), session_token)


def _local(target: str) -> str:
    """Only a console page of this site is a place to go back to after verifying."""
    if target.startswith("/console/") and "//" not in target and "\\" not in target:
        return target
    return url_for("console.board")


@bp.get("/verify")
@signed_in
def verify_page():  # noqa: ANN201
    ceremony = passkeys.signin_options(rt(), relying_party(), staff_id=g.who.staff.id)
    return _ceremony_page("verify.html", ceremony, next=_local(request.args.get("next", "")))


@bp.post("/verify")
@signed_in
def verify():  # noqa: ANN201
    target = _local(request.form.get("next", ""))
    if limited():
        return _too_many("verify.html", next=target)
    try:
        passkeys.verify_again(
            rt(),
            request.cookies.get(COOKIE, ""),
            request.form.get("challenge", ""),
            request.form.get("credential", ""),
            relying_party(),
        )
    except access.Refused as exc:
        ceremony = passkeys.signin_options(rt(), relying_party(), staff_id=g.who.staff.id)
        return _ceremony_page("verify.html", ceremony, 403, error=str(exc), next=target)
    return redirect(target, 303)


@bp.post("/signout")
@signed_in
def signout():  # noqa: ANN201
    access.sign_out(rt(), request.cookies.get(COOKIE, ""))
    response = redirect(url_for("console.signin_page"), 303)
    response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="Strict")
    return response
