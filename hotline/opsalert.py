"""What the worker's operational threads (the fallback flow's publisher, the nightly backup)
record in the audit trail, and the coordinators' one text per run of failures."""

from __future__ import annotations

from sqlmodel import Session, select

from routing import outbox
from routing.runtime import Runtime
from routing.tables import Event
from routing.uow import unit_of_work


def newest(rt: Runtime, kinds: tuple[str, ...]) -> str | None:
    """The kind of the newest audit event of `kinds`, or None."""
    with Session(rt.engine) as session:
        return session.exec(
            select(Event.kind).where(Event.kind.in_(kinds)).order_by(Event.id.desc()).limit(1)
        ).first()


def record(rt: Runtime, kind: str, detail: str, tell: str | None = None) -> None:
    """An audit event of `kind`; with `tell`, also text it to the coordinators (else the
    fallback contacts), in the same transaction."""
    with unit_of_work(rt) as uow:
        uow.session.add(Event(at=rt.clock(), kind=kind, actor="system", detail=detail))
        if tell:
            rota = rt.rota.current()
            outbox.alert(uow, rota, rota.coordinators_or_fallback(), tell)
