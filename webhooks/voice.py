"""`/twilio/voice` and the call-flow steps under `/twilio/voice/...`: parse, route, render.

A defender must never be left in silence: if routing fails on a caller-facing step (database
down, a bug), the caller gets the fallback voicemail TwiML instead of an error.
"""

from __future__ import annotations

import logging
import re
from functools import wraps

from flask import Blueprint, current_app, request
from twilio.twiml.voice_response import VoiceResponse
from werkzeug.exceptions import HTTPException

from routing import staff_calls, voice, voicemail
from webhooks import forms
from webhooks.fields import bounded_id
from webhooks.forms import BadWebhook
from webhooks.security import twilio_signed
from webhooks.twiml import twiml
from webhooks.voice_twiml import (
    caller_twiml,
    fallback_call_twiml,
    screen_twiml,
    staff_call_twiml,
)

log = logging.getLogger(__name__)
bp = Blueprint("twilio_voice", __name__, url_prefix="/twilio")


def _rt():  # noqa: ANN202
    return current_app.extensions["hotline"]


# Keys a caller can press (Twilio sends "hangup" when a <Record> ends by hanging up).
_DIGITS = re.compile(r"[0-9*#]{1,32}|hangup")


def _id_arg(name: str) -> int | None:
    """The id in query parameter `name`. Raises BadWebhook (400) when it is not a number;
    None when it is past fields.MAX_ID, so it names nothing of ours and the step answers as
    for an unknown incident."""
    value = request.args.get(name, "")
    if not (value.isascii() and value.isdigit()):
        raise BadWebhook(f"query parameter {name} must be a number")
    return bounded_id(value)


def _incident_arg() -> int | None:
    return bounded_id(request.args.get("incident"))


def _digits() -> str | None:
    digits = (request.form.get("Digits") or "").strip()
    return digits if _DIGITS.fullmatch(digits) else None


def _hang_up():  # noqa: ANN202
    """A staff leg for an incident that is not ours: end it (a leg has no caller to keep)."""
    response = VoiceResponse()
    response.hangup()
    return twiml(response)


def caller_safe(view):  # noqa: ANN001, ANN201
    """On any failure of a caller-facing step, answer the fallback voicemail."""

    @wraps(view)
    def guarded(*args, **kwargs):  # noqa: ANN202
        try:
            return view(*args, **kwargs)
        except (HTTPException, BadWebhook):
            raise
        except Exception:
            log.exception("voice step %s failed; the caller gets the voicemail", request.path)
            try:
                return twiml(fallback_call_twiml(_rt(), _incident_arg()))
            except Exception:
                log.exception("even the fallback TwiML could not be built")
                return twiml(fallback_call_twiml(None, None))

    return guarded


@bp.post("/voice")
@twilio_signed
@caller_safe
def incoming():  # noqa: ANN201
    rt = _rt()
    return twiml(caller_twiml(rt, voice.answer_call(rt, forms.voice_call(request.form))))


@bp.post("/voice/language")
@twilio_signed
@caller_safe
def language():  # noqa: ANN201
    rt = _rt()
    incident_id = _id_arg("incident")
    if incident_id is None:  # the caller still hears the voicemail, never silence
        return twiml(fallback_call_twiml(rt, None))
    plan = voice.choose_language(rt, incident_id, _digits() or "")
    return twiml(caller_twiml(rt, plan))


@bp.post("/voice/dial-result")
@twilio_signed
@caller_safe
def dial_result():  # noqa: ANN201
    rt = _rt()
    incident_id, level = _id_arg("incident"), _id_arg("level")
    if incident_id is None or level is None:
        return twiml(fallback_call_twiml(rt, None))
    plan = voice.dial_result(rt, incident_id, level, forms.dial_outcome(request.form))
    return twiml(caller_twiml(rt, plan))


@bp.post("/voice/screen")
@twilio_signed
def screen():  # noqa: ANN201
    """The staff leg of a ringing defender call (Dial <Number url>)."""
    rt, leg = _rt(), _staff_leg()
    if leg is None:
        return _hang_up()
    incident_id, called = leg
    result = voice.screen(rt, incident_id, called, _digits(), request.form.get("CallSid"))
    return twiml(screen_twiml(rt, incident_id, result, voice.incident_language(rt, incident_id)))


@bp.post("/voice/recorded")
@twilio_signed
@caller_safe
def recorded():  # noqa: ANN201
    """The caller finished the voicemail (Record action)."""
    rt = _rt()
    incident_id = _incident_arg()
    if incident_id is not None:
        voicemail.voicemail_left(rt, incident_id)
    language = voice.incident_language(rt, incident_id)
    return twiml(caller_twiml(rt, voice.Hangup(language, thank_you=True)))


@bp.post("/voice/recording")
@twilio_signed
def recording():  # noqa: ANN201
    """Recording status callback: store (encrypted) and page. Repeats change nothing."""
    voicemail.recording_ready(_rt(), _incident_arg(), forms.recording(request.form))
    return ("", 204)


@bp.post("/voice/transcript")
@twilio_signed
def transcript():  # noqa: ANN201
    transcript = forms.transcript(request.form)
    if transcript is not None:
        voicemail.transcript_ready(_rt(), transcript)
    return ("", 204)


@bp.post("/voice/notify")
@twilio_signed
def notify():  # noqa: ANN201
    """A notification call to staff: answered, then 1 (take it) or 2 (pass)."""
    rt = _rt()
    incident_id, page_id = _id_arg("incident"), _id_arg("page")
    if incident_id is None or page_id is None:
        return _hang_up()
    plan = staff_calls.notify_call(
        rt,
        incident_id,
        page_id,
        _digits(),
        request.form.get("AnsweredBy"),
        request.form.get("CallSid"),
    )
    return twiml(staff_call_twiml(rt, plan, page_id=page_id))


@bp.post("/voice/bridge")
@twilio_signed
def bridge():  # noqa: ANN201
    """CALL 17: the staff member answered; 1 connects them to the defender."""
    rt, leg = _rt(), _staff_leg()
    if leg is None:
        return _hang_up()
    plan = staff_calls.bridge_call(rt, *leg, _digits())
    return twiml(staff_call_twiml(rt, plan))


def _staff_leg() -> tuple[int, str] | None:
    """The incident (`?incident=`) and the staff number a call leg to staff rang (Twilio's
    `To`, or `Called`), or None without an incident."""
    incident_id = _id_arg("incident")
    if incident_id is None:
        return None
    return incident_id, request.form.get("To") or request.form.get("Called") or ""
