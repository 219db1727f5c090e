"""The staff console over HTTP, signed in with a software passkey (tests/softkey.py): the
locks (sessions, CSRF, revoke, coordinators, fresh verification), the audit, and hostile
words. The whole loop in a real browser is tests/endtoend/test_console_browser.py."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from html.parser import HTMLParser

import pytest
from conftest import rota_text
from console_helpers import CONSOLE_ROTA_EXTRA, Visitor, enrolled
from harness import ROOT, free_port, hotline_cli, wait_until
from hypothesis import example, given, settings
from hypothesis import strategies as st
from markupsafe import escape
from sqlmodel import select

from routing import access, caseactions
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
    # a sign-in posted from another site (it would sign this browser in as someone else)
    page = stranger.get("/console/signin")
    forged = {"challenge": page.hidden("challenge"), "credential": first.key.get(page.options())}
    assert (
        stranger.post("/console/signin", forged, csrf=False, Origin="https://evil.example").status
        == 403
    )
    assert stranger.token is None
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


# every element the console's own templates use: anything else on a page came from outside
OUR_TAGS = {
    "html", "head", "meta", "title", "link", "body", "header", "nav", "ul", "li", "a", "form",
    "input", "button", "main", "h1", "h2", "p", "div", "label", "textarea", "ol", "time",
    "table", "thead", "tbody", "tr", "th", "td", "select", "option", "span", "strong", "code",
    "br", "script", "noscript",
}  # fmt: skip


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):  # noqa: ANN001, ANN201
        self.seen.append((tag, dict(attrs)))


def _tags(page: str) -> list[tuple[str, dict]]:
    parser = _Tags()
    parser.feed(page)
    return parser.seen


def test_nothing_a_defender_or_staff_writes_becomes_markup(site):
    from test_fuzz_webhooks import texts

    number = _incident(site, "<script>alert(1)</script>")
    ana = enrolled(site, "amina")
    written: list[str] = []

    @settings(max_examples=60, deadline=None, derandomize=True, database=None)
    @given(text=texts | st.sampled_from(HOSTILE))
    @example(text='"><img src=x onerror=alert(1)>')
    @example(text="</p></li></ol><script src=//evil.example/x.js></script>")
    def write(text: str) -> None:
        if not text.strip():
            return
        assert site.sms(DEFENDER, text).status in (200, 400)  # 400: not a form Twilio sends
        caseactions.add_note(site.rt, site.rt.rota.current().staff["amina"], number, text)
        written.append(text.strip())

    write()
    page = ana.get(f"/console/incidents/{number}")
    assert page.status == 200
    tags = _tags(page.body)
    assert {tag for tag, _ in tags} <= OUR_TAGS
    assert [a.get("src") for tag, a in tags if tag == "script"] == []  # none on this page
    assert not [a for _, a in tags if any(k.startswith("on") for k in a)]
    for text in written:
        assert str(escape(text)) in page.body
    for path in ("/console", "/console/audit", "/console/oncall"):
        assert {tag for tag, _ in _tags(ana.get(path).body)} <= OUR_TAGS


HOSTILE = (
    "<svg/onload=alert(1)>",
    "javascript:alert(1)",
    "{{ 7*7 }} {% raw %}",
    "\u202eevil\u202c <b>bold</b>",
    "&lt;script&gt; &amp; &#x3C;",
    "<!-- comment --><style>*{display:none}</style>",
)


def test_console_pages_are_locked_down_and_name_no_client(site, caplog):
    ana = enrolled(site, "amina")
    for path in ("/console", "/console/signin", "/console/static/console.css"):
        answer = ana.get(path)
        assert answer.status == 200, path
        csp = answer.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert "script-src 'self'" in csp and "http" not in csp  # nothing from another host
        assert answer.headers["Cache-Control"] == "no-store"
        assert answer.headers["Referrer-Policy"] == "no-referrer"
    assert "Refresh" in ana.get("/console").headers  # the board reloads itself, no script
    assert "Refresh" not in ana.get("/console?refresh=off").headers
    assert "127.0.0.1" not in caplog.text  # the request log names no client


def test_sign_in_answers_are_rate_limited_for_everyone_together(make_hotline):
    site = make_hotline(
        rota=rota_text() + CONSOLE_ROTA_EXTRA,
        console=True,
        config="",
    )
    limit = site.settings.console.signin_limit
    assert limit == "30/minute"
    # a thousand wrong answers are not a thousand tries: after 30 the door answers 429
    visitor = Visitor(site)
    statuses = [
        visitor.post("/console/signin", {"challenge": "x", "credential": "{}"}, csrf=False).status
        for _ in range(32)
    ]
    assert statuses[:30] == [403] * 30 and statuses[30:] == [429, 429]


def test_the_command_line_invites_lists_and_audits(site, fake_twilio):
    printed = site.cli("staff", "invite", "chen")
    assert printed.returncode == 0
    link = re.search(r"http://localhost:\d+/console/enrol/\S+", printed.stdout).group(0)
    visitor = Visitor(site)
    assert visitor.enrol(link.rsplit("/", 1)[1]).status == 303
    texted = site.cli("staff", "invite", "dana", "--sms")
    assert texted.returncode == 0 and "queued" in texted.stdout
    [queued] = site.messages(purpose="alert")
    assert queued.staff_id == "dana" and "/console/enrol/" in site.unseal(queued, "body")
    unknown = site.cli("staff", "invite", "zoe")
    assert unknown.returncode == 2 and "'zoe' is not a staff id" in unknown.stderr
    listing = site.cli("staff", "list", "--json")
    rows = {row["staff"]: row for row in __import__("json").loads(listing.stdout)}
    assert rows["chen"]["passkeys"] == 1 and rows["dana"]["invite_open"]
    assert rows["fiona"]["coordinator"] and not rows["chen"]["coordinator"]
    audit = site.cli("audit", "--since", "1h").stdout
    assert "console_invited" in audit and "console_enrolled" in audit
    assert site.cli("audit", "--since", "forever").returncode == 2


def test_serve_console_only_answers_the_console_and_nothing_else(site):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hotline", "serve", "--console-only", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, **site.env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    def status(path: str) -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
                return answer.status
        except urllib.error.HTTPError as exc:
            return exc.code

    try:
        wait_until(lambda: _answers(status), timeout=30, what="serve --console-only")
        assert status("/console/signin") == 200
        assert status("/twilio/sms") == 404 and status("/healthz") == 404
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    config = (site.dir / "config.yaml").read_text()
    (site.dir / "off.yaml").write_text(
        "".join(line for line in config.splitlines(True) if not line.startswith("console:"))
    )
    off = hotline_cli(
        {**site.env, "HOTLINE_CONFIG": str(site.dir / "off.yaml")},
        "serve",
        "--console-only",
    )
    assert off.returncode == 2 and "the staff console is off" in off.stderr


def _answers(status) -> bool:  # noqa: ANN001
    try:
        return status("/console/signin") == 200
    except OSError:
        return False


def test_unblock_wants_a_fresh_passkey_block_does_not(site):
    number = _incident(site)
    ana = enrolled(site, "amina")
    blocked = ana.post(f"/console/incidents/{number}/act/block")
    assert blocked.status == 200 and "blocked" in blocked.body.lower()
    with site.session() as session:
        row = session.exec(select(ConsoleSession)).one()
        row.verified_at -= access.FRESH * 2
        session.add(row)
        session.commit()
    refused = ana.post(f"/console/incidents/{number}/act/unblock")
    assert refused.status == 403 and "passkey again" in refused.body
    assert "unblocked" not in [e.kind for e in site.events(number)]
    assert ana.verify(f"/console/incidents/{number}").status == 303
    assert ana.post(f"/console/incidents/{number}/act/unblock").status == 200
    assert "unblocked" in [e.kind for e in site.events(number)]


@pytest.mark.skipif(
    not shutil.which("nginx") and not os.path.exists("/usr/sbin/nginx"),
    reason="no nginx (CI installs it)",
)
def test_the_shipped_console_nginx_config_is_valid(tmp_path):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    server = (ROOT / "deploy" / "nginx" / "hotline-console.conf").read_text()
    server = server.replace("/var/log/nginx/", f"{tmp_path}/")
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n{server}\n}}\n"
    )
    checked = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr
