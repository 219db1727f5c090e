"""Draw the README's pictures of `hotline report` from the example data.

    .venv/bin/python docs/make_report_images.py

Runs the real engine in this process (console mode: nothing is sent anywhere) on a throwaway
SQLite database, with the repository's config.yaml and rota.yaml, a fixed clock and a fixed
random seed: five weeks of synthetic incidents (made-up numbers from the UK's drama range and
made-up words), paged, escalated and taken by the example staff, some check-ins missed and a
duress alarm. Then it computes the report's figures for the 30 days to the clock's end and
writes each chart as an SVG file to docs/report/. The same code gives the same files, byte
for byte, so a changed image in a diff is a changed chart.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import Session

import oncall
from hotline import migrate
from hotline.charts import chart_svgs
from hotline.crypto import Vault
from hotline.db import make_engine
from hotline.rotasource import RotaSource
from hotline.settings import load_settings
from hotline.twilio_client import make_notifier
from routing import intake, voice, webform
from routing.figures import collect
from routing.intake import TextMessage, VoiceCall
from routing.messages import receive_message
from routing.runtime import Runtime
from routing.sweeper import sweep

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config.yaml"
OUT = ROOT / "docs" / "report"
END = datetime(2026, 12, 20, 18, 0, tzinfo=UTC)  # the coverage then shows the Christmas swap
DAYS = 30
SEED = 15
CHANNELS = (("sms", 45), ("whatsapp", 30), ("voice", 15), ("web", 10))
# more in the evening and at night, when arrests and raids happen
HOUR_WEIGHTS = [4, 3, 2, 2, 2, 3, 4, 5, 6, 6, 6, 6, 6, 6, 6, 7, 7, 8, 9, 10, 10, 9, 7, 5]
WORDS = ("example", "words", "only", "nothing", "real", "here", "sample", "text")


class Example:
    """The engine with a clock this script moves (as tests/engine_world.py does)."""

    def __init__(self, folder: Path):
        settings = load_settings(
            {
                "HOTLINE_CONFIG": str(CONFIG),
                "HOTLINE_INSTANCE_DIR": str(folder / "instance"),
                "DATABASE_URL": f"sqlite:///{folder / 'example.db'}",
                "HOTLINE_SECRET_KEY": "example-only-secret-0123456789abcdef",
            }
        )
        self.settings = dataclasses.replace(
            settings, duress_words=("sunflower",), reminder_before=None
        )
        engine = make_engine(self.settings.database_url)
        migrate.upgrade(engine)
        vault = Vault(self.settings.secret_keys)
        self.now = END - timedelta(days=DAYS + 5)
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
        self.rota = self.rt.rota.current()
        self.sids = 0

    def sid(self, prefix: str) -> str:
        self.sids += 1
        return f"{prefix}{self.sids:032x}"

    def settle(self) -> None:
        for _ in range(50):
            report = sweep(self.rt, grace=timedelta(0))
            if not (report.steps or report.sends or report.threaded or report.checkins):
                return

    def wait(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.settle()

    def staff_says(self, step: int, text: str) -> None:
        """The first person of escalation step `step` (at the clock's time) texts `text`."""
        level = oncall.escalation_step(self.rota, self.now, step)
        person = level.staff[0] if level and level.staff else self.rota.staff[self.rota.fallback[0]]
        receive_message(self.rt, TextMessage(self.sid("SM"), person.phone, text))
        self.settle()


def defender_texts(ex: Example, sender: str, body: str) -> int:
    """A defender's text message, stored and then threaded as the webhook does (it answers
    in between); returns its incident."""
    received = intake.answer_then_thread(ex.rt, TextMessage(ex.sid("SM"), sender, body))
    return intake.thread(ex.rt, "message", received.row_id).incident_id


def incident(ex: Example, rng: random.Random, number: int, sender: str) -> None:
    """One incident from `sender` on a random channel, taken (or not) as the dice say."""
    channel = rng.choices([c for c, _ in CHANNELS], [w for _, w in CHANNELS])[0]
    body = " ".join(rng.choice(WORDS) for _ in range(5))
    if channel == "voice":
        plan = voice.answer_call(ex.rt, VoiceCall(ex.sid("CA"), sender))
        incident_id = plan.incident_id
        if rng.random() < 0.5:  # someone on call presses 1 while it rings through
            ex.now += timedelta(seconds=rng.uniform(8, 40))
            phone = oncall.escalation_step(ex.rota, ex.now, 0).staff[0].phone
            voice.screen(ex.rt, incident_id, phone, "1", ex.sid("CA"))
            ex.wait(rng.uniform(300, 1800))
            ex.staff_says(0, f"RESOLVE {incident_id}")
            return
        voice.release_hold(ex.rt, incident_id, "voicemail_left", "the caller left a voicemail")
    elif channel == "web":
        incident_id = webform.submit(ex.rt, body, None).incident_id
    else:
        prefix = "whatsapp:" if channel == "whatsapp" else ""
        incident_id = defender_texts(ex, prefix + sender, body)
    ex.wait(rng.uniform(0.03, 0.4))  # the worker picks the first step up
    roll = rng.random()
    step = 0 if roll < 0.68 else 1 if roll < 0.88 else 2 if roll < 0.95 else None
    if step is None:  # nobody takes it in the hour: the coordinator closes it
        ex.wait(3600)
        ex.staff_says(0, f"RESOLVE {incident_id}")
        return
    waits = [level.wait.total_seconds() for level in ex.rota.escalation]
    ex.wait(sum(waits[:step]))
    ex.wait(rng.uniform(20, waits[step] * 0.9))
    ex.staff_says(step, f"ACK {incident_id}")
    if number % 11 == 0:  # a defender going into a police interview: a check-in
        ex.staff_says(step, f"CHECKIN {incident_id} 2h")
        if number % 2:
            ex.wait(2 * 3600 + 1)  # missed
            ex.staff_says(0, f"ACK {incident_id}")
        else:
            ex.wait(rng.uniform(1800, 6000))
            duress = number % 3 != 0
            defender_texts(ex, sender, "sunflower" if duress else body)
            ex.settle()
            if duress:  # no safe check-in: the deadline stands until someone calls it off
                ex.staff_says(0, f"ACK {incident_id}")
                ex.staff_says(0, f"CHECKIN {incident_id} OFF")
    ex.wait(rng.uniform(600, 3600))
    ex.staff_says(0, f"RESOLVE {incident_id}")


def main() -> int:
    logging.disable(logging.WARNING)  # console mode logs every page: not wanted here
    rng = random.Random(SEED)
    with tempfile.TemporaryDirectory(prefix="hotline-example-") as folder:
        ex = Example(Path(folder))
        arrivals = []
        for day in range(DAYS + 4):
            count = rng.randint(1, 6) + (14 if day == DAYS - 12 else 0)  # a day of mass arrests
            midnight = (END - timedelta(days=DAYS + 4 - day)).replace(hour=0, minute=0)
            arrivals += [
                midnight
                + timedelta(
                    hours=rng.choices(range(24), HOUR_WEIGHTS)[0], minutes=rng.uniform(0, 60)
                )
                for _ in range(count)
            ]
        for number, at in enumerate(sorted(arrivals), start=1):
            if at >= END:
                break
            ex.now = max(ex.now + timedelta(minutes=1), at)
            incident(ex, rng, number, f"+447700900{number % 1000:03d}")
        with Session(ex.rt.engine) as session:
            figures = collect(
                session,
                ex.rota,
                now=END,
                since=timedelta(days=DAYS),
                languages=ex.settings.languages,
            )
        ex.rt.engine.dispose()
    OUT.mkdir(parents=True, exist_ok=True)
    for name, svg in chart_svgs(figures).items():
        path = OUT / f"{name}.svg"
        path.write_text(svg, encoding="utf-8")
        print(f"{path.relative_to(ROOT)}  {len(svg.encode()) // 1024} KB")
    print(f"{figures.incidents} incidents; check-ins {dict(figures.checkins)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
