"""When our server is down, nothing a defender sent is lost: what reached Twilio meanwhile is
taken in afterwards (a worker's backfill, `hotline twilio backfill`), once, and paged with
its mark."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from conftest import rota_text
from harness import TestWorker, wait_until

import oncall
from routing.backfill import ANSWERED_IN_FALLBACK
from routing.tables import ARRIVED_WHILE_DOWN

DEFENDERS = ("+447700900301", "+447700900302", "whatsapp:+447700900303")
CALLER = "+447700900304"


def test_what_reached_twilio_while_we_were_down_becomes_incidents_once(make_hotline, fake_twilio):
    site = make_hotline()
    amina, fiona = site.staff_phone("amina"), site.staff_phone("fiona")
    down = datetime.now(UTC) - timedelta(minutes=3)  # the server was down for a minute
    for i, sender in enumerate(DEFENDERS):
        to = site.settings.whatsapp if sender.startswith("whatsapp:") else site.settings.number
        fake_twilio.add_inbound_message(
            sender, to, f"raid at the office {i}", at=down + timedelta(seconds=10 * i)
        )
    fake_twilio.add_inbound_call(
        CALLER,
        site.settings.number,
        at=down + timedelta(seconds=40),
        dialled=[amina, fiona],
        answered=amina,
    )
    # a staff member's command sent meanwhile is kept for the log, not carried out hours later
    fake_twilio.add_inbound_message(
        amina, site.settings.number, "RESOLVE 1", at=down + timedelta(seconds=50)
    )

    worker = TestWorker(site).start()  # its first backfill looks back over the gap
    try:
        wait_until(lambda: len(site.incidents()) == 4, timeout=30, what="four incidents")
        wait_until(lambda: len(fake_twilio.sms_to(amina)) >= 4, timeout=30, what="four pages")
    finally:
        worker.stop()
    incidents = site.incidents()
    assert sorted(i.channel for i in incidents) == ["sms", "sms", "voice", "whatsapp"]
    assert all(i.status == "open" for i in incidents)
    for incident in incidents:
        assert [e.kind for e in site.events(incident.id)].count(ARRIVED_WHILE_DOWN) == 1
    pages = [body for body in fake_twilio.sms_to(amina) if body.startswith("ARRIVED WHILE DOWN #")]
    assert len(pages) == 4, fake_twilio.sms_to(amina)
    call = next(i for i in incidents if i.channel == "voice")
    answered = [e for e in site.events(call.id) if e.kind == ANSWERED_IN_FALLBACK]
    assert [e.actor for e in answered] == ["amina"]
    [command] = site.messages(purpose="command")
    assert command.status != "handled"

    again = site.cli("twilio", "backfill", "--since", "1h")
    assert again.returncode == 0, again.stderr
    assert "5 message(s) and call(s) at Twilio, 5 already here, 0 taken in now" in again.stdout
    assert len(site.incidents()) == 4
    assert len(site.messages(direction="in")) == 4  # three defenders and the command


def test_the_fallback_flow_rings_whoever_is_on_call_then(make_hotline):
    from hotline.fallbackflow import definition, phones_to_ring

    start = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    override = (
        "overrides:\n"
        '  - {rotation: primary, staff: dana, from: "2026-12-08 18:00", to: "2026-12-09 09:00"}\n'
    )
    rota = oncall.parse_rota(rota_text(at=start) + "coordinators: [fiona]\n" + override, "rota")
    phone = {sid: person.phone for sid, person in rota.staff.items()}
    site = make_hotline()
    for at, first in (
        (start, "amina"),  # this week's primary
        (start + timedelta(days=1, hours=8), "dana"),  # the override, 20:00 Dublin
        (start + timedelta(days=6), "ben"),  # after the weekly handoff
    ):
        assert phones_to_ring(rota, at) == [phone[first], phone["fiona"]], at
        flow = definition(rota, at, site.settings)
        states = {state["name"]: state for state in flow["states"]}
        assert states["ring_staff"]["properties"]["to"] == f"{phone[first]},{phone['fiona']}"
        forwarded = [
            s["properties"]["to"] for s in flow["states"] if s["name"].startswith("forward_")
        ]
        assert forwarded == [phone[first], phone["fiona"]]
    said = [s["properties"]["language"] for s in flow["states"] if s["type"] == "say-play"]
    assert said == ["en-GB", "fr-FR", "es-ES"]  # the hotline's languages, in order
    assert all(
        "…" not in s["properties"].get("body", "") for s in flow["states"]
    )  # GSM-7 only: one segment is 160 characters


def test_a_worker_republishes_the_flow_when_the_rota_changes(make_hotline, fake_twilio):
    site = make_hotline(rota=rota_text() + "coordinators: [fiona]\n")
    published = site.cli("twilio", "fallback", "publish")
    assert published.returncode == 0, published.stderr
    flow = fake_twilio.studio.only()
    assert (
        f"https://webhooks.twilio.com/v1/Accounts/{fake_twilio.account_sid}/Flows/{flow.sid}"
        in (published.stdout)
    )
    rings = _ringing(flow)
    assert rings == [site.staff_phone("amina"), site.staff_phone("fiona")]
    worker = TestWorker(site).start()
    try:
        # a coordinator puts Chen on primary now: the flow follows within seconds
        now = datetime.now(UTC)
        since, until = now - timedelta(hours=1), now + timedelta(days=1)
        site.write_rota(
            rota_text()
            + "coordinators: [fiona]\noverrides:\n"
            + f'  - {{rotation: primary, staff: chen, from: "{since:%Y-%m-%dT%H:%M}Z",'
            + f' to: "{until:%Y-%m-%dT%H:%M}Z"}}\n'
        )
        wait_until(
            lambda: _ringing(fake_twilio.studio.only())[0] == site.staff_phone("chen"), timeout=40
        )
        assert len(fake_twilio.studio.only().revisions) == 2  # published once more, not every check
        # Twilio's Studio fails: the coordinator is told once, however many tries fail
        fake_twilio.studio.failing = True
        site.write_rota(rota_text() + "coordinators: [fiona]\n")
        wait_until(
            lambda: len([e for e in site.events() if e.kind == "fallback_publish_failed"]) >= 2,
            timeout=40,
        )
        wait_until(lambda: site.messages(purpose="alert"), timeout=10)
    finally:
        worker.stop()
    alerts = site.messages(purpose="alert")
    assert [a.staff_id for a in alerts] == ["fiona"]
    assert "fallback at Twilio could not be updated" in site.unseal(alerts[0], "body")
    kinds = [e.kind for e in site.events() if e.kind.startswith("fallback_")]
    assert kinds.count("fallback_published") == 2


def _ringing(flow) -> list[str]:  # noqa: ANN001
    [ring] = [s for s in flow.definition["states"] if s["name"] == "ring_staff"]
    return ring["properties"]["to"].split(",")
