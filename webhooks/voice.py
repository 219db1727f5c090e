"""`/twilio/voice` and the call-flow steps under `/twilio/voice/...`: parse, route, render.

A defender must never be left in silence: if routing fails on a caller-facing step (database
down, a bug), the caller gets the fallback voicemail TwiML instead of an error.
"""

from __future__ import annotations

import logging
from functools import wraps

from flask import Blueprint, current_app, request
from werkzeug.exceptions import HTTPException

from routing import staff_calls, voice, voicemail
from webhooks import forms
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


def _id(name: str) -> int:
    return forms.required_query_id(name)


def _digits() -> str | None:
    return forms.digits(request.form)


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
                return twiml(fallback_call_twiml(_rt(), forms.query_id("incident")))
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
    plan = voice.choose_language(rt, _id("incident"), _digits() or "")
    return twiml(caller_twiml(rt, plan))


@bp.post("/voice/dial-result")
@twilio_signed
@caller_safe
def dial_result():  # noqa: ANN201
    rt = _rt()
    plan = voice.dial_result(rt, _id("incident"), _id("level"), request.form)
    return twiml(caller_twiml(rt, plan))


@bp.post("/voice/screen")
@twilio_signed
def screen():  # noqa: ANN201
    """The staff leg of a ringing defender call (Dial <Number url>)."""
    rt = _rt()
    incident_id = _id("incident")
    called = request.form.get("To") or request.form.get("Called") or ""
    result = voice.screen(rt, incident_id, called, _digits(), request.form.get("CallSid"))
    return twiml(screen_twiml(rt, incident_id, result, voice.incident_language(rt, incident_id)))


@bp.post("/voice/recorded")
@twilio_signed
@caller_safe
def recorded():  # noqa: ANN201
    """The caller finished the voicemail (Record action)."""
    rt = _rt()
    incident_id = forms.query_id("incident")
    if incident_id is not None:
        voicemail.voicemail_left(rt, incident_id)
    language = voice.incident_language(rt, incident_id)
    return twiml(caller_twiml(rt, voice.Hangup(language, thank_you=True)))


@bp.post("/voice/recording")
@twilio_signed
def recording():  # noqa: ANN201
    """Recording status callback: store (encrypted) and page. Repeats change nothing."""
    voicemail.recording_ready(_rt(), forms.query_id("incident"), forms.recording(request.form))
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
    page_id = _id("page")
    plan = staff_calls.notify_call(rt, _id("incident"), page_id, _digits(),
                                   request.form.get("AnsweredBy"), request.form.get("CallSid"))
    return twiml(staff_call_twiml(rt, plan, page_id=page_id))


@bp.post("/voice/bridge")
@twilio_signed
def bridge():  # noqa: ANN201
    """CALL 17: the staff member answered; 1 connects them to the defender."""
    rt = _rt()
    called = request.form.get("To") or request.form.get("Called") or ""
    plan = staff_calls.bridge_call(rt, _id("incident"), called, _digits())
    return twiml(staff_call_twiml(rt, plan))
