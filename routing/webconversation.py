"""The web channel inside the engine: what a conversation with no phone behind it needs.

A web form conversation (routing.webform) is a person whose address is `web:<random>`
(routing.identity): nothing can be texted or called there. Staff see the defender's own
"how to reach you safely" line instead of a number (masked like one where it holds one), and a
staff reply is posted to the conversation, where the defender reads it with their receipt.
"""

from __future__ import annotations

import logging

from cryptography.fernet import InvalidToken
from sqlalchemy import delete
from sqlmodel import Session, select

from routing.display import clean_text, shorten
from routing.identity import key_of, person_hashes
from routing.masking import mask_numbers_in, show_number
from routing.runtime import Runtime
from routing.tables import Incident, Message, WebReceipt
from routing.uow import UnitOfWork

log = logging.getLogger(__name__)
# characters of the contact line a page carries at most (routing.texts.page_text cuts it
# further when the defender's words need the room)
CONTACT_SHOWN = 40
POSTED = "posted"  # the status of a reply waiting on the receipt page: nothing to send


def contact_line(rt: Runtime, session: Session, incident: Incident) -> str:
    """How staff see a web defender in a page: their contact line (`Signal +44*****789`), or
    `no contact given`. Numbers in the line are masked unless `reveal_numbers`."""
    address = rt.vault.decrypt(incident.defender_enc)
    if address is None:
        return show_number(address, rt.settings.reveal_numbers)
    token = session.exec(
        select(WebReceipt.contact_enc)
        .where(WebReceipt.person_hash.in_(person_hashes(rt.vault, key_of(address))))
        .order_by(WebReceipt.id)
        .limit(1)
    ).first()
    try:
        contact = rt.vault.decrypt(token) if token else None
    except InvalidToken:  # made under a key no longer configured (see hotline.crypto)
        contact = None
    if not contact:
        return "no contact given"
    contact = clean_text(contact, one_line=True)
    if not rt.settings.reveal_numbers:
        contact = mask_numbers_in(contact)
    return shorten(contact, CONTACT_SHOWN)


def post_reply(uow: UnitOfWork, incident: Incident, text: str, staff_id: str) -> Message:
    """Put a staff reply on the incident's web conversation. Nothing is sent anywhere: the
    defender reads it on their receipt page (which shows "Hotline", never who wrote it)."""
    rt, now = uow.rt, uow.rt.clock()
    address = rt.vault.decrypt(incident.defender_enc)
    message = Message(
        incident_id=incident.id,
        direction="out",
        channel="web",
        purpose="reply",
        staff_id=staff_id,
        address_hash=rt.vault.lookup_hash(address),
        address_enc=incident.defender_enc,
        body_enc=rt.vault.encrypt(text),
        status=POSTED,
        created_at=now,
        updated_at=now,
    )
    uow.session.add(message)
    return message


def forget_receipts(session: Session, defender_hash: str) -> int:
    """Erase the receipts of a web conversation whose incident is being purged (retention):
    its receipt then opens nothing, like any wrong receipt. Returns how many were erased."""
    return session.exec(delete(WebReceipt).where(WebReceipt.person_hash == defender_hash)).rowcount
