"""`hotline simulate`: a correctly signed Twilio webhook, sent to a running hotline."""

from __future__ import annotations

import secrets
import sys
import urllib.error
import urllib.parse
import urllib.request

from twilio.request_validator import RequestValidator

from hotline.settings import Settings


def signed_post(settings: Settings, url: str, path: str, params: dict[str, str]) -> tuple[int, str]:
    """POST `params` to `url + path`, signed as Twilio signs (for the public URL when set)."""
    signed_for = (settings.public_url or url.rstrip("/")) + path
    signature = RequestValidator(settings.webhook_token).compute_signature(signed_for, params)
    request = urllib.request.Request(
        url.rstrip("/") + path, data=urllib.parse.urlencode(params).encode(),
        headers={"X-Twilio-Signature": signature,
                 "Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def simulate(settings: Settings, *, kind: str, sender: str, text: str, url: str,
             digits: str = "") -> int:
    account = settings.twilio_account_sid or "AC" + "0" * 32
    if kind == "sms":
        channel_from = sender if sender.startswith("whatsapp:") else sender
        to = settings.whatsapp if sender.startswith("whatsapp:") and settings.whatsapp \
            else settings.number
        params = {"MessageSid": "SM" + secrets.token_hex(16), "AccountSid": account,
                  "From": channel_from, "To": to, "Body": text, "NumMedia": "0"}
        try:
            status, body = signed_post(settings, url, "/twilio/sms", params)
        except OSError as exc:
            print(f"hotline: cannot reach {url} ({exc}); is `hotline run` running?",
                  file=sys.stderr)
            return 1
        print(f"{status} {body}")
        return 0 if status == 200 else 1
    from hotline.simulate_call import walk_call

    return walk_call(settings, url=url, sender=sender, digits=digits, account=account)
