"""The web channel inside the engine: what a conversation with no phone behind it needs.

A web form conversation (routing.webform) is a person whose address is `web:<random>`
(routing.identity): nothing can be texted or called there. Staff see the defender's own
"how to reach you safely" line (masked like a number where it holds one) in `hotline
incident`, never in a page; a staff reply is posted to the conversation, where the defender
reads it with their receipt.
"""

from __future__ import annotations

import logging

from cryptography.fernet import InvalidToken
from sqlalchemy import delete
from sqlmodel import Session, select

from routing.datakeys import destroy, seal, unseal
from routing.display import clean_text
from routing.identity import key_of, person_hashes
from routing.masking import mask_numbers_in
from routing.runtime import Crypto
from routing.tables import Incident, Message, WebReceipt
from routing.uow import UnitOfWork

log = logging.getLogger(__name__)
POSTED = "posted"  # the status of a reply waiting on the receipt page: nothing to send


def contact_line(session: Session, vault: Crypto, incident: Incident, reveal: bool) -> str | None:
    """A web defender's own "how to reach you safely" line (`Signal +44*****789`: numbers in
    it masked unless `reveal`), or None. Never in a page: an SMS passes through carriers; the
    operator's `hotline incident` shows it."""
    address = unseal(vault, incident, "defender")
    if address is None:
        return None
    receipt = session.exec(
        select(WebReceipt)
        .where(WebReceipt.person_hash.in_(person_hashes(vault, key_of(address))))
        .order_by(WebReceipt.id)
        .limit(1)
    ).first()
    try:
        contact = unseal(vault, receipt, "contact") if receipt else None
    except InvalidToken:  # made under a key no longer configured (see hotline.crypto)
        contact = None
    if not contact:
        return None
    contact = clean_text(contact, one_line=True)
    return contact if reveal else mask_numbers_in(contact)


def post_reply(uow: UnitOfWork, incident: Incident, text: str, staff_id: str) -> Message:
    """Put a staff reply on the incident's web conversation. Nothing is sent anywhere: the
    defender reads it on their receipt page (which shows "Hotline", never who wrote it)."""
    rt, now = uow.rt, uow.rt.clock()
    address = unseal(rt.vault, incident, "defender")
    message = Message(
        incident_id=incident.id,
        direction="out",
        channel="web",
        purpose="reply",
        staff_id=staff_id,
        address_hash=rt.vault.lookup_hash(address),
        status=POSTED,
        created_at=now,
        updated_at=now,
        key_id=incident.key_id,
    )
    seal(uow.session, rt.vault, message, address=address, body=text)
    uow.session.add(message)
    return message


def forget_receipts(session: Session, vault: Crypto, defender_hash: str) -> int:
    """Erase the receipts of a web conversation whose incident is being purged (retention),
    with their data keys: its receipt then opens nothing, like any wrong receipt. Returns how
    many were erased."""
    keys = session.exec(
        select(WebReceipt.key_id).where(WebReceipt.person_hash == defender_hash)
    ).all()
    erased = session.exec(delete(WebReceipt).where(WebReceipt.person_hash == defender_hash))
    destroy(session, vault, keys)
    return erased.rowcount
