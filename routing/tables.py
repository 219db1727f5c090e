"""Database tables. The database is the source of truth; Redis only carries jobs.

Personal data (numbers, bodies, transcripts, recording references) is stored only encrypted
(`*_enc`, see hotline.crypto) and looked up by keyed hash (`*_hash`). Everything else here is
safe to read in an incident review: ids, statuses, timings, staff ids.

One module over 300 lines on purpose: the whole schema in one place, as a migration is
written against it and a reviewer reads it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, Index, TypeDecorator, UniqueConstraint, event, text
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):  # noqa: ANN001
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use datetime.now(UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):  # noqa: ANN001
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _when(*, index: bool = False, nullable: bool = True):  # noqa: ANN202
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class Incident(SQLModel, table=True):
    """One defender's emergency: `open` -> `acknowledged` -> `resolved`."""

    # at most one unresolved incident per defender: two messages racing in both join it
    __table_args__ = (
        Index(
            "ux_incident_unresolved_defender",
            "defender_hash",
            unique=True,
            sqlite_where=text("status != 'resolved'"),
            postgresql_where=text("status != 'resolved'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    status: str = Field(default="open", index=True)
    channel: str  # the channel that opened it: sms | whatsapp | voice | web
    language: str
    # the person (routing.identity): a keyed hash of "+E164", or of "unidentified:<sid>"
    defender_hash: str = Field(index=True)
    # where replies go: the address the person last used, e.g. "whatsapp:+4477…"
    defender_enc: str | None = None
    key_id: str | None = None  # its data key (routing.datakeys): purged, nothing of it opens
    # indexed: the flood watch counts the incidents opened in the last minutes at every open
    opened_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    first_paged_at: datetime | None = _when()
    acknowledged_at: datetime | None = _when()
    acknowledged_by: str | None = None
    resolved_at: datetime | None = _when(index=True)
    resolved_by: str | None = None
    # The escalation cursor: the next step of the chain and when it is due. None: nothing due.
    next_step: int | None = None
    next_step_at: datetime | None = _when(index=True)
    last_inbound_at: datetime | None = _when()
    silent: bool = False
    purged_at: datetime | None = _when()


class Event(SQLModel, table=True):
    """Append-only audit trail: incident state changes and configuration reloads."""

    # the flood watch and the purge look events up by kind and time, the log grows fastest
    __table_args__ = (Index("ix_event_kind_at", "kind", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int | None = Field(default=None, foreign_key="incident.id", index=True)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    kind: str  # opened, paged, acknowledged, passed, resolved, relayed, rota_reloaded, ...
    actor: str  # a staff id, "defender", "system"
    detail: str = ""  # never personal data


class AppendOnlyError(RuntimeError):
    """Something tried to change or delete an audit event."""


@event.listens_for(Event, "before_update")
@event.listens_for(Event, "before_delete")
def _events_are_append_only(_mapper, _connection, target: Event) -> None:  # noqa: ANN001
    # the audit trail is evidence of who did what: no code path may rewrite it (the purge's
    # rounding of an erased incident's times to the minute goes by statement, on purpose:
    # routing.retention)
    raise AppendOnlyError(f"event {target.id} is append-only")


# who resolved an incident whose defender was quiet for max_open_days (routing.agedout): the
# purge erases it at once
AGED_OUT = "max_open_days"
# an incident opened by a contact that reached Twilio while our server was down, found later
# by routing.backfill: its pages say so (staff may have handled it through the fallback)
ARRIVED_WHILE_DOWN = "arrived_while_down"
# a defender's message stored, answered with the auto-reply (TwiML), not yet threaded
ANSWERED = "answered"
# a defender's message stored and not yet threaded: as it came, or answered (routing.intake)
UNTHREADED = ("received", ANSWERED)


class Message(SQLModel, table=True):
    """Every SMS/WhatsApp message in or out, stored before anything else happens."""

    __table_args__ = (Index("ix_message_party", "address_hash", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int | None = Field(default=None, foreign_key="incident.id", index=True)
    direction: str  # in | out
    channel: str  # sms | whatsapp | web (the secure web form: routing.webform)
    purpose: str  # defender, command, page, relay, reply, confirm, standdown, auto_reply, alert
    sid: str | None = Field(default=None, unique=True)
    staff_id: str | None = None
    address_hash: str
    address_enc: str | None = None
    body_enc: str | None = None
    key_id: str | None = None  # the data key of its `_enc` columns (routing.datakeys)
    media_count: int = 0
    media_types: str = ""
    media_enc: str | None = None  # the media URLs of an MMS/WhatsApp message (JSON list)
    # inbound: received, answered (ANSWERED), threaded, blocked, handled; outbound: pending,
    # submitting, retrying, held (a surge digest), then Twilio's queued/sent/delivered/failed/
    # undelivered (moving only forward), or cancelled: see routing.outbox
    status: str = "received"
    error_code: int | None = None
    attempts: int = 0
    next_attempt_at: datetime | None = _when(index=True)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime | None = _when()


class Page(SQLModel, table=True):
    """One notification attempt of one staff member for one escalation step."""

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    step: int
    staff_id: str
    method: str  # sms | call
    status: str = "pending"  # mirrors its message or call: pending ... delivered | failed
    message_id: int | None = Field(default=None, foreign_key="message.id", index=True)
    call_id: int | None = Field(default=None, foreign_key="call.id", index=True)
    error_code: int | None = None
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime | None = _when()


class Call(SQLModel, table=True):
    """Every voice call in or out, and its recording."""

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int | None = Field(default=None, foreign_key="incident.id", index=True)
    direction: str  # in | out
    purpose: str  # defender, notify, bridge, screen (a staff leg that pressed 1)
    sid: str | None = Field(default=None, unique=True)
    staff_id: str | None = None
    address_hash: str
    address_enc: str | None = None
    # inbound: Twilio's call statuses; outbound: the outbox's (routing.outbox), then Twilio's
    status: str = "ringing"
    answered_by: str | None = None
    error_code: int | None = None
    attempts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    next_attempt_at: datetime | None = _when(index=True)
    recording_sid: str | None = Field(default=None, unique=True)
    recording_enc: str | None = None
    transcript_enc: str | None = None
    key_id: str | None = None  # the data key of its `_enc` columns (routing.datakeys)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime | None = _when()


class Acknowledgement(SQLModel, table=True):
    """Who took an incident. One row per incident: the primary key decides ack races."""

    incident_id: int = Field(foreign_key="incident.id", primary_key=True)
    staff_id: str
    via: str  # ack, reply, call, voice
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class StaffState(SQLModel, table=True):
    """What we learn about a staff member at run time: opt-out, error-reply throttle."""

    staff_id: str = Field(primary_key=True)
    opted_out: bool = False
    opted_out_at: datetime | None = _when()
    error_window_start: datetime | None = _when()
    error_replies: int = 0
    # random, renewed to revoke their calendar feed's URL (webhooks.feeds); "" until first
    # renewed. Useless without the secret key: the URL's token is an HMAC under it.
    feed_salt: str = Field(default="", sa_column_kwargs={"server_default": ""})


class Block(SQLModel, table=True):
    """A blocked sender, by keyed hash only, until `expires_at`."""

    __table_args__ = (UniqueConstraint("address_hash"),)

    id: int | None = Field(default=None, primary_key=True)
    address_hash: str
    created_by: str
    incident_id: int | None = None
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class TwilioDeletion(SQLModel, table=True):
    """A message or recording to delete on Twilio's side once its data was purged here.

    Written in the purge's own transaction, so a deletion Twilio did not confirm (outage,
    worker killed) is retried by the next purge run: `done_at` stays None until it is gone.
    """

    __table_args__ = (UniqueConstraint("kind", "sid"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str  # message | recording
    sid: str
    incident_id: int | None = None
    attempts: int = 0
    error_code: int | None = None
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    claimed_at: datetime | None = _when()
    done_at: datetime | None = _when(index=True)


class RotaVersion(SQLModel, table=True):
    """A rota text that validated, encrypted (it holds staff numbers)."""

    sha256: str = Field(primary_key=True)
    text_enc: str
    key: str | None = None
    loaded_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class DataKey(SQLModel, table=True):
    """A data key, wrapped under the master key (hotline.crypto): deleting it is what erases
    every copy of what it sealed (routing.datakeys)."""

    __tablename__ = "data_key"

    id: str = Field(primary_key=True)
    wrapped: str
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class KeyCheck(SQLModel, table=True):
    """Which master key the data is under: an HMAC of a fixed text under a key derived from it
    (hotline.keycheck), so a start with another key stops before it writes anything."""

    __tablename__ = "key_check"

    id: int = Field(default=1, primary_key=True)
    value: str
    set_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class WorkerHeartbeat(SQLModel, table=True):
    """Each worker's sweeper says it is alive here; `/healthz` reads it."""

    name: str = Field(primary_key=True)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class WebReceipt(SQLModel, table=True):
    """A web form conversation (routing.webform): the receipt the defender keeps, and who it is.

    The receipt itself is never stored: only a slow keyed hash of it (hotline.crypto), made
    under the key current when it was issued. `person_enc` is the conversation's identity key
    (`web:<random>`, routing.identity), `person_hash` its keyed hash (what its incidents'
    `defender_hash` holds), `contact_enc` the defender's own "how to reach you safely" line;
    retention erases them with the conversation's incidents.
    """

    __table_args__ = (UniqueConstraint("receipt_hash"),)

    id: int | None = Field(default=None, primary_key=True)
    receipt_hash: str
    person_hash: str = Field(index=True)
    person_enc: str | None = None
    contact_enc: str | None = None
    key_id: str | None = None  # the data key of its `_enc` columns (routing.datakeys)
    # which master key `receipt_hash` is under (the start of its check value): `hotline
    # rekey` cannot rehash a receipt, and says how many still need an old key
    made_under: str | None = None
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class ShiftReminder(SQLModel, table=True):
    """An SMS planned to a staff member about one shift (routing.reminders).

    `kind` "reminder": sent `reminders.before` ahead of the shift; "change": the rota moved
    this person's next shift, told once; "cancel": their next shift was taken off and none
    replaces it. The key (kind, staff, rotation, shift start) makes each one unique: however
    many workers plan and however often, a shift is reminded of once.
    """

    __tablename__ = "shift_reminder"
    __table_args__ = (
        UniqueConstraint(
            "kind", "staff_id", "rotation", "shift_start", name="uq_shift_reminder_key"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str  # reminder | change | cancel
    staff_id: str
    rotation: str
    shift_start: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    shift_end: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    handover: str | None = None  # staff id of who holds the rotation before
    due_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    # planned -> sent | skipped (remind: false, STOP) | cancelled (the shift went away)
    # | expired (the shift ended first) | folded (a change notice said it already)
    status: str = Field(default="planned", index=True)
    message_id: int | None = Field(default=None, foreign_key="message.id")
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime | None = _when()


class ReminderPlan(SQLModel, table=True):
    """How far ahead reminders are planned, and for which rota: one row (id 1).

    A shift starting before `planned_to` that planning has not seen before is one the rota
    changed, and its person is told; one beyond it merely came into view.
    """

    __tablename__ = "reminder_plan"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    planned_to: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    rota_fingerprint: str
    planned_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class Checkin(SQLModel, table=True):
    """A check-in (routing.checkins): the incident's defender must get in touch by `due_at`.

    `every_s` set: a standing check-in, each contact moves `due_at` to that many seconds after
    it. Ends `kept` (a one-off met in time), `missed`, `off`, `replaced` (a new CHECKIN) or
    `erased` (retention). At most one is active per incident.
    """

    __table_args__ = (
        Index(
            "ux_checkin_active_incident",
            "incident_id",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    status: str = Field(default="active", index=True)
    set_by: str  # a staff id
    every_s: int | None = None
    notify: bool = False  # a one-line note to `set_by` at each contact
    due_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    ended_at: datetime | None = _when()


class StaffInvite(SQLModel, table=True):
    """A one-time link that lets one staff member register a passkey (routing.access)."""

    __tablename__ = "staff_invite"

    token_hash: str = Field(primary_key=True)  # SHA-256 of the link's token: the link is not kept
    staff_id: str = Field(index=True)
    created_by: str  # a staff id, or "operator" (the CLI)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    used_at: datetime | None = _when()


class Passkey(SQLModel, table=True):
    """A staff member's registered WebAuthn credential: the only way into the console."""

    id: int | None = Field(default=None, primary_key=True)
    staff_id: str = Field(index=True)
    credential_id: str = Field(unique=True)  # base64url, as the browser names it
    public_key: str  # base64url of the COSE public key
    sign_count: int = 0
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    last_used_at: datetime | None = _when()


class ConsoleSession(SQLModel, table=True):
    """A signed-in browser. The cookie holds a random token; only its SHA-256 is kept here, so
    a copy of the database opens no session. Deleted on sign-out, revoke and expiry."""

    __tablename__ = "console_session"

    token_hash: str = Field(primary_key=True)
    staff_id: str = Field(index=True)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    last_seen_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    verified_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class ConsoleChallenge(SQLModel, table=True):
    """A WebAuthn challenge handed to a browser, used once (routing.access)."""

    __tablename__ = "console_challenge"

    id: str = Field(primary_key=True)  # random, carried in the page's form
    purpose: str  # enrol | signin | verify
    staff_id: str | None = None  # enrol: who is enrolling; verify: who is signed in
    challenge: str  # base64url
    detail: str = ""  # enrol: the invite's token hash
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class Note(SQLModel, table=True):
    """An internal note on an incident, written in the console and never sent to anyone."""

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    staff_id: str
    body_enc: str | None = None  # sealed under the incident's data key
    key_id: str | None = None
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
