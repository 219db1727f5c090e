"""The secure web form's conversations: the third door of the same hotline.

A defender who cannot call or text safely writes on the form. The message goes through the
one intake (routing.intake: stored first, then threaded, then escalated exactly like an SMS)
as a `WebMessage` from a person of its own, `web:<random>`: no phone identity, so BLOCK and
SILENT apply to that conversation only. The defender gets a receipt, 16 digits shown once;
it is stored only as a slow keyed hash (hotline.crypto's `slow_hashes`). With it they come
back to read the staff replies (posted by `R17 text`, routing.webconversation) and to write more,
which joins their incident like a further SMS.

The web edge (webhooks.webform) checks the form's token, the message's length and the rate
limits before calling here; nothing here sees an IP address or a user agent.
"""

from __future__ import annotations

import logging
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from cryptography.fernet import InvalidToken
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from routing import intake
from routing.datakeys import seal, unseal
from routing.identity import WEB, person_hashes
from routing.intake import WebMessage
from routing.intake.flood import FLOOD_WINDOW, tell_fallback_once
from routing.runtime import Runtime
from routing.tables import Incident, Message, WebReceipt
from routing.uow import unit_of_work

log = logging.getLogger(__name__)
RECEIPT_DIGITS = 16
RECEIPT_KEY_MARK = 16  # characters of the key check value a receipt keeps (WebReceipt.made_under)
_NOT_DIGITS = re.compile(r"[\s\-.]")


@dataclass(frozen=True)
class Submitted:
    """A first message taken: `receipt` is shown to the defender once and kept nowhere."""

    receipt: str  # "1234 5678 9012 3456"
    incident_id: int | None


@dataclass(frozen=True)
class Line:
    """One message of a conversation as the defender sees it: `from_hotline` False is theirs.
    Never a staff name or number: the page says "Hotline"."""

    from_hotline: bool
    text: str
    at: datetime


@dataclass(frozen=True)
class Conversation:
    """A conversation found by its receipt. `person` is its key; never shown."""

    person: str
    lines: tuple[Line, ...]


def new_receipt() -> str:
    """16 random digits in groups of four (GlobaLeaks' shape: easy to copy, read and type)."""
    digits = f"{secrets.randbelow(10**RECEIPT_DIGITS):0{RECEIPT_DIGITS}d}"
    return " ".join(digits[i : i + 4] for i in range(0, RECEIPT_DIGITS, 4))


def normalise(receipt: str) -> str:
    """The digits as typed, without the spaces, dashes or dots people add, in ASCII: a receipt
    typed in Arabic-Indic (٠١٢…), Persian (۰۱۲…) or full-width (０１２…) digits is the same."""
    kept = _NOT_DIGITS.sub("", receipt or "")[:64]
    return "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() else ch for ch in kept)


def submit(rt: Runtime, body: str, contact: str | None) -> Submitted:
    """Open a web conversation with its first message: issue its receipt, then take the
    message through the one intake (stored, threaded, escalated like an SMS).

    The receipt row is committed first, so a page's contact line is there when the worker
    writes the page; a failure after it leaves a receipt that opens an empty conversation,
    and the defender sees an error, not a receipt."""
    person = WEB + secrets.token_hex(16)
    for _attempt in range(5):
        receipt = new_receipt()
        try:
            with unit_of_work(rt) as uow:
                row = WebReceipt(
                    receipt_hash=rt.vault.slow_hashes(normalise(receipt))[0],
                    person_hash=rt.vault.lookup_hash(person),
                    made_under=rt.vault.check_values()[0][:RECEIPT_KEY_MARK],
                    created_at=rt.clock(),
                )
                seal(uow.session, rt.vault, row, person=person, contact=contact or None)
                uow.session.add(row)
            break
        except IntegrityError:  # one in 10**16: draw another
            continue
    else:
        raise RuntimeError("could not issue a unique receipt")
    received = intake.take_web_message(rt, WebMessage(_sid(), person, body))
    return Submitted(receipt, received.incident_id)


def find(rt: Runtime, receipt: str) -> str | None:
    """The conversation key a receipt opens, or None for any receipt that opens nothing.

    Takes the same time whatever `receipt` is: malformed, unknown or real, its slow hashes are
    computed (under every configured key) and looked up, so timing tells a guesser nothing."""
    digits = normalise(receipt)
    hashes = rt.vault.slow_hashes(digits)
    with Session(rt.engine) as session:
        row = session.exec(select(WebReceipt).where(WebReceipt.receipt_hash.in_(hashes))).first()
    if row is None or len(digits) != RECEIPT_DIGITS or not digits.isdigit():
        return None
    try:
        return unseal(rt.vault, row, "person")
    except InvalidToken:  # its key is no longer configured: as gone as a wrong receipt
        return None


def conversation(rt: Runtime, person: str) -> Conversation:
    """The defender's messages and the hotline's replies, oldest first, across every incident
    of this conversation (a resolved one, then a new one when they wrote again)."""
    with Session(rt.engine) as session:
        incident_ids = session.exec(
            select(Incident.id).where(Incident.defender_hash.in_(person_hashes(rt.vault, person)))
        ).all()
        rows = (
            session.exec(
                select(Message)
                .where(
                    Message.incident_id.in_(incident_ids),
                    Message.channel == "web",
                    ((Message.direction == "in") & (Message.purpose == "defender"))
                    | ((Message.direction == "out") & (Message.purpose == "reply")),
                )
                .order_by(Message.id)
            ).all()
            if incident_ids
            else []
        )
    lines = tuple(
        Line(row.direction == "out", unseal(rt.vault, row, "body") or "", row.created_at)
        for row in rows
        if row.body_enc is not None
    )
    return Conversation(person, lines)


def write_more(rt: Runtime, person: str, body: str) -> intake.Received:
    """A further message on the receipt page: through the one intake, so it joins the open
    incident (relayed to whoever took it), or opens a new one after a resolve, or is kept
    and pages nobody when staff blocked this conversation."""
    return intake.take_web_message(rt, WebMessage(_sid(), person, body))


def _sid() -> str:
    return "WB" + secrets.token_hex(16)


def ceiling_reached(rt: Runtime, what: str) -> None:
    """The form's ceiling for everyone together (`what`: "submissions", "receipt look-ups")
    turned someone away: a real flood. The fallback contacts are told once in FLOOD_WINDOW.

    Every refused request of the flood comes here: once this process has seen the alarm
    raised (by itself or another), it asks the database again only after FLOOD_WINDOW."""
    now = rt.clock()
    with rt.local_lock:
        seen = rt.local.get("web_flood_seen_at")
    if seen is not None and now - seen < FLOOD_WINDOW:
        return
    with unit_of_work(rt) as uow:
        told = tell_fallback_once(
            uow,
            "web_flood",
            f"web form: the {what} ceiling was reached",
            f"Hotline web form FLOOD: the ceiling of {what} for everyone was reached; "
            "real defenders may be turned away for a minute. hotline health shows the line.",
        )
    with rt.local_lock:
        rt.local["web_flood_seen_at"] = now  # told now, or by then already
    if told:
        log.warning("web form: the %s ceiling was reached; fallback contacts told", what)
