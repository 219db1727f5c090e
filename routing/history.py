"""What a defender said, as staff are shown it: the first words of an incident."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, select

from routing.datakeys import unseal, where
from routing.display import shorten
from routing.runtime import Runtime
from routing.tables import Call, Message


def first_words(rt: Runtime, session: Session, incident_id: int) -> str:
    """The incident's first message body (decrypted), or "" when there is none."""
    return first_words_of(rt, session, [incident_id]).get(incident_id, "")


def first_words_of(rt: Runtime, session: Session, incident_ids: list[int]) -> dict[int, str]:
    """The first message body (decrypted) of each of several incidents, in one query:
    {incident id: words}; incidents without a message are left out."""
    if not incident_ids:
        return {}
    firsts = (
        select(func.min(Message.id))
        .where(Message.incident_id.in_(incident_ids), Message.direction == "in")
        .group_by(Message.incident_id)
    )
    rows = session.exec(
        select(Message.incident_id, Message.key_id, Message.body_enc).where(Message.id.in_(firsts))
    ).all()
    return {
        incident_id: (rt.vault.open(key_id, where(Message, "body"), body) or "") if body else ""
        for incident_id, key_id, body in rows
    }


def voicemail_transcript(rt: Runtime, session: Session, incident_id: int) -> str:
    """The incident's latest voicemail transcript (decrypted), or ""."""
    call = session.exec(
        select(Call)
        .where(Call.incident_id == incident_id, Call.transcript_enc.is_not(None))
        .order_by(Call.id.desc())
        .limit(1)
    ).first()
    return (unseal(rt.vault, call, "transcript") or "") if call else ""


def gist(words: str, limit: int = 40) -> str:
    """`words` on one line, cut to `limit` characters for a list in one SMS."""
    return shorten(" ".join(words.split()), limit)
