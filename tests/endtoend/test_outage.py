"""When our server is down, nothing a defender sent is lost: what reached Twilio meanwhile is
taken in afterwards (a worker's backfill, `hotline twilio backfill`), once, and paged with
its mark."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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


def test_configure_points_the_number_at_us_and_its_fallbacks_at_the_flow(make_hotline, fake_twilio):
    site = make_hotline()
    number = fake_twilio.numbers.add(site.settings.number)
    refused = site.cli("twilio", "configure")  # the tests' public URL is http://127.0.0.1
    assert refused.returncode == 2 and "is not https" in refused.stderr
    assert number.updates == []
    dry = site.cli("twilio", "configure", "--insecure", "--dry-run")
    assert dry.returncode == 0 and "10 setting(s) would change" in dry.stdout
    assert number.updates == []
    assert site.cli("twilio", "fallback", "publish").returncode == 0
    flow = fake_twilio.studio.only()
    done = site.cli("twilio", "configure", "--insecure")
    assert done.returncode == 0 and "10 setting(s) changed" in done.stdout, done.stdout
    urls = number.urls
    assert urls["voice_url"] == site.base_url + "/twilio/voice"
    assert urls["sms_url"] == site.base_url + "/twilio/sms"
    assert urls["status_callback"] == site.base_url + "/twilio/status"
    flow_url = f"https://webhooks.twilio.com/v1/Accounts/{fake_twilio.account_sid}/Flows/{flow.sid}"
    assert urls["voice_fallback_url"] == urls["sms_fallback_url"] == flow_url
    again = site.cli("twilio", "configure", "--insecure")
    assert "Nothing to change." in again.stdout and len(number.updates) == 1  # idempotent
    assert "WhatsApp sender whatsapp:+14155238886" in again.stdout


class _Recorder:
    """A local HTTP server that records the paths it is asked for and answers `status`."""

    def __init__(self) -> None:
        recorder = self
        self.paths: list[str] = []
        self.status = 200

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802, ANN202
                recorder.paths.append(self.path)
                self.send_response(recorder.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):  # noqa: ANN002, ANN202
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_heartbeat_pings_while_healthy_and_fails_when_redis_stops(make_hotline, tmp_path):
    from hotline.redisconn import embedded_url, start_embedded, stop_embedded

    receiver = _Recorder()
    redis_server = start_embedded(tmp_path / "own-redis")
    try:
        site = make_hotline(
            env={"REDIS_URL": embedded_url(redis_server)},
            config=f"heartbeat_url: {receiver.url}/ping/abc\nheartbeat_every: 1s\n",
        )
        worker = TestWorker(site).start()
        try:
            wait_until(lambda: "/ping/abc" in receiver.paths, timeout=30, what="a ping")
            stop_embedded(redis_server)
            redis_server = None
            wait_until(lambda: "/ping/abc/fail" in receiver.paths, timeout=30, what="a /fail")
        finally:
            worker.stop()
    finally:
        if redis_server is not None:
            stop_embedded(redis_server)
        receiver.close()


def test_watch_texts_the_coordinators_once_when_the_line_goes_dark(make_hotline, fake_twilio):
    site = make_hotline(rota=rota_text() + "coordinators: [fiona, dana]\n")
    healthz = _Recorder()
    log = open(site.dir / "watch.log", "w")  # noqa: SIM115  (closed below)
    watcher = subprocess.Popen(
        [sys.executable, "-m", "hotline", "watch", f"{healthz.url}/healthz", "--every", "0.2"],
        env={**os.environ, **site.env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    fiona, dana = site.staff_phone("fiona"), site.staff_phone("dana")
    try:
        # a loaded machine starts a Python process slowly: generous waits, short checks
        wait_until(lambda: len(healthz.paths) >= 3, timeout=60, what="checks")
        assert fake_twilio.sms_to(fiona) == []
        healthz.status = 503
        wait_until(lambda: fake_twilio.sms_to(fiona), timeout=60, what="the DOWN text")
        count = len(healthz.paths)
        wait_until(lambda: len(healthz.paths) >= count + 5, timeout=60, what="more checks")
        healthz.status = 200
        wait_until(
            lambda: len(fake_twilio.sms_to(fiona)) == len(fake_twilio.sms_to(dana)) == 2,
            timeout=60,
            what="back up, to both",
        )
    finally:
        watcher.terminate()
        watcher.wait(timeout=10)
        healthz.close()
        log.close()
    said = (site.dir / "watch.log").read_text()
    down, up = fake_twilio.sms_to(fiona)
    assert "Traceback" not in said, said
    assert down.startswith("Hotline DOWN:") and up.startswith("Hotline back up:")
    assert fake_twilio.sms_to(dana) == [down, up]  # every coordinator, once each way
