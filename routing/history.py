"""What a defender said, as staff are shown it: the first words of an incident."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, select

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
        select(Message.incident_id, Message.body_enc).where(Message.id.in_(firsts))
    ).all()
    return {
        incident_id: (rt.vault.decrypt(body) or "") if body else "" for incident_id, body in rows
    }


def voicemail_transcript(rt: Runtime, session: Session, incident_id: int) -> str:
    """The incident's latest voicemail transcript (decrypted), or ""."""
    token = session.exec(
        select(Call.transcript_enc)
        .where(Call.incident_id == incident_id, Call.transcript_enc.is_not(None))
        .order_by(Call.id.desc())
        .limit(1)
    ).first()
    return (rt.vault.decrypt(token) or "") if token else ""


def gist(words: str, limit: int = 40) -> str:
    """`words` on one line, cut to `limit` characters for a list in one SMS."""
    return shorten(" ".join(words.split()), limit)
