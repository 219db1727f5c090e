"""Everything the hotline says by SMS: pages, confirmations, auto-replies.

Pages aim for one SMS segment: 160 characters of GSM-7, or 70 when any character needs UCS-2.
Everything the hotline adds (masks, cut marks) is GSM-7, so only the defender's own words can
make a page UCS-2. The defender's words are what gets shortened, never the incident number or
the commands.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from routing.display import ELLIPSIS, clean_text

GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€"
)
GSM7_EXTENSION = set("^{}\\[~]|€")  # sent as an escape and a character: two units each
# A page that can show fewer of the defender's words than this in one segment takes two: staff
# must not take an incident blind (Arabic words alone make a segment 70 characters).
WORDS_AT_LEAST = 20
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


def sms_units(text: str) -> int:
    """`text`'s length as an SMS segment counts it: GSM-7 septets (the extension characters
    `^{}\\[~]|€` take two), else UTF-16 code units (an emoji takes two)."""
    if all(ch in GSM7 for ch in text):
        return len(text) + sum(ch in GSM7_EXTENSION for ch in text)
    return len(text.encode("utf-16-le")) // 2


def segment_limit(text: str, segments: int = 1) -> int:
    """The units (sms_units) that fit `segments` SMS segments for this text's encoding (a long
    SMS spends 7 GSM-7 or 3 UCS-2 units of each segment on joining them up)."""
    gsm = all(ch in GSM7 for ch in text)
    if segments == 1:
        return 160 if gsm else 70
    return segments * (153 if gsm else 67)


def fits(text: str, segments: int = 1) -> bool:
    return sms_units(text) <= segment_limit(text, segments)


def _fitted(head: str, words: str, tail: str, segments: int) -> tuple[str, int]:
    """`head + "words" + tail` in `segments` segments, with `words` shortened as little as
    needed, and how many characters of them it shows; without them (0) when fewer than 8
    would fit: the segment is kept for what staff must know."""
    full = f'{head} "{words}" {tail}'
    if not words or fits(full, segments):
        return (full if words else f"{head} {tail}".strip()), len(words)

    def cut(n: int) -> str:
        return f'{head} "{words[:n].rstrip()}{ELLIPSIS}" {tail}'

    low, high = 0, len(words) - 1  # the most characters that fit: a binary search
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if fits(cut(middle), segments) else (low, middle - 1)
    return (cut(low), low) if low >= 8 else (f"{head} {tail}", 0)


def fit_words(head: str, words: str, tail: str, segments: int = 1) -> str:
    """`head + "words" + tail`, with `words` shortened so the whole fits `segments` segments
    where possible; head and tail are never cut."""
    return _fitted(head, words, tail, segments)[0]


def page_text(
    number: int,
    channel: str,
    sender: str,
    words: str,
    *,
    voicemail: bool = False,
    fallback: bool = False,
    no_sms: bool = False,
    late: bool = False,
) -> str:
    """A page, in one segment when that shows at least WORDS_AT_LEAST characters of the
    defender's words (or all of them), else in two. `sender` may be "" (a web form defender).
    `no_sms`: the defender texted a carrier opt-out word, so SMS no longer reaches them: staff
    are told to call instead of offered a reply. `late`: it reached Twilio while our server
    was down (found by a backfill), and someone may have handled it through the fallback."""
    words = " ".join(clean_text(words, one_line=True).split())  # no control or bidi characters
    label = "Voicemail" if voicemail else CHANNEL_LABEL.get(channel, channel)
    prefix = ("NOBODY ACKED " if fallback else "") + ("ARRIVED WHILE DOWN " if late else "")
    tail = f"ACK {number} | R{number} text | PASS {number}"
    if no_sms:
        tail = f"Carrier opted them out of SMS: CALL {number} | ACK {number} | PASS {number}"
    head = f"{prefix}#{number} {label}{' ' + sender if sender else ''}:"
    text, shown = _fitted(head, words, tail, 1)
    if shown < min(len(words), WORDS_AT_LEAST):
        text = fit_words(head, words, tail, 2)
    return text


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
        text = fit_words(head, words, tail)
        if not fits(text):
            text = fit_words(f"{prefix}DURESS #{number} {label}:", words, tail)
        return text
    seen = f"last contact {last_contact}" if last_contact else "no contact on record"
    for head in (
        f"{prefix}MISSED CHECK-IN #{number} {label} {sender}:",
        f"{prefix}MISSED CHECK-IN #{number}:",
    ):
        text = f"{head} {seen}. {tail}"
        if fits(text):
            break
    return text
