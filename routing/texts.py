"""Everything the hotline says by SMS: pages, confirmations, auto-replies.

Pages aim for one SMS segment: 160 characters of GSM-7, or 70 when any character needs
UCS-2 (the masking bullets do). The defender's words are what gets shortened, never the
incident number or the commands.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from routing.display import clean_text

GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€"
)
CHANNEL_LABEL = {"sms": "SMS", "whatsapp": "WhatsApp", "voice": "Call", "web": "Web"}

HELP = (
    "Hotline: ACK 17 take it | R17 text reply | CALL 17 | PASS 17 next level | "
    "RESOLVE 17 | CHECKIN 17 2h | STATUS | HELP"
)

AUTO_REPLY = {
    "en": "Your message reached the hotline. A person will answer you soon.",
    "fr": "Votre message est bien arrivé. Une personne vous répondra très vite.",
    "es": "Su mensaje llegó a la línea de emergencia. Una persona le responderá pronto.",
    "ru": "Ваше сообщение получено. Человек скоро вам ответит.",
    "ar": "وصلت رسالتك إلى الخط الساخن. سيرد عليك شخص قريبًا.",
    "pt": "A sua mensagem chegou. Uma pessoa vai responder em breve.",
    "tr": "Mesajınız ulaştı. Bir kişi yakında size cevap verecek.",
    "fa": "پیام شما دریافت شد. به زودی یک نفر پاسخ می‌دهد.",
}


def segment_limit(text: str) -> int:
    """Characters that fit one SMS segment for this text's encoding."""
    return 160 if all(ch in GSM7 for ch in text) else 70


def fit_one_segment(head: str, words: str, tail: str) -> str:
    """`head + "words" + tail`, with `words` shortened (…) so the whole fits one segment
    where possible; head and tail are never cut."""
    if not words:
        return f"{head} {tail}".strip()
    full = f'{head} "{words}" {tail}'
    limit = segment_limit(full)
    if len(full) <= limit:
        return full
    room = limit - len(head) - len(tail) - 4 - 1  # quotes, spaces, ellipsis
    if room < 8:  # no useful room for words: keep the segment for what staff must know
        return f"{head} {tail}"
    return f'{head} "{words[:room].rstrip()}…" {tail}'


def page_text(
    number: int,
    channel: str,
    sender: str,
    words: str,
    *,
    voicemail: bool = False,
    fallback: bool = False,
    no_sms: bool = False,
) -> str:
    """A page. `no_sms`: the defender texted a carrier opt-out word, so SMS no longer reaches
    them: staff are told to call instead of offered a reply."""
    words = clean_text(words, one_line=True)  # no control or bidi characters reach a pager
    label = "Voicemail" if voicemail else CHANNEL_LABEL.get(channel, channel)
    prefix = "NOBODY ACKED " if fallback else ""
    head = f"{prefix}#{number} {label} {sender}:"
    tail = f"ACK {number} | R{number} text | PASS {number}"
    if no_sms:
        tail = f"Carrier opted them out of SMS: CALL {number} | ACK {number} | PASS {number}"
    return fit_one_segment(head, " ".join(words.split()), tail)


def relay_text(number: int, sender: str, body: str) -> str:
    body = clean_text(body)  # no control or bidi characters reach a pager
    return f"#{number} {sender}: {body}\n(R{number} text to answer)"


def auto_reply(language: str) -> str:
    return AUTO_REPLY.get(language, AUTO_REPLY["en"])


def local_time(at: datetime, now: datetime, zone: tzinfo) -> str:
    """`at` as staff read it, in the rota's zone: "18:00 GMT today", "09:00 IST tomorrow",
    "18:00 GMT Sun 25 Oct"; seconds only when they are not zero (short check-ins)."""
    local, today = at.astimezone(zone), now.astimezone(zone).date()
    clock = f"{local:%H:%M:%S}" if local.second else f"{local:%H:%M}"
    days = (local.date() - today).days
    day = {0: "today", 1: "tomorrow", -1: "yesterday"}.get(
        days, f"{local:%a} {local.day} {local:%b}"
    )
    return f"{clock} {local:%Z} {day}"


def alarm_text(
    kind: str,
    number: int,
    channel: str,
    sender: str,
    *,
    words: str = "",
    last_contact: str = "",
    fallback: bool = False,
) -> str:
    """A check-in alarm page: `MISSED CHECK-IN #17` with the time of the last contact, or
    `DURESS #17` with the defender's words. No R17 offered: a text back may be read by
    whoever holds the defender's phone. The sender is dropped before the segment is split."""
    prefix = "NOBODY ACKED " if fallback else ""
    label = CHANNEL_LABEL.get(channel, channel)
    tail = f"ACK {number} | PASS {number}"
    if kind == "duress":
        words = " ".join(clean_text(words, one_line=True).split())
        head = f"{prefix}DURESS #{number} {label} {sender}:"
        text = fit_one_segment(head, words, tail)
        if len(text) > segment_limit(text):
            text = fit_one_segment(f"{prefix}DURESS #{number} {label}:", words, tail)
        return text
    seen = f"last contact {last_contact}" if last_contact else "no contact on record"
    for head in (
        f"{prefix}MISSED CHECK-IN #{number} {label} {sender}:",
        f"{prefix}MISSED CHECK-IN #{number}:",
    ):
        text = f"{head} {seen}. {tail}"
        if len(text) <= segment_limit(text):
            break
    return text
