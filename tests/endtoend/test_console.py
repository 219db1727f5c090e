"""The staff console over HTTP, signed in with a software passkey (tests/softkey.py): the
locks (sessions, CSRF, revoke, coordinators, fresh verification), the audit, and hostile
words. The whole loop in a real browser is tests/endtoend/test_console_browser.py."""

from __future__ import annotations

import re

import pytest
from conftest import rota_text
from console_helpers import CONSOLE_ROTA_EXTRA, Visitor, enrolled
from harness import wait_until
from sqlmodel import select

from routing import access
from routing.tables import ConsoleSession, Passkey

DEFENDER = "+447700900123"


@pytest.fixture
def site(make_hotline):
    return make_hotline(rota=rota_text() + CONSOLE_ROTA_EXTRA, console=True)


def _incident(site, body: str = "They took Omar at the checkpoint") -> int:  # noqa: ANN001
    assert site.sms(DEFENDER, body).status == 200
    wait_until(lambda: site.incidents(), timeout=20)
    return site.incidents()[-1].id


def _count(site, table) -> int:  # noqa: ANN001
    with site.session() as session:
        return len(session.exec(select(table)).all())


def test_an_invite_enrols_a_passkey_that_signs_in_again(site):
    ana = enrolled(site, "amina")
    board = ana.get("/console")
    assert board.status == 200 and "Board" in board.body
    # a new browser, the same passkey: sign in
    again = Visitor(site, key=ana.key)
    answer = again.sign_in()
    assert answer.status == 303 and again.token and again.token != ana.token
    assert again.get("/console").status == 200
    cookie = answer.cookies[0]
    for part in ("__Host-hotline-console=", "Secure", "HttpOnly", "SameSite=Strict", "Path=/"):
        assert part in cookie
    kinds = [e.kind for e in site.events() if e.actor == "amina"]
    assert kinds.count("console_enrolled") == 1 and kinds.count("console_signed_in") == 1


def test_an_invite_works_once_and_a_wrong_passkey_answer_changes_nothing(site):
    token = access.invite(site.rt, "ben")
    first = Visitor(site)
    assert first.enrol(token).status == 303
    second = Visitor(site)
    assert second.get(f"/console/enrol/{token}").status == 404  # used
    assert second.token is None
    # a sign-in answer for another origin, or without user verification, is refused
    stranger = Visitor(site, key=first.key)
    page = stranger.get("/console/signin")
    bad = stranger.post(
        "/console/signin",
        {
            "challenge": page.hidden("challenge"),
            "credential": first.key.get(page.options(), origin="https://evil.example"),
        },
        csrf=False,
    )
    assert bad.status == 403 and stranger.token is None
    page = stranger.get("/console/signin")
    unverified = stranger.post(
        "/console/signin",
        {
            "challenge": page.hidden("challenge"),
            "credential": first.key.get(page.options(), verified=False),
        },
        csrf=False,
    )
    assert unverified.status == 403 and stranger.token is None
    # a challenge answers once
    page = stranger.get("/console/signin")
    fields = {"challenge": page.hidden("challenge"), "credential": first.key.get(page.options())}
    assert stranger.post("/console/signin", fields, csrf=False).status == 303
    replay = Visitor(site, key=first.key)
    assert replay.post("/console/signin", fields, csrf=False).status == 403
    assert replay.token is None


def test_refusals_change_nothing(site):
    number = _incident(site)
    ana = enrolled(site, "amina")
    csrf = ana.csrf()
    act = f"/console/incidents/{number}/act/ack"
    # no session: a page sends you to sign in, a button is refused
    nobody = Visitor(site)
    assert nobody.get("/console").status == 302
    assert nobody.get(f"/console/incidents/{number}").status == 302
    assert nobody.post(act, {"csrf": csrf}).status == 401
    # a POST without the CSRF token, with another session's, or from another site
    assert ana.post(act, {}, csrf=False).status == 403
    ben = enrolled(site, "ben")
    assert ana.post(act, {"csrf": ben.csrf()}).status == 403
    # the form itself is right: only the Origin refuses it
    assert ana.post(act, {"csrf": csrf}, Origin="https://evil.example").status == 403
    assert site.incident(number).status == "open"
    assert not [e for e in site.events(number) if e.kind == "console_action"]
    # a non-coordinator opens no coordinators' page
    for path in ("/console/audit", "/console/staff", f"/console/incidents/{number}/reveal"):
        assert ana.get(path).status == 403, path
    assert ana.post("/console/staff/invite", {"staff": "ben"}).status == 403
    assert ana.post("/console/staff/revoke", {"staff": "ben"}).status == 403
    assert _count(site, Passkey) == 2


def test_a_session_ends_when_idle_too_old_or_revoked(site):
    ana = enrolled(site, "amina")
    ben = enrolled(site, "ben")
    chen = enrolled(site, "chen")
    csrf = ben.csrf()
    with site.session() as session:  # time passes for two of them
        rows = {row.staff_id: row for row in session.exec(select(ConsoleSession))}
        rows["amina"].last_seen_at -= access.IDLE + access.IDLE / 15
        rows["chen"].created_at -= access.ABSOLUTE
        session.add_all(rows.values())
        session.commit()
    assert ana.get("/console").status == 302  # idle for 16 minutes
    assert chen.get("/console").status == 302  # signed in 12 hours ago
    assert ben.get("/console").status == 200
    # revoked: the same cookie, replayed, opens nothing, and the passkey signs in no more
    assert site.cli("staff", "revoke", "ben").returncode == 0
    assert ben.get("/console").status == 302
    number = _incident(site)
    assert ben.post(f"/console/incidents/{number}/act/ack", {"csrf": csrf}).status == 401
    assert Visitor(site, key=ben.key).sign_in().status == 403
    assert site.incident(number).status == "open"
    assert not [e for e in site.events(number) if e.kind == "console_action"]
    listing = site.cli("staff", "list").stdout
    assert re.search(r"ben\s+cannot sign in", listing) and re.search(r"amina\s+1 passkey", listing)


def test_a_reveal_wants_a_coordinator_a_fresh_passkey_and_a_reason(site):
    site.write_rota(rota_text() + "coordinators: [fiona, dana]\n")
    number = _incident(site)
    fiona = enrolled(site, "fiona")
    with site.session() as session:  # her sign-in was seven minutes ago
        row = session.exec(select(ConsoleSession)).one()
        row.verified_at -= access.FRESH + access.FRESH / 2
        session.add(row)
        session.commit()
    path = f"/console/incidents/{number}/reveal"
    stale = fiona.post(path, {"reason": "Lawyer needs to call back now"})
    assert stale.status == 403 and DEFENDER not in stale.body
    assert fiona.verify(path).status == 303
    short = fiona.post(path, {"reason": "because"})
    assert short.status == 400 and DEFENDER not in short.body
    shown = fiona.post(path, {"reason": "Lawyer needs to call back now"})
    assert shown.status == 200 and DEFENDER in shown.body
    kinds = [e.kind for e in site.events(number)]
    assert kinds.count("number_revealed") == 1
    alerts = site.messages(purpose="alert")
    assert [m.staff_id for m in alerts] == ["dana"]
    assert "Lawyer" not in str([e.detail for e in site.events()])


def test_every_view_and_action_is_audited_without_words(site):
    number = _incident(site, "Secret words about the raid")
    ana = enrolled(site, "amina")
    assert ana.get(f"/console/incidents/{number}").status == 200
    said = ana.post(f"/console/incidents/{number}/act/ack")
    assert said.status == 200 and f"You took #{number}" in said.body
    note = ana.post(f"/console/incidents/{number}/note", {"text": "Called the lawyer, Nadia"})
    assert "Note saved" in note.body and "Called the lawyer, Nadia" in note.body
    mine = [(e.kind, e.incident_id, e.detail) for e in site.events() if e.actor == "amina"]
    assert ("console_viewed", number, "") in mine
    assert ("console_action", number, "ack") in mine
    assert ("acknowledged", number, "via ack") in mine or any(
        k == "acknowledged" for k, _, _ in mine
    )
    assert ("note_added", number, "") in mine
    audit = site.cli("audit", "--since", "1h", "--json")
    assert audit.returncode == 0 and '"console_action"' in audit.stdout
    for words in ("Secret", "raid", "lawyer", "Nadia"):
        assert words not in audit.stdout
        assert words not in str([(e.kind, e.detail) for e in site.events()])
    # the note is sealed under the incident's key, like the defender's words
    from routing.tables import Note

    with site.session() as session:
        row = session.exec(select(Note)).one()
    assert "Nadia" not in row.body_enc and site.unseal(row, "body") == "Called the lawyer, Nadia"
    assert site.incident(number).key_id == row.key_id
