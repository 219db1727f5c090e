"""TwiML for every call-flow plan (routing.voice, routing.staff_calls).

Every URL we hand Twilio comes from routing.runtime.flow_url: absolute under HOTLINE_PUBLIC_URL,
query included, because that exact URL is what Twilio signs when it calls back.
"""

from __future__ import annotations

from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from routing.runtime import Runtime, flow_url
from routing.staff_calls import StaffCallPlan
from routing.texts import CHANNEL_LABEL
from routing.voice import (
    DIAL_TIMEOUT_S,
    MENU_TIMEOUT_S,
    SCREEN_TIMEOUT_S,
    VOICEMAIL_MAX_S,
    Hangup,
    Menu,
    Plan,
    Ring,
    Voicemail,
)
from webhooks import speech

STAFF_KEY_TIMEOUT_S = 10


def caller_twiml(rt: Runtime, plan: Plan) -> VoiceResponse:
    """What the defender hears next. Never silence: every branch speaks, rings or records."""
    response = VoiceResponse()
    if isinstance(plan, Menu):
        action = flow_url(rt, "/twilio/voice/language", incident=plan.incident_id)
        gather = Gather(
            num_digits=1, timeout=MENU_TIMEOUT_S, action=action, action_on_empty_result=True
        )
        for digit, language in enumerate(plan.languages, start=1):
            text, voice_language = speech.menu_option(language, digit)
            gather.say(text, language=voice_language)
        response.append(gather)
        # reached only where actionOnEmptyResult is unsupported: no key means the default
        response.redirect(action)
    elif isinstance(plan, Ring):
        if plan.stay_on_line:
            text, voice_language = speech.spoken(speech.STAY_ON_LINE, plan.language)
            response.say(text, language=voice_language)
        dial = Dial(
            caller_id=rt.settings.number,
            timeout=DIAL_TIMEOUT_S,
            action=flow_url(
                rt, "/twilio/voice/dial-result", incident=plan.incident_id, level=plan.level
            ),
        )
        screen = flow_url(rt, "/twilio/voice/screen", incident=plan.incident_id)
        for phone in plan.phones:
            dial.number(phone, url=screen)
        response.append(dial)
    elif isinstance(plan, Voicemail):
        text, voice_language = speech.spoken(speech.LEAVE_MESSAGE, plan.language)
        response.say(text, language=voice_language)
        record_voicemail(rt, response, plan.incident_id, plan.language)
    elif isinstance(plan, Hangup):
        if plan.thank_you:
            text, voice_language = speech.spoken(speech.THANK_YOU, plan.language)
            response.say(text, language=voice_language)
        response.hangup()
    return response


def record_voicemail(
    rt: Runtime, response: VoiceResponse, incident_id: int | None, language: str
) -> None:
    """`<Record>` a voicemail with its callbacks, then a goodbye (reached when nothing was
    recorded, since Twilio then skips the action)."""
    transcribe = language == "en"  # Twilio transcribes English only
    extra = {}
    if transcribe:
        extra = {
            "transcribe": True,
            "transcribe_callback": flow_url(rt, "/twilio/voice/transcript", incident=incident_id),
        }
    response.record(
        max_length=VOICEMAIL_MAX_S,
        play_beep=True,
        timeout=10,
        action=flow_url(rt, "/twilio/voice/recorded", incident=incident_id),
        recording_status_callback=flow_url(rt, "/twilio/voice/recording", incident=incident_id),
        recording_status_callback_event="completed",
        **extra,
    )
    text, voice_language = speech.spoken(speech.THANK_YOU, language)
    response.say(text, language=voice_language)
    response.hangup()


def fallback_call_twiml(rt: Runtime | None, incident_id: int | None) -> VoiceResponse:
    """The safe answer when the main flow cannot run: a greeting and a voicemail."""
    response = VoiceResponse()
    response.say(speech.FALLBACK_GREETING, language=speech.say_language("en"))
    if rt is None:
        response.record(max_length=VOICEMAIL_MAX_S, play_beep=True)
        response.hangup()
        return response
    record_voicemail(rt, response, incident_id, "en")
    return response


def screen_twiml(rt: Runtime, incident_id: int, result: str, language: str) -> VoiceResponse:
    """The staff side of a ringing defender call: press 1 to take it, else this leg ends."""
    response = VoiceResponse()
    staff_voice = speech.say_language(rt.settings.default_language)
    if result == "prompt":
        gather = Gather(
            num_digits=1,
            timeout=SCREEN_TIMEOUT_S,
            action=flow_url(rt, "/twilio/voice/screen", incident=incident_id),
        )
        gather.say(
            f"Hotline emergency call, incident {incident_id}, in "
            f"{speech.language_name(language)}. Press 1 to accept.",
            language=staff_voice,
        )
        response.append(gather)
        response.hangup()  # no key: a personal voicemail must never take the call
    elif result == "accept":
        response.say("Connecting.", language=staff_voice)
    else:
        response.hangup()
    return response


def staff_call_twiml(
    rt: Runtime, plan: StaffCallPlan, *, page_id: int | None = None
) -> VoiceResponse:
    """Notification calls and CALL bridges, in the hotline's default language."""
    response = VoiceResponse()
    voice = speech.say_language(rt.settings.default_language)
    n = plan.incident_id
    if plan.kind == "machine":
        response.hangup()  # never leave incident details on a voicemail
        return response
    if plan.kind == "prompt" and page_id is not None:
        label = CHANNEL_LABEL.get(plan.channel, plan.channel)
        what = (
            "a voicemail"
            if plan.voicemail
            else "a call"
            if plan.channel == "voice"
            else f"by {label}"
        )
        line = (
            f"Hotline emergency. Incident {n}, {what}, in "
            f"{speech.language_name(plan.language)}. Press 1 to take it. Press 2 to pass."
        )
        path, args = "/twilio/voice/notify", {"incident": n, "page": page_id}
        _ask(rt, response, path, args, [line, line], voice)  # said twice
        response.say("No key pressed. Goodbye.", language=voice)
    elif plan.kind == "acked":
        response.say(f"You have taken incident {n}.", language=voice)
        line = "To call the defender now, press 1. Or hang up and reply by SMS."
        _ask(rt, response, "/twilio/voice/bridge", {"incident": n}, [line], voice)
        response.say("Goodbye.", language=voice)
    elif plan.kind == "prompt":  # a bridge
        line = f"Hotline. Press 1 to be connected to the defender of incident {n}."
        _ask(rt, response, "/twilio/voice/bridge", {"incident": n}, [line], voice)
        response.say("No key pressed. Goodbye.", language=voice)
    elif plan.kind == "connect":
        response.say("Connecting you to the defender.", language=voice)
        dial = Dial(caller_id=rt.settings.number)
        dial.number(plan.dial)
        response.append(dial)
    else:
        response.say(_closing_line(plan), language=voice)
    response.hangup()
    return response


def _ask(
    rt: Runtime,
    response: VoiceResponse,
    path: str,
    args: dict[str, int],
    lines: list[str],
    voice: str,
) -> None:
    """A one-key question to staff: `lines` said (a pause between them), the key to `path`."""
    gather = Gather(num_digits=1, timeout=STAFF_KEY_TIMEOUT_S, action=flow_url(rt, path, **args))
    for index, line in enumerate(lines):
        if index:
            gather.pause(length=1)
        gather.say(line, language=voice)
    response.append(gather)


def _closing_line(plan: StaffCallPlan) -> str:
    """What a staff call ends with when there is nothing to ask."""
    n = plan.incident_id
    if plan.kind == "passed":
        return f"Incident {n} passed. Paging the next level. Goodbye."
    if plan.kind == "taken":
        return f"Incident {n} was already taken by {plan.by}. No action needed."
    if plan.kind == "withheld":
        return (
            f"The defender of incident {n} cannot be called back: the number is withheld. Goodbye."
        )
    by = f" It was taken or closed by {plan.by}." if plan.by else ""  # closed, not_staff
    return f"Incident {n} needs no action from you.{by} Goodbye."
