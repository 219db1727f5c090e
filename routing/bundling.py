"""Bundling: in a surge, a staff member gets a few pages a minute and then one digest.

A crackdown can bring hundreds of incidents in minutes. Paging every one to the same phone
would bury the first ones and make the phone useless. After PAGE_BURST individual pages within
BUNDLE_WINDOW for incidents still open, further pages to that person join one held digest
message ("12 more new incidents: #40 #41 …"), sent DIGEST_DELAY after it was started.
Escalation of each incident goes on unchanged: a bundled page counts as one that reached its
person.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, select

from oncall import Staff
from routing import outbox
from routing.datakeys import seal
from routing.display import clean_text
from routing.history import first_words_of, gist
from routing.tables import Incident, Message, Page
from routing.uow import UnitOfWork

PAGE_BURST = 5
BUNDLE_WINDOW = timedelta(seconds=60)
DIGEST_DELAY = timedelta(seconds=10)
LISTED = 12  # incident numbers named in one digest; the rest are counted
NEWEST = 3  # incidents whose first words a digest quotes


def recent_pages(session: Session, staff_id: str, now: datetime) -> int:
    """The individual pages this person got in the window for incidents still open (pages
    already taken or closed do not weigh on the phone). From PAGE_BURST on, pages bundle."""
    return session.exec(
        select(func.count(Message.id))
        .join(Incident, Incident.id == Message.incident_id)
        .where(
            Message.purpose == "page",
            Message.staff_id == staff_id,
            Message.created_at > now - BUNDLE_WINDOW,
            Incident.status == "open",
        )
    ).one()


class Burst:
    """The people one batch of escalation steps pages (their rows locked): who SMS cannot
    reach, how many pages of their own each has had in the surge window, and so whether the
    next one folds into their digest (`folds`: PAGE_BURST reached), and the digests the batch
    added to (rewritten once, after the batch)."""

    def __init__(self, unreachable_by_sms: set[str]):
        self.unreachable_by_sms = unreachable_by_sms
        self.digests: set[int] = set()
        self._recent: dict[str, int] = {}

    def folds(self, session: Session, staff_id: str, now: datetime) -> bool:
        """True when `staff_id`'s next page joins their digest instead of going out alone."""
        if staff_id not in self._recent:
            self._recent[staff_id] = recent_pages(session, staff_id, now)
        return self._recent[staff_id] >= PAGE_BURST

    def paged(self, staff_id: str) -> None:
        """Count a page of their own that `staff_id` has just been sent."""
        self._recent[staff_id] = self._recent.get(staff_id, 0) + 1


def bundle_page(uow: UnitOfWork, person: Staff, incident_id: int, step: int, now: datetime) -> Page:
    """Add the incident to the person's held digest, starting one if none is held. `now` is
    the step's own instant, so the page row tells the step's time like the others. The
    digest's text is the caller's to write (`rewrite_digest`, once for a batch of steps)."""
    session = uow.session
    digest = session.exec(
        select(Message)
        .where(Message.purpose == "digest", Message.staff_id == person.id, Message.status == "held")
        .with_for_update()
    ).first()
    if digest is None:
        digest = outbox.add_message(
            uow,
            to=person.phone,
            body="",
            purpose="digest",
            staff_id=person.id,
            held_until=now + DIGEST_DELAY,
        )
    page = Page(
        incident_id=incident_id,
        step=step,
        staff_id=person.id,
        method="sms",
        message_id=digest.id,
        status="bundled",
        created_at=now,
    )
    session.add(page)
    session.flush()
    return page


def rewrite_digest(uow: UnitOfWork, digest: Message, now: datetime) -> None:
    """Write the digest's text from the incidents bundled into it."""
    session, rt = uow.session, uow.rt
    # Steps paging this person wait for this transaction (routing.staffstate.lock_staff): two
    # queries, the incidents in the digest (numbers only, at most a few hundred while it is
    # held) and the first words of the newest few.
    bundled = sorted(
        session.exec(select(Page.incident_id).where(Page.message_id == digest.id).distinct()).all()
    )
    newest = bundled[::-1][:NEWEST]
    said = first_words_of(rt, session, newest)
    words = [(n, gist(said.get(n, ""))) for n in newest]
    seal(session, rt.vault, digest, body=digest_text(bundled[:LISTED], len(bundled), words))
    digest.updated_at = now


def digest_text(named: list[int], count: int, newest: Sequence[tuple[int, str]] = ()) -> str:
    """The digest SMS: `count` incidents, the first of them `named`, and the first words of
    the `newest` few, so the phone shows what the flood is about without opening anything."""
    listed = " ".join(f"#{n}" for n in named)
    more = f" +{count - len(named)} more" if count > len(named) else ""
    said = " ".join(f'#{n} "{clean_text(words, one_line=True)}"' for n, words in newest if words)
    newest_part = f" Newest: {said}." if said else ""
    return (
        f"Hotline surge: {count} more new incident(s) for you: {listed}{more}."
        f"{newest_part} STATUS NEW lists the newest; ACK n takes one."
    )
