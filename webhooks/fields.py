"""Twilio's form, checked as well as signed, and every number from outside bounded.

Twilio's signature is an HMAC over the URL followed by each key and value joined with no
separator, so `MessageSid=<sid>&NumMedia=0` and `MessageSid=<sid>NumMedia0` carry the same
signature: field boundaries can be shifted under a valid signature. Each field we rely on is
therefore checked for the exact shape Twilio gives it, right after the signature check and
before any routing; a form that fails is a request Twilio never sent.
"""

from __future__ import annotations

import re

from werkzeug.datastructures import MultiDict

# Incident, message, call and page ids are 32-bit integers in every database we run on; a
# larger number from outside can name nothing of ours and must never reach a query.
MAX_ID = 2**31 - 1

_ID = re.compile(r"[0-9]{1,10}")

# The SIDs Twilio sends us, by field: two letters naming the kind, then 32 hex digits.
SID_FORMATS: dict[str, re.Pattern[str]] = {
    "MessageSid": re.compile(r"(SM|MM)[0-9a-f]{32}"),
    "SmsSid": re.compile(r"(SM|MM)[0-9a-f]{32}"),
    "SmsMessageSid": re.compile(r"(SM|MM)[0-9a-f]{32}"),
    "CallSid": re.compile(r"CA[0-9a-f]{32}"),
    "DialCallSid": re.compile(r"CA[0-9a-f]{32}"),
    "ParentCallSid": re.compile(r"CA[0-9a-f]{32}"),
    "RecordingSid": re.compile(r"RE[0-9a-f]{32}"),
    "TranscriptionSid": re.compile(r"TR[0-9a-f]{32}"),
    "AccountSid": re.compile(r"AC[0-9a-f]{32}"),
    "MessagingServiceSid": re.compile(r"MG[0-9a-f]{32}"),
}
# Any other `...Sid` field (Twilio adds some now and then) must at least look like a SID.
ANY_SID = re.compile(r"[A-Z]{2}[0-9a-f]{32}")
# Fields routing turns into numbers: Twilio sends at most 10 media, 5-digit error codes.
SMALL_NUMBERS = {"NumMedia": re.compile(r"[0-9]{1,2}"), "ErrorCode": re.compile(r"[0-9]{0,6}")}


class BadForm(ValueError):
    """The form is not one Twilio would send; the message names the field (never its value)."""


def check_twilio_form(form: MultiDict[str, str], account_sid: str | None) -> None:
    """Raise BadForm unless every SID-like and numeric field has Twilio's exact shape.

    `MessageSid` and `SmsSid` must agree when both are present; `AccountSid` must be
    `account_sid` when that is given (live mode). No key may repeat: Twilio never repeats
    one, and the signature collapses repeated equal values, so a repeat only adds ambiguity.
    """
    for key in form:
        values = form.getlist(key)
        if len(values) != 1:
            raise BadForm(f"{key} is repeated")
        value = values[0]
        pattern = SID_FORMATS.get(key)
        if pattern is None and key.endswith("Sid"):
            pattern = ANY_SID
        if pattern is None:
            pattern = SMALL_NUMBERS.get(key)
        if pattern is not None and not pattern.fullmatch(value):
            raise BadForm(f"{key} is malformed")
    message_sid, sms_sid = form.get("MessageSid"), form.get("SmsSid")
    if message_sid and sms_sid and message_sid != sms_sid:
        raise BadForm("MessageSid and SmsSid differ")
    if account_sid and "AccountSid" in form and form["AccountSid"] != account_sid:
        raise BadForm("AccountSid is not this account")


def bounded_id(text: str | None) -> int | None:
    """The id in `text` (ASCII digits, at most MAX_ID), or None for anything else.

    `str.isdigit()` is not enough: it accepts '²' (which `int()` refuses) and a thousand
    digits (which overflow every database integer).
    """
    if text is None or not _ID.fullmatch(text):
        return None
    value = int(text)
    return value if value <= MAX_ID else None
