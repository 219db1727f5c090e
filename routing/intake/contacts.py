"""What comes in: the typed, validated contacts each channel hands the intake, and what the
intake did with one (`Received`). Webhooks parse Twilio's forms into these; routing never sees a
form."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TextMessage:
    """An SMS, MMS or WhatsApp message as Twilio delivered it (already validated)."""

    sid: str
    sender: str  # Twilio's From: "+4477…" or "whatsapp:+4477…"
    body: str
    media_types: tuple[str, ...] = field(default_factory=tuple)
    media_urls: tuple[str, ...] = field(default_factory=tuple)  # kept encrypted, for staff

    @property
    def channel(self) -> str:
        return "whatsapp" if self.sender.startswith("whatsapp:") else "sms"

    @property
    def kind(self) -> str:
        return "message"


@dataclass(frozen=True)
class VoiceCall:
    """A call to the hotline number (already validated)."""

    sid: str
    sender: str  # Twilio's From: "+4477…", "anonymous", "client:…"

    @property
    def channel(self) -> str:
        return "voice"

    @property
    def kind(self) -> str:
        return "call"


@dataclass(frozen=True)
class WebMessage:
    """A message written on the secure web form (already validated by the web edge).

    `sid`: our own id for it (`WB…`, unique: a repeated submission is not a thing, but the
    store is the same); `sender`: the conversation's key, `web:<random>` (routing.identity).
    """

    sid: str
    sender: str
    body: str
    media_types: tuple[str, ...] = field(default_factory=tuple)
    media_urls: tuple[str, ...] = field(default_factory=tuple)

    @property
    def channel(self) -> str:
        return "web"

    @property
    def kind(self) -> str:
        return "message"


Contact = TextMessage | VoiceCall | WebMessage


@dataclass(frozen=True)
class Received:
    """What the intake did. `row_id` None: a repeated delivery, nothing done again."""

    row_id: int | None
    incident_id: int | None = None
    opened: bool = False
    blocked: bool = False
    auto_reply: str | None = None  # what the webhook answers with (TwiML <Message>)
    to_thread: bool = False  # stored only: thread it once the answer is out
