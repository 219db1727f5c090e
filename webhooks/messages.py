"""`/twilio/sms` and `/twilio/status` (messages and calls; the fallback is webhooks.fallback)."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, request
from twilio.twiml.messaging_response import MessagingResponse

from routing import sending
from routing.messages import receive_message
from webhooks import forms
from webhooks.busy import (
    DEFAULT_INLINE_LIMIT,
    IN_FLIGHT,
    INLINE_LIMIT,
    SURGE_ARRIVALS,
    SURGE_AT,
)
from webhooks.fields import bounded_id
from webhooks.security import twilio_signed
from webhooks.twiml import twiml

log = logging.getLogger(__name__)
bp = Blueprint("twilio_messages", __name__, url_prefix="/twilio")
NOTHING = str(MessagingResponse())  # the answer to most messages, rendered once


@bp.post("/sms")
@twilio_signed
def sms():  # noqa: ANN201
    message = forms.text_message(request.form)
    in_flight = current_app.extensions[IN_FLIGHT]
    load = in_flight.enter()  # counted out once the work after the answer is done too
    try:
        config = current_app.config
        busy = load.busy(
            config.get(INLINE_LIMIT, DEFAULT_INLINE_LIMIT), config.get(SURGE_AT, SURGE_ARRIVALS)
        )
        answer = receive_message(current_app.extensions["hotline"], message, defer=busy)
    except BaseException:
        in_flight.leave()
        raise
    if answer.reply:
        reply = MessagingResponse()
        reply.message(answer.reply)
        response = twiml(reply)
    else:
        response = twiml(NOTHING)
    # the answer is written to Twilio first (the server closes the response after): a
    # defender's message is threaded once Twilio has its answer (routing.intake)
    if answer.then is not None:
        response.call_on_close(answer.then)
    response.call_on_close(in_flight.leave)
    return response


@bp.post("/status")
@twilio_signed
def status():  # noqa: ANN201
    """Delivery status of our outbound messages (and calls). Unknown or stale: 200, no change."""
    rt = current_app.extensions["hotline"]
    form = request.form
    sid = form.get("MessageSid") or form.get("SmsSid")
    if sid:
        # an id past the bound names nothing of ours: an unknown callback, answered politely
        sending.message_status(
            rt,
            sid,
            form.get("MessageStatus") or form.get("SmsStatus") or "",
            bounded_id(form.get("ErrorCode")),
            bounded_id(request.args.get("message")),
        )
    elif form.get("CallSid"):
        sending.call_status(
            rt,
            form["CallSid"],
            form.get("CallStatus") or "",
            form.get("AnsweredBy"),
            bounded_id(request.args.get("call")),
        )
    return ("", 204)
