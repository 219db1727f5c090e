"""`hotline simulate call`: walk a running hotline's call flow as Twilio would, without a phone.

Posts a signed `/twilio/voice`, prints each TwiML answer, and follows what it can: a `<Gather>`
gets the next of `--digits` (or no input), a `<Redirect>` is followed, a `<Dial>` nobody can
answer here ends `no-answer` (so the levels are walked through), and a `<Record>` ends with a
simulated voicemail, which pages the incident as a real one would.
"""

from __future__ import annotations

import secrets
import sys
import urllib.parse
import xml.etree.ElementTree as ET

from hotline.settings import Settings
from hotline.simulate import signed_post

MAX_STEPS = 20


def walk_call(settings: Settings, *, url: str, sender: str, digits: str = "", account: str) -> int:
    """Follow one simulated call to its end. Returns 0 when every step answered 200 with TwiML,
    1 otherwise (the hotline unreachable, a refused signature, a step that failed)."""
    call_sid = "CA" + secrets.token_hex(16)
    base = {
        "CallSid": call_sid,
        "AccountSid": account,
        "From": sender,
        "Caller": sender,
        "To": settings.number,
        "Called": settings.number,
        "Direction": "inbound",
    }
    keys = list(digits)
    path, params = "/twilio/voice", {**base, "CallStatus": "ringing"}
    for _step in range(MAX_STEPS):
        try:
            status, body = signed_post(settings, url, path, params)
        except OSError as exc:
            print(
                f"hotline: cannot reach {url} ({exc}); is `hotline run` running?", file=sys.stderr
            )
            return 1
        print(f"--> POST {path.split('?')[0]}  {status}\n{body}\n")
        if status != 200:
            return 1
        sides: list[tuple[str, dict[str, str]]] = []
        following = _next_request(body, keys, base, sides)
        for side_path, side_params in sides:
            side_path = _local(side_path, settings)
            side_status, _ = signed_post(settings, url, side_path, side_params)
            print(f"--> POST {side_path.split('?')[0]}  {side_status}\n")
        if following is None:
            return 0
        path, params = _local(following[0], settings), following[1]
    print("hotline: stopped after too many steps", file=sys.stderr)
    return 1


def _next_request(
    body: str, keys: list[str], base: dict[str, str], sides: list[tuple[str, dict[str, str]]]
) -> tuple[str, dict[str, str]] | None:
    """The request Twilio would make after this TwiML, or None when the call ends here.
    Callbacks Twilio would send beside the flow (a recording's status) go into `sides`."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    live = {**base, "CallStatus": "in-progress"}
    for verb in root:
        if verb.tag == "Gather" and verb.get("action"):
            if keys:
                return verb.get("action"), {**live, "Digits": keys.pop(0)}
            if verb.get("actionOnEmptyResult") == "true":
                return verb.get("action"), live
        elif verb.tag == "Redirect" and (verb.text or "").strip():
            return verb.text.strip(), live
        elif verb.tag == "Dial":
            if verb.get("action") is None:
                return None
            print("    (nobody can answer a simulated call: no-answer)")
            return verb.get("action"), {**live, "DialCallStatus": "no-answer"}
        elif verb.tag == "Record":
            print("    (leaving a simulated voicemail)")
            recording = {
                "RecordingSid": "RE" + secrets.token_hex(16),
                "RecordingUrl": "https://api.twilio.com/simulated-recording",
                "RecordingStatus": "completed",
                "RecordingDuration": "5",
            }
            callback = verb.get("recordingStatusCallback")
            if callback:
                sides.append(
                    (
                        callback,
                        {"AccountSid": base["AccountSid"], "CallSid": base["CallSid"], **recording},
                    )
                )
            action = verb.get("action")
            return (action, {**live, **recording}) if action else None
        elif verb.tag == "Hangup":
            return None
    return None


def _local(target: str, settings: Settings) -> str:
    """Path and query of a URL the hotline named (it may be absolute under the public URL)."""
    if settings.public_url and target.startswith(settings.public_url):
        return target[len(settings.public_url) :]  # signed_post puts the public URL back
    parts = urllib.parse.urlsplit(target)
    return parts.path + (f"?{parts.query}" if parts.query else "")
