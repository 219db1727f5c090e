"""Twilio's forms, parsed into the typed values routing takes. Routing never sees a form."""

from __future__ import annotations

from collections.abc import Mapping

from routing.intake import TextMessage, VoiceCall
from routing.voice import DialOutcome
from routing.voicemail import Recording, Transcript

MAX_BODY = 5000
MAX_MEDIA = 10


class BadWebhook(ValueError):
    """A webhook form that cannot be what Twilio sends (missing sid, unparseable fields)."""


def text_message(form: Mapping[str, str]) -> TextMessage:
    """An SMS, MMS or WhatsApp message. Raises BadWebhook when it cannot be Twilio's."""
    sid = (form.get("MessageSid") or form.get("SmsSid") or "").strip()
    sender = (form.get("From") or "").strip()
    if not sid or not sender:
        raise BadWebhook("MessageSid and From are required")
    try:
        count = int(form.get("NumMedia") or 0)
    except ValueError as exc:
        raise BadWebhook("NumMedia is not a number") from exc
    indexes = range(min(max(count, 0), MAX_MEDIA))
    media = tuple(form.get(f"MediaContentType{i}") or "unknown" for i in indexes)
    urls = tuple(url for i in indexes if (url := form.get(f"MediaUrl{i}")))
    return TextMessage(
        sid=sid, sender=sender, body=cut(form.get("Body") or ""), media_types=media, media_urls=urls
    )


def cut(body: str, limit: int = MAX_BODY) -> str:
    """The body, or its first `limit` characters with a mark saying how much was cut."""
    if len(body) <= limit:
        return body
    return f"{body[:limit]} [... {len(body) - limit} more characters cut]"


def voice_call(form: Mapping[str, str]) -> VoiceCall:
    """A call to the hotline. Raises BadWebhook without a CallSid."""
    sid = (form.get("CallSid") or "").strip()
    if not sid:
        raise BadWebhook("CallSid is required")
    return VoiceCall(sid=sid, sender=(form.get("From") or "").strip())


def dial_outcome(form: Mapping[str, str]) -> DialOutcome:
    """How ringing a level ended (the `<Dial>`'s action request)."""
    return DialOutcome(
        call_status=(form.get("CallStatus") or "").lower(),
        dial_status=(form.get("DialCallStatus") or "").lower(),
        leg_sid=form.get("DialCallSid") or None,
    )


def recording(form: Mapping[str, str]) -> Recording:
    return Recording(
        call_sid=form.get("CallSid") or "",
        recording_sid=form.get("RecordingSid") or None,
        url=form.get("RecordingUrl") or None,
        status=(form.get("RecordingStatus") or "completed").lower(),
    )


def transcript(form: Mapping[str, str]) -> Transcript | None:
    if not form.get("RecordingSid"):
        return None
    return Transcript(
        recording_sid=form["RecordingSid"],
        status=(form.get("TranscriptionStatus") or "").lower(),
        text=form.get("TranscriptionText") or "",
    )
