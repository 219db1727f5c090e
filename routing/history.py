"""What a defender said, as staff are shown it: the first words of an incident."""

from __future__ import annotations

from sqlmodel import Session, select

from routing.runtime import Runtime
from routing.tables import Call, Message


def first_words(rt: Runtime, session: Session, incident_id: int) -> str:
    """The incident's first message body (decrypted), or "" when there is none."""
    body = session.exec(
        select(Message.body_enc).where(Message.incident_id == incident_id,
                                       Message.direction == "in")
        .order_by(Message.id).limit(1)
    ).first()
    return (rt.vault.decrypt(body) or "") if body else ""


def voicemail_transcript(rt: Runtime, session: Session, incident_id: int) -> str:
    """The incident's latest voicemail transcript (decrypted), or ""."""
    token = session.exec(
        select(Call.transcript_enc).where(Call.incident_id == incident_id,
                                          Call.transcript_enc.is_not(None))
        .order_by(Call.id.desc()).limit(1)
    ).first()
    return (rt.vault.decrypt(token) or "") if token else ""


def gist(words: str, limit: int = 40) -> str:
    """`words` on one line, cut to `limit` characters (…) for a list in one SMS."""
    words = " ".join(words.split())
    return words if len(words) <= limit else words[:limit - 1].rstrip() + "…"
