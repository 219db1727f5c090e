"""When our server is down, nothing a defender sent is lost: what reached Twilio meanwhile is
taken in afterwards (a worker's backfill, `hotline twilio backfill`), once, and paged with
its mark."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from harness import TestWorker, wait_until

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
