"""`hotline twilio configure [--dry-run] [--insecure]`: point the hotline's number at us.

Sets the number's voice and messaging URLs, the call status callback, and both fallback URLs
(the published fallback Studio Flow's webhook when there is one, else our own
`/twilio/fallback`, which fails with the host). Idempotent: it prints each setting as it is
and as it should be, and changes only what differs; `--dry-run` changes nothing. A
`HOTLINE_PUBLIC_URL` that is not https is refused unless `--insecure` (Twilio would send
every defender's words in the clear). WhatsApp senders are set in Twilio's console: their
settings are printed.
"""

from __future__ import annotations

import sys

from hotline.app import offline_runtime
from hotline.fallbackflow import last_publish, webhook_url
from hotline.settings import Settings
from hotline.twilio_client import make_twilio_client

# (field, path under HOTLINE_PUBLIC_URL, or None: the fallback)
WANTED = (
    ("voice_url", "/twilio/voice"),
    ("voice_method", "POST"),
    ("status_callback", "/twilio/status"),
    ("status_callback_method", "POST"),
    ("voice_fallback_url", None),
    ("voice_fallback_method", "POST"),
    ("sms_url", "/twilio/sms"),
    ("sms_method", "POST"),
    ("sms_fallback_url", None),
    ("sms_fallback_method", "POST"),
)


def wanted_settings(settings: Settings, flow_sid: str | None) -> dict[str, str]:
    base = settings.public_url or ""
    fallback = webhook_url(settings, flow_sid) if flow_sid else base + "/twilio/fallback"
    return {
        name: (fallback if value is None else base + value if value.startswith("/") else value)
        for name, value in WANTED
    }


def configure(settings: Settings, *, dry_run: bool, insecure: bool) -> int:
    if settings.console_mode:
        print(
            "hotline: no Twilio credentials (console mode): nothing to configure", file=sys.stderr
        )
        return 2
    if not (settings.public_url or "").startswith("https://") and not insecure:
        print(
            f"hotline: HOTLINE_PUBLIC_URL {settings.public_url!r} is not https: Twilio would "
            "send defenders' words in the clear. Use https, or --insecure for a test line.",
            file=sys.stderr,
        )
        return 2
    rt = offline_runtime(settings)
    try:
        flow_sid = last_publish(rt)[0]
    finally:
        rt.engine.dispose()
    client = make_twilio_client(settings)
    found = client.incoming_phone_numbers.list(phone_number=settings.number, limit=2)
    if not found:
        print(f"hotline: {settings.number} is not a number of this Twilio account", file=sys.stderr)
        return 2
    number = found[0]
    wanted = wanted_settings(settings, flow_sid)
    changes = {k: v for k, v in wanted.items() if getattr(number, k, None) != v}
    print(f"{settings.number} ({number.sid}):")
    for name, value in wanted.items():
        now = getattr(number, name, None)
        print(
            f"  {name:<24} {value}" if now == value else f"- {name:<24} {now}\n+ {name:<24} {value}"
        )
    if not flow_sid:
        print(
            "(no fallback flow published: `hotline twilio fallback publish`, then run this again)"
        )
    if not changes:
        print("Nothing to change.")
    elif dry_run:
        print(f"--dry-run: {len(changes)} setting(s) would change; nothing changed.")
    else:
        client.incoming_phone_numbers(number.sid).update(**changes)
        print(f"{len(changes)} setting(s) changed.")
    _whatsapp(settings, wanted)
    return 0


def _whatsapp(settings: Settings, wanted: dict[str, str]) -> None:
    if not settings.whatsapp:
        return
    print(
        f"\nWhatsApp sender {settings.whatsapp}: set these in Twilio's console (Messaging > "
        "Senders > WhatsApp senders), the API does not:\n"
        f"  Webhook URL for incoming messages : {wanted['sms_url']} (POST)\n"
        f"  Fallback URL                      : {wanted['sms_fallback_url']} (POST)\n"
        f"  Status callback URL               : {settings.public_url}/twilio/status (POST)"
    )
