"""Who wrote or called: one person per phone number, whatever the channel.

An SMS from `+4477…`, a WhatsApp message from `whatsapp:+4477…` and a call from `+4477…` are
one person: their incidents thread together, and BLOCK and SILENT apply to all three. A sender
without a usable number (a withheld caller, `client:…`, `sip:…`, an alphanumeric sender) is an
unidentified contact of its own: each such contact is its own person, never one shared
identity that would thread strangers together.

A person is known to the database only by keyed hashes of their identity key (hotline's
Vault). Incidents opened before identities were per person hashed the WhatsApp form of the
address; lookups try that form too, under every configured key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from oncall.phones import e164
from routing.runtime import Crypto
from routing.tables import Block, Incident

# What Twilio puts in From for anonymous, restricted, blocked or unknown callers.
WITHHELD = frozenset({"+266696687", "+7378742833", "+2562533", "+8656696", "+86282452253"})
WHATSAPP = "whatsapp:"
# A web form conversation (routing.webform): no phone behind it, so its key is its own, unique to
# the receipt it was given; nothing else ever threads with it.
WEB = "web:"


@dataclass(frozen=True)
class Party:
    """A sender as routing sees it.

    `key`: the identity (`+E164`, `web:<random>`, or `unidentified:<sid>`); `address`: where
    replies to them go (`+E164`, `whatsapp:+E164`, `web:<random>`: their receipt page), None
    when nothing can reach them; `channel`: the channel this contact came by.
    """

    key: str
    address: str | None
    channel: str

    @property
    def identified(self) -> bool:
        return not self.key.startswith("unidentified:")


def phone_number(raw: str) -> str | None:
    """E.164 of a sender Twilio gave us, or None when it is no usable phone number."""
    # international format only (no region: a national number is none), any possible number
    number = e164(raw.strip().removeprefix(WHATSAPP), possible=True)
    return None if number in WITHHELD else number


def party(raw_from: str, channel: str, contact_sid: str) -> Party:
    """The person behind Twilio's `From` for a contact by `channel` (sms, whatsapp, voice),
    or behind a web form conversation's key (`web:<random>`, channel web)."""
    if is_web(raw_from):
        return Party(raw_from, raw_from, "web")
    number = phone_number(raw_from)
    if number is None:
        return Party(f"unidentified:{contact_sid}", None, channel)
    address = f"{WHATSAPP}{number}" if channel == "whatsapp" else number
    return Party(number, address, channel)


def is_phone_number(key: str) -> bool:
    """True for a person's key that is their phone number (`party`: E.164)."""
    return key.startswith("+")


def is_web(address: str | None) -> bool:
    """True for the address of a web form conversation: it has no phone to send to."""
    return bool(address) and address.startswith(WEB)


def key_of(address: str) -> str:
    """The identity key of a stored reply address (`whatsapp:+44…` -> `+44…`)."""
    return address.removeprefix(WHATSAPP)


def address_forms(address: str) -> list[str]:
    """The forms one phone sender can be stored under: `+4477…` and `whatsapp:+4477…` (the
    given form first). Other keys (web, unidentified) have only themselves."""
    if address.startswith(("unidentified:", WEB)):
        return [address]
    bare = key_of(address)
    return list(dict.fromkeys([address, bare, f"{WHATSAPP}{bare}"]))


def person_hashes(vault: Crypto, key: str) -> list[str]:
    """Every keyed hash one person may be stored under: their key and, for incidents of the
    first release, its WhatsApp form, each under every configured secret key."""
    return [h for form in address_forms(key) for h in vault.lookup_hashes(form)]


def is_blocked(session: Session, hashes: list[str], now: datetime) -> bool:
    return (
        session.exec(
            select(Block.id).where(Block.address_hash.in_(hashes), Block.expires_at > now)
        ).first()
        is not None
    )


def was_silenced(session: Session, hashes: list[str]) -> bool:
    """True when an incident of this person still on record was put in silent mode.

    Silence carries over to the person's next incident and every channel: whoever asked for
    it is still at the same risk. It lasts as long as the records do: purged incidents no
    longer match any hash.
    """
    return (
        session.exec(
            select(Incident.id).where(Incident.defender_hash.in_(hashes), Incident.silent)
        ).first()
        is not None
    )


def has_unresolved(session: Session, hashes: list[str]) -> bool:
    """Whether the person has an unresolved incident (a read: nothing is locked)."""
    return session.exec(select(Incident.id).where(*_unresolved(hashes))).first() is not None


def unresolved_incident(session: Session, hashes: list[str]) -> Incident | None:
    """The person's unresolved incident, locked, or None. The oldest, where release 0.1 left
    a person two (one opened by SMS, one by WhatsApp): every channel then joins that one."""
    return session.exec(
        select(Incident).where(*_unresolved(hashes)).order_by(Incident.id).with_for_update()
    ).first()


def _unresolved(hashes: list[str]) -> tuple:
    """The conditions on an incident of the person under `hashes` that is not resolved."""
    return (Incident.defender_hash.in_(hashes), Incident.status != "resolved")
