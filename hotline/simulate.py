"""`hotline simulate`: a correctly signed Twilio webhook, sent to a running hotline."""

from __future__ import annotations

import secrets
import sys
import urllib.error
import urllib.parse
import urllib.request

import phonenumbers
from twilio.request_validator import RequestValidator

import oncall
from hotline.settings import Settings

WHATSAPP = "whatsapp:"


class NotANumber(ValueError):
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
    international = typed.startswith("+")
    # E.164 is taken as the hotline takes Twilio's (a possible number: the fictional ranges
    # too); a national number is checked as the rota checks staff numbers (a valid one)
    usable = phonenumbers.is_possible_number if international else phonenumbers.is_valid_number
    try:
        number = phonenumbers.parse(typed, None if international else region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not usable(number):
        national = (
            f", or in {region}'s national format (the rota's default_region)"
            if region
            else "; the rota sets no default_region for national numbers"
        )
        raise NotANumber(
            f"--from {raw!r}: not a phone number; write it in international "
            f"format, e.g. +353 86 123 4567{national}"
        )
    return prefix + phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


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
        print(f"hotline: {exc}", file=sys.stderr)
        return 2
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
    from hotline.simulate_call import walk_call

    return walk_call(settings, url=url, sender=address, digits=digits, account=account)
