"""A defender's voicemail: recorded, kept encrypted, and paged like a message.

Staff are told a voicemail is waiting (routing.texts.page_text(voicemail=True)); the recording
URL is never sent or logged. Twilio's transcript (English only), when it comes, is relayed to
whoever took the incident and put in any later page.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlmodel import select

from routing.datakeys import seal
from routing.intake import relay_to_taker
from routing.runtime import Runtime
from routing.tables import Call, Event
from routing.uow import unit_of_work
from routing.voice import release_hold

log = logging.getLogger(__name__)
TRANSCRIPT_MAX = 1000


@dataclass(frozen=True)
class Recording:
    """Twilio's recording status callback, parsed."""

    call_sid: str
    recording_sid: str | None
    url: str | None
    status: str  # completed, absent, failed


@dataclass(frozen=True)
class Transcript:
    recording_sid: str
    status: str
    text: str


def voicemail_left(rt: Runtime, incident_id: int) -> None:
    """The caller finished recording: page the incident now (the recording may come later)."""
    release_hold(rt, incident_id, "voicemail_left", "the caller left a voicemail")


def recording_ready(rt: Runtime, incident_id: int | None, recording: Recording) -> None:
    """Recording status callback: keep the recording, page the incident, and tell whoever
    already took it (a caller who also texted) that a voicemail is waiting. A repeated
    RecordingSid changes nothing."""
    if recording.status != "completed" or not recording.recording_sid or not recording.url:
        log.info(
            "recording of call %s not usable (status %s)", recording.call_sid, recording.status
        )
        if incident_id is not None:
            release_hold(rt, incident_id, "voicemail_failed", f"recording {recording.status}")
        return
    stored_for = _store_recording(rt, recording)
    if stored_for is None:
        return
    if not release_hold(rt, stored_for, "voicemail_left", "the caller left a voicemail"):
        relay_to_taker(rt, stored_for, f"[voicemail waiting: CALL {stored_for} to call back]")


def transcript_ready(rt: Runtime, transcript: Transcript) -> None:
    """Transcription callback: keep the text; relay it to whoever took the incident."""
    text = transcript.text.strip()[:TRANSCRIPT_MAX]
    if transcript.status != "completed" or not text:
        return
    incident_id = _store_transcript(rt, transcript.recording_sid, text)
    if incident_id is not None:
        relay_to_taker(rt, incident_id, f"[voicemail] {text}")


def _store_recording(rt: Runtime, recording: Recording) -> int | None:
    """Keep a voicemail's recording (encrypted; never logged). Returns the incident id it
    belongs to, or None for a repeated callback or a call we never stored."""
    now = rt.clock()
    with unit_of_work(rt) as uow:
        session = uow.session
        if session.exec(
            select(Call.id).where(Call.recording_sid == recording.recording_sid)
        ).first():
            return None  # a repeated delivery: done the first time
        call = session.exec(
            select(Call).where(Call.sid == recording.call_sid).with_for_update()
        ).first()
        if call is None:
            log.warning("recording for unknown call %s not stored", recording.call_sid)
            return None
        call.recording_sid = recording.recording_sid
        seal(session, rt.vault, call, recording=recording.url)
        call.updated_at = now
        session.add(
            Event(
                incident_id=call.incident_id,
                at=now,
                kind="voicemail",
                actor="defender",
                detail=f"recording on call {call.id}",
            )
        )
        return call.incident_id


def _store_transcript(rt: Runtime, recording_sid: str, text: str) -> int | None:
    """Keep a voicemail's transcript (encrypted) once. Returns its incident id, or None."""
    with unit_of_work(rt) as uow:
        call = uow.session.exec(
            select(Call).where(Call.recording_sid == recording_sid).with_for_update()
        ).first()
        if call is None or call.transcript_enc is not None:
            return None
        seal(uow.session, rt.vault, call, transcript=text)
        call.updated_at = rt.clock()
        return call.incident_id
