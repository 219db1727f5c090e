"""`/twilio/fallback`: the number's fallback URL, for when the primary handler failed.

It touches nothing but the database (no Redis, no Twilio REST): a call is stored with an
incident due for paging now (the sweeper pages it) and gets a voicemail; a message is stored
as received (the sweeper threads it). If even the database is down, the answer is still safe
TwiML, and the error is logged.
"""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, request
from twilio.twiml.messaging_response import MessagingResponse

from routing.incidents import parse_inbound, store_inbound
from routing.voice import open_call
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
            # hold=None: no live ringing here, so the incident is due for paging at once
            incident_id = open_call(rt, form["CallSid"], form.get("From") or "", hold=None)
        except Exception:
            log.exception("fallback: call %s not stored; answering with a voicemail anyway",
                          form.get("CallSid"))
        return twiml(fallback_call_twiml(rt, incident_id))
    try:
        inbound = parse_inbound(form)
        staff = _staff_sender(rt, inbound.e164)
        # a staff command is kept for the log, never threaded as a defender's message
        store_inbound(rt, inbound, purpose="command" if staff else "defender",
                      staff_id=staff.id if staff else None)
    except Exception:
        log.exception("fallback: message %s not stored", form.get("MessageSid"))
    return twiml(MessagingResponse())


def _staff_sender(rt, e164: str):  # noqa: ANN001, ANN202
    try:
        return rt.rota.current().staff_by_phone(e164)
    except Exception:
        return None
