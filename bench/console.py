"""Scenario 8: the staff console's pages with a year of history in the database.

10,000 incidents (the newest 50 unresolved) and 100,000 messages, sealed as the hotline seals
them (a data key per incident, AES-GCM), with their pages and audit events, are written
straight into a fresh database; `hotline serve` (gunicorn, as shipped) serves the console; a
staff member enrols a passkey (the tests' software authenticator) and the driver then asks,
one request at a time on a kept-alive connection: the board, the board filtered (resolved
SMS), and incident pages of random incidents (each a thread of 10 messages decrypted, and an
audit row written, as a real view does).

Measured from the driver on loopback (an upper bound of the server's time: loopback adds about
0.1 ms). Target: p99 < 100 ms for the board and for an incident page.
"""

from __future__ import annotations

import http.client
import random
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from html import unescape

from sqlalchemy import insert

from bench.common import BenchHotline, Options, Report
from hotline.crypto import Vault
from routing.tables import DataKey, Event, Incident, Message, Page

TARGET_MS = 100.0
COOKIE = "__Host-hotline-console"
BATCH = 2000


def run(opts: Options, db: str) -> Report:
    report = Report("console", db)
    incidents = 1_000 if opts.quick else 10_000
    per_incident = 10
    samples = 100 if opts.quick else 300
    with BenchHotline(db, **opts.hotline_kwargs()) as hotline:
        console_url = f"http://localhost:{hotline.port}"
        config = hotline.dir / "config.yaml"
        config.write_text(
            config.read_text() + f'console: {{enabled: true, url: "{console_url}"}}\n'
        )
        began = time.monotonic()
        _fill(hotline, incidents, per_incident)
        report.add(
            "history written", f"{incidents:,} incidents, {incidents * per_incident:,} messages"
        )
        report.add("writing it took", time.monotonic() - began, "s")
        hotline.start_web()
        # the tests' software passkey (bench.common has put tests/ on the path)
        from softkey import SoftKey

        client = _Client(hotline.port)
        client.enrol(_invite(hotline), SoftKey(console_url))
        rng = random.Random(8)
        board = [client.time("/console?auto=1") for _ in range(samples)]
        filtered = [
            client.time("/console?state=resolved&channel=sms&auto=1") for _ in range(samples)
        ]
        pages = [
            client.time(f"/console/incidents/{rng.randint(1, incidents)}") for _ in range(samples)
        ]
        for label, values in (
            ("board (open, then the 50 newest resolved)", board),
            ("board filtered: resolved, SMS", filtered),
            ("incident page (10 messages decrypted, audit row written)", pages),
        ):
            stats = report.add_latency(label, values)
            report.check(
                f"{label}: p99 < {TARGET_MS:.0f} ms",
                stats["p99"] < TARGET_MS,
                f"p99 {stats['p99']:,.1f} ms",
            )
    return report


def _invite(hotline: BenchHotline) -> str:
    printed = subprocess.run(
        [sys.executable, "-m", "hotline", "staff", "invite", "pia"],
        env=hotline.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return re.search(r"/console/enrol/(\S+)", printed.stdout).group(1)


class _Client:
    """One browser tab: a kept-alive connection and the session cookie."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.cookie = ""

    def request(self, method: str, path: str, body: str | None = None) -> tuple[int, str]:
        headers = {"Host": f"localhost:{self.port}"}
        if self.cookie:
            headers["Cookie"] = f"{COOKIE}={self.cookie}"
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        text = response.read().decode()
        for name, value in response.getheaders():
            if name.lower() == "set-cookie" and value.startswith(COOKIE + "="):
                self.cookie = value.split(";", 1)[0].split("=", 1)[1]
        return response.status, text

    def enrol(self, token: str, key) -> None:  # noqa: ANN001  (a tests/softkey.py SoftKey)
        import json
        import urllib.parse

        status, page = self.request("GET", f"/console/enrol/{token}")
        assert status == 200, page[:300]
        options = json.loads(unescape(re.search(r'data-options="([^"]*)"', page).group(1)))
        challenge = re.search(r'name="challenge" value="([^"]*)"', page).group(1)
        body = urllib.parse.urlencode({"challenge": challenge, "credential": key.create(options)})
        status, answer = self.request("POST", f"/console/enrol/{token}", body)
        assert status == 303 and self.cookie, answer[:300]

    def time(self, path: str) -> float:
        started = time.perf_counter()
        status, _ = self.request("GET", path)
        elapsed = time.perf_counter() - started
        assert status == 200, f"{path}: {status}"
        return elapsed


def _fill(hotline: BenchHotline, incidents: int, per_incident: int) -> None:
    """A year of incidents, written as the hotline writes them (sealed, keyed by person)."""
    from hotline.settings import load_settings

    settings = load_settings(hotline.env)
    vault = Vault(settings.secret_keys)
    now = datetime.now(UTC)
    start = now - timedelta(days=365)
    rng = random.Random(7)
    engine = hotline.engine
    rows: dict[type, list[dict]] = {DataKey: [], Incident: [], Message: [], Page: [], Event: []}
    wrapped_keys: dict[str, str] = {}
    vault.attach(wrapped_keys.get)  # keys the vault's cache let go of are read back from here
    message_id = 0
    for n in range(1, incidents + 1):
        opened = start + timedelta(days=365) * (n / incidents)
        key_id, wrapped = vault.new_data_key()
        rows[DataKey].append({"id": key_id, "wrapped": wrapped, "created_at": opened})
        wrapped_keys[key_id] = wrapped
        defender = f"+447700{n:06d}"
        live = n > incidents - 50
        channel = rng.choice(("sms", "sms", "whatsapp", "voice", "web"))
        rows[Incident].append(
            {
                "id": n,
                "status": "open" if live else "resolved",
                "channel": channel,
                "language": "en",
                "defender_hash": vault.lookup_hash(defender),
                "defender_enc": vault.seal(key_id, "incident.defender", defender),
                "key_id": key_id,
                "opened_at": opened,
                "first_paged_at": opened,
                "acknowledged_at": None if live else opened + timedelta(minutes=3),
                "acknowledged_by": None if live else "pia",
                "resolved_at": None if live else opened + timedelta(hours=5),
                "resolved_by": None if live else "pia",
                "last_inbound_at": opened,
                "silent": False,
            }
        )
        for i in range(per_incident):
            message_id += 1
            inbound = i % 2 == 0
            body = (
                f"Message {i} of incident {n}: they came to the office at dawn, "
                "took two phones and a laptop, and asked where the lawyer lives."
            )
            rows[Message].append(
                {
                    "id": message_id,
                    "incident_id": n,
                    "direction": "in" if inbound else "out",
                    "channel": "sms",
                    "purpose": "defender" if inbound else "reply",
                    "sid": f"SM{message_id:032x}",
                    "staff_id": None if inbound else "pia",
                    "address_hash": vault.lookup_hash(defender),
                    "address_enc": vault.seal(key_id, "message.address", defender),
                    "body_enc": vault.seal(key_id, "message.body", body),
                    "key_id": key_id,
                    "status": "threaded" if inbound else "delivered",
                    "created_at": opened + timedelta(minutes=i),
                    "media_count": 0,
                    "media_types": "",
                    "attempts": 0,
                }
            )
        for step, staff in ((0, "pia"), (1, "bo")):
            rows[Page].append(
                {
                    "incident_id": n,
                    "step": step,
                    "staff_id": staff,
                    "method": "sms",
                    "status": "delivered",
                    "created_at": opened + timedelta(minutes=step * 5),
                }
            )
        for kind, actor in (("opened", "defender"), ("paged", "system"), ("acknowledged", "pia")):
            rows[Event].append(
                {"incident_id": n, "at": opened, "kind": kind, "actor": actor, "detail": ""}
            )
    with engine.begin() as conn:
        for table in (DataKey, Incident, Message, Page, Event):
            batch = rows[table]
            for i in range(0, len(batch), BATCH):
                conn.execute(insert(table), batch[i : i + BATCH])
        if engine.dialect.name == "postgresql":  # ids were given: move the sequences past them
            for table in ("incident", "message", "page", "event"):
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
