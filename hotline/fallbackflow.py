"""The line's fallback at Twilio: a Studio Flow that answers when our server does not.

Twilio hosts the flow, so it works when this whole machine is gone. For a call it says, in
the hotline's languages, that the caller is being connected, then rings the current level-1
staff and the rota's `fallback` contacts at once from the hotline number; for a message it
answers with the usual auto-reply and forwards the text to the same phones, marked FALLBACK.
`hotline twilio configure` points the number's fallback URLs at it.

`hotline twilio fallback publish` makes or updates it. From then on each worker republishes
it within seconds of a change in who it should ring (a handoff, an override, a rota edit):
never last week's person. Every publish is an audit event (`fallback_published`, with the
flow's sid and the definition's fingerprint); a failure to publish texts the coordinators
once (`fallback_publish_failed`), and the next minute tries again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import threading
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

import oncall
from hotline.app import offline_runtime
from hotline.opsalert import record
from hotline.settings import Settings
from hotline.twilio_client import make_twilio_client
from routing.runtime import Runtime
from routing.tables import Event
from routing.texts import auto_reply
from webhooks.speech import SAY_LANGUAGE, STAY_ON_LINE

log = logging.getLogger(__name__)
NAME = "Hotline fallback"
PUBLISHED, FAILED = "fallback_published", "fallback_publish_failed"
NOT_UPDATED = (
    "Hotline: the fallback at Twilio could not be updated with who is on call now. If the "
    "server goes down, calls may ring the wrong people. Check `hotline twilio fallback publish`."
)
CHECK_EVERY_S = 10  # a rota reload, a handoff: republished within seconds
RING_FOR_S = 30
CONNECTING = {
    "en": "You are being connected to the hotline team. Please stay on the line.",
    "fr": "Nous vous mettons en relation avec l'équipe. Restez en ligne, s'il vous plaît.",
    "es": "Le estamos conectando con el equipo. Por favor, no cuelgue.",
    "ru": "Соединяем вас с командой. Пожалуйста, оставайтесь на линии.",
    "ar": "نقوم بتوصيلك بفريق الخط الساخن. يرجى البقاء على الخط.",
}


def phones_to_ring(rota: oncall.Rota, now: datetime) -> list[str]:
    """Who the flow rings at `now`: the first level with someone on call, then the fallback
    contacts, each once, as E.164 numbers."""
    people = list(oncall.first_paged(rota, now) or ()) + [
        rota.staff[sid] for sid in rota.fallback if sid in rota.staff
    ]
    phones: list[str] = []
    for person in people:
        if person.phone not in phones:
            phones.append(person.phone)
    return phones


def definition(rota: oncall.Rota, now: datetime, settings: Settings) -> dict[str, Any]:
    """The flow's definition (Twilio Studio's JSON) for who is on call at `now`."""
    phones = phones_to_ring(rota, now)
    says, forwards = _says(settings), _forwards(phones, settings)
    states = [
        _state(
            "Trigger",
            "trigger",
            {},
            [
                {"event": "incomingMessage", "next": "auto_reply"},
                {"event": "incomingCall", "next": says[0]["name"] if says else "ring_staff"},
                {"event": "incomingConversationMessage"},
                {"event": "incomingRequest"},
                {"event": "incomingParent"},
            ],
        ),
        *says,
        _state(
            "ring_staff",
            "connect-call-to",
            {
                "noun": "number-multi",
                "to": ",".join(phones),
                "caller_id": "{{flow.channel.address}}",
                "timeout": RING_FOR_S,
                "record": False,
            },
            [{"event": "callCompleted"}, {"event": "hangup"}],
        ),
        _state(
            "auto_reply",
            "send-message",
            {
                "from": "{{flow.channel.address}}",
                "to": "{{contact.channel.address}}",
                "body": auto_reply(settings.default_language),
            },
            [{"event": "sent", "next": "forward_0"}, {"event": "failed", "next": "forward_0"}],
        ),
        *forwards,
    ]
    return {
        "description": "Answers when the hotline's server does not (hotline twilio fallback)",
        "states": states,
        "initial_state": "Trigger",
        "flags": {"allow_concurrent_calls": True},
    }


def _says(settings: Settings) -> list[dict]:
    """ "You are being connected", once in each of the hotline's languages, then the ring."""
    says = [
        _state(
            f"say_{code}",
            "say-play",
            {
                "say": CONNECTING.get(code, STAY_ON_LINE.get(code, CONNECTING["en"])),
                "language": SAY_LANGUAGE.get(code, "en-GB"),
                "loop": 1,
            },
            [{"event": "audioComplete", "next": "ring_staff"}],
        )
        for code in settings.languages
    ]
    for this, after in zip(says, says[1:], strict=False):
        this["transitions"][0]["next"] = after["name"]
    return says


def _forwards(phones: list[str], settings: Settings) -> list[dict]:
    """The defender's text to each phone, one after the other."""
    sender = (
        "{{contact.channel.address}}"
        if settings.reveal_numbers
        else "...{{contact.channel.address | slice: -3, 3}}"  # GSM-7: not "…"
    )
    forwards = [
        _state(
            f"forward_{i}",
            "send-message",
            {
                "from": "{{flow.channel.address}}",
                "to": phone,
                "body": f"FALLBACK (hotline server down) from {sender}: "
                "{{trigger.message.Body}}",
            },
            [
                {"event": "sent", "next": f"forward_{i + 1}"},
                {"event": "failed", "next": f"forward_{i + 1}"},
            ],
        )
        for i, phone in enumerate(phones)
    ]
    if forwards:
        for transition in forwards[-1]["transitions"]:
            del transition["next"]
    return forwards


def _state(name: str, kind: str, properties: dict, transitions: list[dict]) -> dict:
    return {
        "name": name,
        "type": kind,
        "properties": {"offset": {"x": 0, "y": 0}, **properties},
        "transitions": transitions,
    }


def fingerprint(flow: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(flow, sort_keys=True).encode()).hexdigest()[:16]


def last_publish(rt: Runtime) -> tuple[str | None, str | None, bool]:
    """(flow sid, fingerprint published, whether the newest attempt failed), from the audit."""
    with Session(rt.engine) as session:
        rows = session.exec(
            select(Event.kind, Event.detail)
            .where(Event.kind.in_((PUBLISHED, FAILED)))
            .order_by(Event.id.desc())
            .limit(50)
        ).all()
    published = next((detail for kind, detail in rows if kind == PUBLISHED), None)
    sid, _, printed = (published or "").partition(" ")
    return sid or None, printed or None, bool(rows) and rows[0][0] == FAILED


def publish(rt: Runtime, client, *, force: bool = False) -> str | None:  # noqa: ANN001
    """Publish the flow for who is on call now, when it differs from the one published (or
    `force`). Returns the flow's sid, or None when nothing needed publishing. A failure is
    recorded (the coordinators are texted once per run of failures) and raised."""
    flow = definition(rt.rota.current(), rt.clock(), rt.settings)
    sid, printed, failing = last_publish(rt)
    if printed == fingerprint(flow) and not force:
        return None
    try:
        flows = client.studio.v2.flows
        if sid is None:
            sid = flows.create(friendly_name=NAME, status="published", definition=flow).sid
        else:
            flows(sid).update(status="published", definition=flow, commit_message="rota changed")
    except Exception as exc:
        record(rt, FAILED, exc.__class__.__name__, tell=None if failing else NOT_UPDATED)
        raise
    record(rt, PUBLISHED, f"{sid} {fingerprint(flow)}")
    return sid


class FallbackPublisher(threading.Thread):
    """A worker's: republishes the flow within CHECK_EVERY_S of a change in who it rings,
    once an operator has published it (a line without Twilio Studio never gets one)."""

    def __init__(self, rt: Runtime):
        super().__init__(name="fallback-flow", daemon=True)
        self.rt = rt
        self.stopping = threading.Event()
        self.client = None if rt.settings.console_mode else make_twilio_client(rt.settings)

    def run(self) -> None:
        while self.client is not None and not self.stopping.is_set():
            try:
                if last_publish(self.rt)[0] is not None:
                    publish(self.rt, self.client)
            except Exception:
                log.exception("fallback flow not republished; trying again in a minute")
            self.stopping.wait(CHECK_EVERY_S)


def run_publish(settings: Settings) -> int:
    """`hotline twilio fallback publish`: publish now and say where Twilio should point."""
    if settings.console_mode:
        print("hotline: no Twilio credentials (console mode): nothing to publish", file=sys.stderr)
        return 2
    rt = offline_runtime(settings)
    try:
        try:
            sid = publish(rt, make_twilio_client(settings), force=True)
        except Exception as exc:
            print(f"hotline: the flow could not be published: {exc}", file=sys.stderr)
            return 1
        phones = phones_to_ring(rt.rota.current(), rt.clock())
    finally:
        rt.engine.dispose()
    print(
        f"Fallback flow {sid} published; it rings {len(phones)} phone(s) now.\n"
        f"Its webhook URL (the number's fallback URLs: `hotline twilio configure`):\n"
        f"  {webhook_url(settings, sid)}"
    )
    return 0


def webhook_url(settings: Settings, sid: str) -> str:
    return f"https://webhooks.twilio.com/v1/Accounts/{settings.twilio_account_sid}/Flows/{sid}"
