"""Staff as the live rota knows them: how to reach someone and what to call them."""

from __future__ import annotations

import logging

from routing.runtime import Runtime

log = logging.getLogger(__name__)


def staff_phone(rt: Runtime, staff_id: str | None) -> str | None:
    """The staff member's phone, or None when they are not in the rota (or it is unavailable)."""
    try:
        person = rt.rota.current().staff.get(staff_id or "")
    except Exception:
        log.exception("rota unavailable: no phone for %s", staff_id)
        return None
    return person.phone if person else None


def staff_name(rt: Runtime, staff_id: str | None) -> str:
    """A name to show; the id when the rota is unavailable."""
    try:
        person = rt.rota.current().staff.get(staff_id or "")
    except Exception:  # a name is nice to have; the id does when the rota is unavailable
        person = None
    return person.name if person else (staff_id or "someone")
