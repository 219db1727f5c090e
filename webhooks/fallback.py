"""`/twilio/fallback`: the number's fallback URL, for when the primary handler failed.

It touches nothing but the database (no Redis, no Twilio REST): a call goes through the intake
with its incident due for paging now (the sweeper pages it) and gets a voicemail; a message is
stored as received (the sweeper threads it). If even the database is down, the answer is
still safe TwiML, and the error is logged.
"""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, request
from twilio.twiml.messaging_response import MessagingResponse

from routing import intake
from routing.messages import store_message
from webhooks import forms
from webhooks.security import twilio_signed
from webhooks.twiml import twiml
from webhooks.voice_twiml import fallback_call_twiml

log = logging.getLogger(__name__)
bp = Blueprint("twilio_fallback", __name__, url_prefix="/twilio")


@bp.post("/fallback")
@twilio_signed
def fallback():  # noqa: ANN201
    rt = current_app.extensions["hotline"]
    form = request.form
    if form.get("CallSid") and not form.get("MessageSid"):
        incident_id = None
        try:
            # no live ringing here: the incident is due for paging at once, by the sweeper
            received = intake.take_call(rt, forms.voice_call(form), schedule=False)
            incident_id = received.incident_id
        except forms.BadWebhook as exc:
            log.warning("fallback: not a call Twilio sends (%s); voicemail anyway", exc)
        except Exception:
            log.exception(
                "fallback: call %s not stored; answering with a voicemail anyway",
                form.get("CallSid"),
            )
        return twiml(fallback_call_twiml(rt, incident_id))
    try:
        # stored only: a staff command is kept for the log, never threaded as a defender's
        store_message(rt, forms.text_message(form))
    except forms.BadWebhook as exc:
        log.warning("fallback: not a message Twilio sends (%s); nothing stored", exc)
    except Exception:
        log.exception("fallback: message %s not stored", form.get("MessageSid"))
    return twiml(MessagingResponse())
