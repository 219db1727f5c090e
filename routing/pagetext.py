"""A page's words: the defender's first words (or a voicemail's transcript, or an alarm's
text) behind the incident number and the commands staff answer with (routing.texts)."""

from __future__ import annotations

import functools
from collections.abc import Callable

from sqlmodel import Session, select

from routing import checkins
from routing.datakeys import unseal
from routing.history import first_words, voicemail_transcript
from routing.masking import show_number
from routing.parse_commands import OPTED_OUT_EVENT
from routing.runtime import Runtime
from routing.tables import ARRIVED_WHILE_DOWN, Event, Incident
from routing.texts import page_text


def page_body_later(
    rt: Runtime, session: Session, incident: Incident, fallback: bool
) -> Callable[[], str]:
    """The page text of `incident`, read when first asked for (in a surge most pages join a
    digest, and their text is never needed)."""
    return functools.cache(lambda: page_body(rt, session, incident, fallback))


def page_body(rt: Runtime, session: Session, incident: Incident, fallback: bool) -> str:
    """What a page of `incident` says: its alarm's text while one stands, else who wrote and
    their first words."""
    alarm = checkins.alarm_page(rt, session, incident, fallback)  # MISSED CHECK-IN, DURESS
    if alarm is not None:
        return alarm
    # a web defender has no number, and their contact line never travels by SMS
    sender = (
        ""
        if incident.channel == "web"
        else show_number(unseal(rt.vault, incident, "defender"), rt.settings.reveal_numbers)
    )
    words = first_words(rt, session, incident.id)
    if not words and incident.channel == "voice":
        words = voicemail_transcript(rt, session, incident.id)
    marks = set(
        session.exec(
            select(Event.kind).where(
                Event.incident_id == incident.id,
                Event.kind.in_((OPTED_OUT_EVENT, ARRIVED_WHILE_DOWN)),
            )
        ).all()
    )
    return page_text(
        incident.id,
        incident.channel,
        sender,
        words,
        fallback=fallback,
        voicemail=incident.channel == "voice",
        no_sms=OPTED_OUT_EVENT in marks,
        late=ARRIVED_WHILE_DOWN in marks,
    )
