"""`hotline simulate sms|call`: correctly signed Twilio webhooks, sent to a running hotline.

`sms` posts one message. `call` walks the call flow as Twilio would, without a phone: posts a
signed `/twilio/voice`, prints each TwiML answer, and follows what it can: a `<Gather>` gets the
next of `--digits` (or no input), a `<Redirect>` is followed, a `<Dial>` nobody can answer here
ends `no-answer` (so the levels are walked through), and a `<Record>` ends with a simulated
voicemail, which pages the incident as a real one would. (`simulate web`: hotline.simulate_web.)
"""

from __future__ import annotations

import secrets
import sys
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

from twilio.request_validator import RequestValidator

import oncall
from hotline.settings import Settings
from hotline.usage import UsageError, refused
from oncall.phones import e164

WHATSAPP = "whatsapp:"


class NotANumber(UsageError):
    """`--from` is no phone number the hotline could receive; the message says how to write it."""


def sender_address(raw: str, region: str | None) -> str:
    """Twilio's `From` for the number a person typed: E.164, `whatsapp:` kept.

    Twilio always sends E.164; a person copying a number from the rota may type it in national
    format (`086 111 2233`), which is read with the rota's `default_region` (`region`), as the
    rota reads it. Raises NotANumber for anything else, so that a mistyped staff number never
    reaches the hotline as a new defender.
    """
    prefix = WHATSAPP if raw.startswith(WHATSAPP) else ""
    typed = raw.removeprefix(WHATSAPP).strip()
    # E.164 is taken as the hotline takes Twilio's (a possible number: the fictional ranges
    # too); a national number is checked as the rota checks staff numbers (a valid one)
    number = e164(typed, region, possible=typed.startswith("+"))
    if number is None:
        national = (
            f", or in {region}'s national format (the rota's default_region)"
            if region
            else "; the rota sets no default_region for national numbers"
        )
        raise NotANumber(
            f"--from {raw!r}: not a phone number; write it in international "
            f"format, e.g. +353 86 123 4567{national}"
        )
    return prefix + number


def rota_region(settings: Settings) -> str | None:
    """The rota's `default_region`, or None when the rota file cannot be read or checked."""
    try:
        source = settings.rota_path.read_text(encoding="utf-8")
        return oncall.parse_rota(
            source, str(settings.rota_path), key=settings.rota_key
        ).default_region
    except (OSError, oncall.RotaInvalid):
        return None


def signed_post(settings: Settings, url: str, path: str, params: dict[str, str]) -> tuple[int, str]:
    """POST `params` to `url + path`, signed as Twilio signs (for the public URL when set)."""
    signed_for = (settings.public_url or url.rstrip("/")) + path
    signature = RequestValidator(settings.webhook_token).compute_signature(signed_for, params)
    request = urllib.request.Request(
        url.rstrip("/") + path,
        data=urllib.parse.urlencode(params).encode(),
        headers={
            "X-Twilio-Signature": signature,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def simulate(
    settings: Settings, *, kind: str, sender: str, text: str, url: str, digits: str = ""
) -> int:
    """Send one signed webhook (sms) or walk one call (call) from `sender` to the hotline at
    `url`. Returns 0 when the hotline answered 200; 1 when it refused or could not be reached;
    2 when `sender` is no phone number (nothing is sent)."""
    try:
        address = sender_address(sender, rota_region(settings))
    except NotANumber as exc:
        return refused(exc)
    if address != sender:
        print(f"hotline: from {address}", file=sys.stderr)
    account = settings.twilio_account_sid or "AC" + "0" * 32
    if kind == "sms":
        to = (
            settings.whatsapp
            if address.startswith(WHATSAPP) and settings.whatsapp
            else settings.number
        )
        params = {
            "MessageSid": "SM" + secrets.token_hex(16),
            "AccountSid": account,
            "From": address,
            "To": to,
            "Body": text,
            "NumMedia": "0",
        }
        try:
            status, body = signed_post(settings, url, "/twilio/sms", params)
        except OSError as exc:
            print(
                f"hotline: cannot reach {url} ({exc}); is `hotline run` running?", file=sys.stderr
            )
            return 1
        print(f"{status} {body}")
        return 0 if status == 200 else 1
    return walk_call(settings, url=url, sender=address, digits=digits, account=account)


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
