"""The engine in this process: routing driven directly, with a clock the test moves.

No web server, no Redis, no worker: `World.settle()` runs what the worker and its sweeper
would (threading, due steps, due sends) until nothing is due at the world's current time. Sends
go through the real `twilio` SDK to the fake Twilio API. Nothing sleeps: a test that needs
time to pass moves the clock.
"""

from __future__ import annotations

import os
import secrets
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness import migrated
from sqlmodel import Session, select

from hotline.db import make_engine, vault_on
from hotline.rotasource import RotaSource
from hotline.settings import load_settings
from hotline.twilio_client import make_notifier
from routing import intake
from routing.intake import TextMessage, VoiceCall
from routing.messages import receive_message
from routing.runtime import Runtime
from routing.sweeper import sweep
from routing.tables import Call, Event, Incident, Message, Page

SECRET = "engine-world-secret-0123456789abcdef"
START = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)  # a Tuesday: amina and chen on call


class World:
    def __init__(
        self,
        tmp_path: Path,
        database_url: str,
        fake,
        rota: str,
        languages: tuple[str, ...] = ("en", "fr"),
        config: str = "",
    ):
        self.fake = fake
        folder = tmp_path / f"world-{secrets.token_hex(3)}"
        folder.mkdir()
        (folder / "rota.yaml").write_text(rota)
        (folder / "config.yaml").write_text(
            'hotline:\n  number: "+35312100489"\n  whatsapp: "whatsapp:+14155238886"\n'
            f"  languages: [{', '.join(languages)}]\nrota_file: rota.yaml\n{config}"
        )
        self.settings = load_settings(
            {
                "HOTLINE_CONFIG": str(folder / "config.yaml"),
                "HOTLINE_INSTANCE_DIR": str(folder / "instance"),
                "DATABASE_URL": database_url,
                "TWILIO_ACCOUNT_SID": fake.account_sid,
                "TWILIO_AUTH_TOKEN": fake.auth_token,
                "TWILIO_API_BASE_URL": fake.base_url,
                "HOTLINE_PUBLIC_URL": "https://hotline.example.org",
                "HOTLINE_SECRET_KEY": SECRET,
            }
        )
        self.now = START
        engine = make_engine(migrated(database_url))
        vault = vault_on(engine, self.settings.secret_keys)
        self.rt = Runtime(
            settings=self.settings,
            engine=engine,
            vault=vault,
            rota=RotaSource(
                self.settings.rota_path,
                None,
                engine=engine,
                vault=vault,
                languages=self.settings.languages,
            ),
            notifier=make_notifier(self.settings),
            queue=None,
            clock=lambda: self.now,
        )
        self._sids = 0

    def close(self) -> None:
        self.rt.engine.dispose()

    # --- time -----------------------------------------------------------------------------

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    def settle(self) -> int:
        """Run whatever is due now, as often as new work appears. Returns the passes run."""
        for passes in range(1, 50):
            report = sweep(self.rt, grace=timedelta(0))
            if not (report.steps or report.sends or report.threaded or report.checkins):
                return passes
        raise AssertionError("the engine keeps finding work: a loop?")

    # --- contacts -------------------------------------------------------------------------

    def sid(self, prefix: str) -> str:
        self._sids += 1
        return f"{prefix}{self._sids:032x}"

    def text(self, sender: str, body: str, *, settle: bool = True) -> str | None:
        answer = receive_message(self.rt, TextMessage(self.sid("SM"), sender, body))
        if answer.then is not None:  # what the webhook does once its answer is out
            answer.then()
        if settle:
            self.settle()
        return answer.reply

    def call(self, sender: str) -> intake.Received:
        received = intake.take_call(self.rt, VoiceCall(self.sid("CA"), sender), hold=timedelta(0))
        self.settle()
        return received

    def staff_phone(self, staff_id: str) -> str:
        return self.rt.rota.current().staff[staff_id].phone

    def write_rota(self, text: str) -> None:
        """Edit the rota as a coordinator would; the live rota follows at its next read."""
        self.settings.rota_path.write_text(text)
        later = time.time() + 5  # a new mtime even within the file system's resolution
        os.utime(self.settings.rota_path, (later, later))

    # --- reading --------------------------------------------------------------------------

    def incidents(self) -> list[Incident]:
        with Session(self.rt.engine) as s:
            return list(s.exec(select(Incident).order_by(Incident.id)).all())

    def incident(self, number: int) -> Incident:
        with Session(self.rt.engine) as s:
            return s.get(Incident, number)

    def pages(self, incident: int) -> list[Page]:
        with Session(self.rt.engine) as s:
            return list(
                s.exec(select(Page).where(Page.incident_id == incident).order_by(Page.id)).all()
            )

    def calls(self) -> list[Call]:
        with Session(self.rt.engine) as s:
            return list(s.exec(select(Call).order_by(Call.id)).all())

    def messages(self, **where) -> list[Message]:
        with Session(self.rt.engine) as s:
            query = select(Message).order_by(Message.id)
            for key, value in where.items():
                query = query.where(getattr(Message, key) == value)
            return list(s.exec(query).all())

    def events(self, incident: int | None = None) -> list[Event]:
        with Session(self.rt.engine) as s:
            query = select(Event).order_by(Event.id)
            if incident is not None:
                query = query.where(Event.incident_id == incident)
            return list(s.exec(query).all())

    def sms_to(self, staff_id: str) -> list[str]:
        return self.fake.sms_to(self.staff_phone(staff_id))
