"""A defender's voicemail: recorded, kept encrypted, and paged like a message.

Staff are told a voicemail is waiting (routing.texts.page_text(voicemail=True)); the recording
URL is never sent or logged. Twilio's transcript (English only), when it comes, is relayed to
whoever took the incident and put in any later page.
"""

from __future__ import annotations

import logging

from sqlmodel import Session

from routing import jobs
from routing.calls import store_recording, store_transcript
from routing.delivery import queue_message
from routing.masking import show_number
from routing.runtime import Runtime
from routing.tables import Incident
from routing.texts import relay_text
from routing.voice import release_hold

log = logging.getLogger(__name__)


def voicemail_left(rt: Runtime, incident_id: int) -> None:
    """The caller finished recording: page the incident now (the recording may come later)."""
    release_hold(rt, incident_id, "voicemail_left", "the caller left a voicemail")


def recording_ready(rt: Runtime, incident_id: int | None, form) -> None:  # noqa: ANN001
    """Recording status callback: keep the recording, page the incident, and tell whoever
    already took it (a caller who also texted) that a voicemail is waiting. A repeated
    RecordingSid changes nothing."""
    status = (form.get("RecordingStatus") or "completed").lower()
    recording_sid, url = form.get("RecordingSid"), form.get("RecordingUrl")
    call_sid = form.get("CallSid") or ""
    if status != "completed" or not recording_sid or not url:
        log.info("recording of call %s not usable (status %s)", call_sid, status)
        if incident_id is not None:
            release_hold(rt, incident_id, "voicemail_failed", f"recording {status}")
        return
    stored_for = store_recording(rt, call_sid=call_sid, recording_sid=recording_sid, url=url,
                                 incident_id=incident_id)
    if stored_for is None:
        return
    if not release_hold(rt, stored_for, "voicemail_left", "the caller left a voicemail"):
        _relay_to_acker(rt, stored_for, f"[voicemail waiting: CALL {stored_for} to call back]")


def transcript_ready(rt: Runtime, form) -> None:  # noqa: ANN001
    """Transcription callback: keep the text; relay it to whoever took the incident."""
    if (form.get("TranscriptionStatus") or "").lower() != "completed":
        return
    text = (form.get("TranscriptionText") or "").strip()
    if not text or not form.get("RecordingSid"):
        return
    taken = store_transcript(rt, recording_sid=form["RecordingSid"], text=text[:1000])
    if taken is not None:
        _relay_to_acker(rt, taken[0], f"[voicemail] {text[:1000]}")


def _relay_to_acker(rt: Runtime, incident_id: int, body: str) -> None:
    from routing.staff import staff_phone

    with Session(rt.engine, expire_on_commit=False) as session:
        incident = session.get(Incident, incident_id)
        if incident is None or incident.status != "acknowledged" or not incident.acknowledged_by:
            return
        phone = staff_phone(rt, incident.acknowledged_by)
        if not phone:
            return
        sender = show_number(rt.vault.decrypt(incident.defender_enc), rt.settings.reveal_numbers)
        message = queue_message(session, rt, to=phone, purpose="relay", incident_id=incident_id,
                                staff_id=incident.acknowledged_by,
                                body=relay_text(incident_id, sender, body))
        session.commit()
        message_id = message.id
    jobs.schedule_delivery(rt, message_id)
