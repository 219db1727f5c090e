"""The engine in-process: intake, escalation, outbox and staff commands with a moved clock.

These run in milliseconds and carry most of the logic; the slower tests through HTTP and real
worker processes check the wiring around them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import threading
from datetime import timedelta

import pytest
from conftest import rota_text
from engine_world import START, World
from harness import wait_until
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from hotline.workerthreads import Sweeper
from routing import groupcommit, intake
from routing.datakeys import unseal
from routing.escalation import run_step, run_steps
from routing.groupcommit import GroupCommit
from routing.handover import send_soon
from routing.incidents import acknowledge, resolve
from routing.intake import TextMessage
from routing.messages import Answer, receive_message
from routing.outbox import PRIORITY, priority_of
from routing.pool import Pool
from routing.sending import deliver
from routing.sweeper import sweep
from routing.tables import Incident, Message
from routing.texts import auto_reply

DEFENDER = "+447700900123"

CALLING_ROTA = rota_text(wait1="5m", wait2="5m", at=START).replace(
    "languages: [en, ar]}", "languages: [en, ar], notify: [sms, call]}"
)


@pytest.fixture
def calling_world(make_world):
    return make_world(CALLING_ROTA)


def test_a_message_pages_level_one_at_once(world):
    reply = world.text(DEFENDER, "police at the door")
    assert reply and "hotline" in reply.lower()
    [incident] = world.incidents()
    assert incident.status == "open" and incident.first_paged_at == world.now
    [page] = world.sms_to("amina")
    assert page.startswith(f"#{incident.id} SMS +44*****123:") and "police at the door" in page
    assert world.sms_to("chen") == []


def test_steps_are_never_early_and_run_when_due(world):
    world.text(DEFENDER, "help")
    incident = world.incidents()[0]
    due = incident.next_step_at
    assert due == world.now + timedelta(minutes=5)
    world.now = due - timedelta(milliseconds=1)
    # a job that fires early (a clock ahead, a scheduler's rounding) is turned away too
    assert run_step(world.rt, incident.id, 1) is False
    world.settle()
    assert world.sms_to("chen") == [], "level 2 paged before its step was due"
    assert world.incident(incident.id).next_step == 1
    world.now = due
    world.settle()
    assert len(world.sms_to("chen")) == 1
    assert world.incident(incident.id).next_step == 2


def test_sms_then_whatsapp_then_a_call_is_one_incident(world):
    world.text(DEFENDER, "they took my brother")
    world.text("whatsapp:" + DEFENDER, "I am hiding now")
    world.call(DEFENDER)
    [incident] = world.incidents()
    assert incident.channel == "sms"
    assert len(world.sms_to("amina")) == 1, "one round of pages, not one per channel"
    inbound = world.messages(direction="in")
    assert [m.incident_id for m in inbound] == [incident.id, incident.id]


def test_block_stops_the_person_on_every_channel(world):
    world.text(DEFENDER, "spam spam")
    amina = world.staff_phone("amina")
    world.text(amina, "BLOCK 1")
    world.text(amina, "RESOLVE 1")
    before = len(world.fake.messages)
    world.text(DEFENDER, "more spam")
    world.text("whatsapp:" + DEFENDER, "and more")
    received = world.call(DEFENDER)
    assert received.blocked and received.incident_id is None
    assert len(world.incidents()) == 1
    assert [m.status for m in world.messages(direction="in", purpose="defender")][-2:] == [
        "blocked",
        "blocked",
    ]
    assert len(world.fake.messages) == before, "a blocked person paged someone"


def test_silent_carries_over_to_a_call(world):
    world.text(DEFENDER, "please no texts back")
    amina = world.staff_phone("amina")
    world.text(amina, "SILENT 1")
    world.text(amina, "RESOLVE 1")
    world.call(DEFENDER)
    assert world.incidents()[-1].silent


def test_replies_go_out_on_the_channel_last_used(world):
    world.text(DEFENDER, "sms first")
    world.text("whatsapp:" + DEFENDER, "now whatsapp")
    world.text(world.staff_phone("amina"), "R1 we are on it")
    [reply] = [m for m in world.fake.messages if m.body == "we are on it"]
    assert reply.to == "whatsapp:" + DEFENDER
    world.text(DEFENDER, "back to sms")
    world.text(world.staff_phone("amina"), "R1 got it")
    [reply] = [m for m in world.fake.messages if m.body == "got it"]
    assert reply.to == DEFENDER


def test_withheld_callers_are_each_their_own_contact(world):
    world.call("anonymous")
    world.call("client:alice")
    world.call("+266696687")
    assert len(world.incidents()) == 3


def test_the_sweeper_threads_a_message_that_was_stored_but_not_routed(world):
    # what the fallback URL does, or a web process that died after the commit
    intake.store_only(world.rt, TextMessage(world.sid("SM"), DEFENDER, "are you there"))
    assert world.incidents() == []
    world.settle()
    [incident] = world.incidents()
    assert len(world.sms_to("amina")) == 1
    assert world.messages(direction="in")[0].incident_id == incident.id


def test_a_message_is_answered_first_and_its_auto_reply_logged_once_threaded(world):
    answer = receive_message(world.rt, TextMessage(world.sid("SM"), DEFENDER, "help"))
    assert answer.reply == auto_reply("en")  # decided from reads: this will open an incident
    [stored] = world.messages(direction="in")
    assert (stored.status, world.incidents()) == ("answered", [])
    answer.then()  # once the answer is out
    [incident] = world.incidents()
    [logged] = world.messages(direction="out", purpose="auto_reply")
    assert (logged.incident_id, logged.status) == (incident.id, "sent")
    world.settle()
    assert [m for m in world.fake.messages if m.to == DEFENDER] == [], "answered in TwiML only"
    assert len(world.sms_to("amina")) == 1


def test_an_answer_without_auto_reply_that_opens_an_incident_after_all_sends_it(world):
    world.text(DEFENDER, "help")
    answer = receive_message(world.rt, TextMessage(world.sid("SM"), DEFENDER, "still here"))
    assert answer.reply is None  # it would join the open incident
    resolve(world.rt, 1, "amina")  # resolved before the threading: it opens a new one
    answer.then()
    assert [i.id for i in world.incidents()] == [1, 2]
    world.settle()
    assert [m.body for m in world.fake.messages if m.to == DEFENDER] == [auto_reply("en")]


def test_two_answers_with_an_auto_reply_that_join_one_incident_log_both(world):
    # a person's SMS and WhatsApp message at the same instant: each answer read "no incident"
    first, second = (
        receive_message(world.rt, TextMessage(world.sid("SM"), sender, "help"))
        for sender in (DEFENDER, f"whatsapp:{DEFENDER}")
    )
    assert first.reply == second.reply == auto_reply("en")
    first.then()
    second.then()
    [incident] = world.incidents()
    logged = world.messages(direction="out", purpose="auto_reply")
    assert [(m.incident_id, m.channel, m.status) for m in logged] == [
        (incident.id, "sms", "sent"),
        (incident.id, "whatsapp", "sent"),
    ]
    world.settle()
    assert [m for m in world.fake.messages if DEFENDER in m.to] == []


def test_a_message_left_for_a_worker_is_threaded_later_and_gets_its_auto_reply(world):
    # a busy web process only stores the message and answers with no TwiML reply; the worker
    # threads it, and the auto-reply the answer could not carry goes out through the outbox
    whatsapp = f"whatsapp:{DEFENDER}"
    message = TextMessage(world.sid("SM"), whatsapp, "they took my brother")
    assert receive_message(world.rt, message, defer=True) == Answer()
    [stored] = world.messages(direction="in")
    assert (stored.status, stored.incident_id, world.incidents()) == ("received", None, [])
    assert receive_message(world.rt, message, defer=True) == Answer()  # a retry: stored once
    assert intake.thread_batch(world.rt, [("message", stored.id)]) == 1
    [incident] = world.incidents()
    assert incident.channel == "whatsapp"
    world.settle()
    [reply] = [m for m in world.fake.messages if m.to == whatsapp]
    assert reply.body == auto_reply("en") and reply.from_ == "whatsapp:+14155238886"
    [out] = world.messages(direction="out", purpose="auto_reply")
    assert out.incident_id == incident.id and out.status != "pending"
    assert len(world.sms_to("amina")) == 1
    # threading it again (the sweeper, a second worker) changes nothing
    assert intake.thread_batch(world.rt, [("message", stored.id)]) == 1
    world.settle()
    assert len([m for m in world.fake.messages if m.to == whatsapp]) == 1


def test_messages_left_for_a_worker_thread_in_one_batch_each_person_once(world):
    for sender, body in [
        (DEFENDER, "help"),
        (f"whatsapp:{DEFENDER}", "still here"),
        ("+447700900777", "arrested"),
        ("Anonymous", "no number"),
    ]:
        receive_message(world.rt, TextMessage(world.sid("SM"), sender, body), defer=True)
    stored = [("message", m.id) for m in world.messages(direction="in")]
    assert intake.thread_batch(world.rt, stored) == 4
    incidents = world.incidents()
    assert [i.channel for i in incidents] == ["sms", "sms", "sms"]
    world.settle()
    replies = [m.to for m in world.fake.messages if m.body == auto_reply("en")]
    # one per person; the withheld sender has no number to text
    assert sorted(replies) == sorted([DEFENDER, "+447700900777"])


def test_a_message_that_fails_in_a_threading_batch_is_undone_alone(world):
    bodies = ["help", "aidez-moi, la police est devant chez moi", "help me"]
    for n, body in enumerate(bodies):
        receive_message(world.rt, TextMessage(world.sid("SM"), f"+4477009004{n}", body), defer=True)
    stored = [("message", m.id) for m in world.messages(direction="in")]
    with refused(world.rt.engine, "incident", "NEW.language = 'fr'"):
        assert intake.thread_batch(world.rt, stored) == 2
    assert [m.status for m in world.messages(direction="in")] == [
        "threaded",
        "received",
        "threaded",
    ]
    world.settle()  # the sweeper threads what the batch left
    assert len(world.incidents()) == 3
    assert all(m.status == "threaded" for m in world.messages(direction="in"))


def _stored(world: World, sid: str) -> dict:
    now = world.now
    return {
        "direction": "in",
        "channel": "sms",
        "purpose": "defender",
        "sid": sid,
        "address_hash": "h",
        "status": "received",
        "created_at": now,
        "updated_at": now,
    }


def test_stores_arriving_together_commit_together_and_a_repeat_fails_alone(world):
    committed: list[list[int]] = []
    writing, hold = threading.Event(), threading.Event()

    def first_insert_waits(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        if statement.startswith("INSERT INTO message") and not writing.is_set():
            writing.set()
            hold.wait(10)  # the first writer's turn lasts until the others have queued

    event.listen(world.rt.engine, "after_cursor_execute", first_insert_waits)
    group = GroupCommit(world.rt, Message.__table__, committed.append)
    results: dict[str, object] = {}

    def insert(sid: str) -> None:
        try:
            results[sid] = group.insert(_stored(world, sid))
        except Exception as exc:
            results[sid] = exc

    def run(sids: list[str]) -> None:
        first = threading.Thread(target=insert, args=(sids[0],))
        first.start()
        wait_until(writing.is_set, what="the first insert")
        rest = [threading.Thread(target=insert, args=(sid,)) for sid in sids[1:]]
        for thread in rest:
            thread.start()
        wait_until(lambda: len(group._queue) == len(rest), what="the others queued")
        hold.set()
        for thread in [first, *rest]:
            thread.join(10)

    run([world.sid("SM") for _ in range(5)])
    assert [len(ids) for ids in committed] == [1, 4]  # one transaction for the four
    rows = {m.sid: m.id for m in world.messages()}
    assert results == rows
    committed.clear()
    writing.clear()
    hold.clear()
    again = next(iter(rows))
    run([world.sid("SM"), again, world.sid("SM"), world.sid("SM")])
    event.remove(world.rt.engine, "after_cursor_execute", first_insert_waits)
    assert isinstance(results[again], IntegrityError)
    # the batch is written row by row; its after-commit action gets the two rows stored
    assert [len(ids) for ids in committed] == [1, 2]
    stored = {m.sid: m.id for m in world.messages()}
    assert len(stored) == 8  # the repeat is not stored twice; the other three are
    assert all(results[sid] == row_id for sid, row_id in stored.items() if sid != again)


@pytest.mark.both_databases
def test_a_batch_with_a_repeat_at_its_end_stores_the_others_once(world):
    # PostgreSQL runs the batch's INSERT in autocommit: it is atomic only as one statement.
    # Cut into pages, the rows before the repeat would commit, and row by row they would
    # then count as repeats of themselves
    stored_before = world.sid("SM")
    GroupCommit(world.rt, Message.__table__, lambda ids: None).insert(_stored(world, stored_before))
    group = GroupCommit(world.rt, Message.__table__, lambda ids: None)
    new = [world.sid("SM") for _ in range(3)]
    batch = [groupcommit._Store(_stored(world, sid)) for sid in [*new, stored_before]]
    group._write(batch)
    stored = {m.sid: m.id for m in world.messages()}
    assert [store.row_id for store in batch[:3]] == [stored[sid] for sid in new]
    assert isinstance(batch[3].error, IntegrityError)


@pytest.mark.both_databases
def test_a_store_after_the_database_dropped_its_connection_is_written_on_a_new_one(world):
    if world.rt.engine.dialect.name == "sqlite":
        pytest.skip("SQLite has no server to drop a connection")
    group = GroupCommit(world.rt, Message.__table__, lambda ids: None)
    group.insert(_stored(world, world.sid("SM")))
    held = group._statements._connection
    backend = held.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    with world.rt.engine.connect() as other:  # a restart, as far as this connection knows
        other.exec_driver_sql(f"SELECT pg_terminate_backend({int(backend)})")
    sid = world.sid("SM")
    row_id = group.insert(_stored(world, sid))
    assert {m.sid: m.id for m in world.messages()}[sid] == row_id
    assert group._statements._connection is not held


def test_the_next_store_does_not_wait_for_a_batch_s_after_commit_action(world):
    pushing, release = threading.Event(), threading.Event()

    def slow_push(ids: list[int]) -> None:  # the first batch's Redis push, on a slow network
        if not pushing.is_set():
            pushing.set()
            release.wait(10)

    group = GroupCommit(world.rt, Message.__table__, slow_push)
    first = threading.Thread(target=group.insert, args=(_stored(world, world.sid("SM")),))
    first.start()
    try:
        wait_until(pushing.is_set, what="the first batch's push")
        done = []
        second = threading.Thread(
            target=lambda: done.append(group.insert(_stored(world, world.sid("SM"))))
        )
        second.start()
        second.join(5)
        assert done, "the second store waited for the first batch's push"
    finally:
        release.set()
        first.join(10)
    assert len(world.messages()) == 2


@contextlib.contextmanager
def refused(engine, table: str, when: str = "TRUE"):
    """The database refuses inserts into `table` where `when` (SQL on NEW) holds (a trigger)."""
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql(
                f"CREATE TRIGGER refuse BEFORE INSERT ON {table} WHEN {when} "
                "BEGIN SELECT RAISE(FAIL, 'refused by the test'); END"
            )
        else:
            connection.exec_driver_sql(
                "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
                f"IF {when} THEN RAISE EXCEPTION 'refused by the test'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            connection.exec_driver_sql(
                f"CREATE TRIGGER refuse BEFORE INSERT ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION refuse()"
            )
    try:
        yield
    finally:
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "DROP TRIGGER refuse"
                if engine.dialect.name == "sqlite"
                else f"DROP TRIGGER refuse ON {table}"
            )
            if engine.dialect.name != "sqlite":
                connection.exec_driver_sql("DROP FUNCTION refuse()")


def incidents_refused(engine):
    """The database refuses new incidents: threading fails after the store."""
    return refused(engine, "incident")


def test_a_message_whose_threading_fails_is_kept_and_threaded_by_the_sweeper(world):
    with incidents_refused(world.rt.engine):
        # answered before the threading, which then fails: the words are kept, and the
        # auto-reply the answer carried is true (a person will answer)
        reply = world.text(DEFENDER, "they took my brother", settle=False)
        assert reply == auto_reply("en")
        [stored] = world.messages(direction="in")
        assert (stored.status, stored.incident_id) == ("answered", None)
        assert unseal(world.rt.vault, stored, "body") == "they took my brother"
        assert world.incidents() == []
    world.settle()
    [incident] = world.incidents()
    assert world.messages(direction="in")[0].incident_id == incident.id
    assert "they took my brother" in world.sms_to("amina")[0]
    # the sweeper knows the answer carried the auto-reply: logged as sent, never sent again
    [logged] = world.messages(direction="out", purpose="auto_reply")
    assert (logged.incident_id, logged.status) == (incident.id, "sent")
    assert [m for m in world.fake.messages if m.to == DEFENDER] == []


def test_a_page_retried_after_a_5xx_never_leaves_once_someone_acked(world):
    amina = world.staff_phone("amina")
    world.fake.fail_next(count=1, code=20500, status=500, to=amina)
    world.text(DEFENDER, "help")
    [page] = [p for p in world.pages(1) if p.staff_id == "amina"]
    assert page.status == "retrying"
    outcome = acknowledge(world.rt, 1, "ben", via="ack")
    assert outcome.result == "acked"
    world.advance(seconds=30)
    world.settle()
    assert world.sms_to("amina") == [], "a page went out after the incident was taken"
    assert [p.status for p in world.pages(1) if p.staff_id == "amina"] == ["cancelled"]


def test_a_page_handed_over_before_the_ack_is_followed_by_a_stand_down(world):
    world.text(DEFENDER, "help")
    world.text(world.staff_phone("chen"), "ACK 1")
    [page, standdown] = world.sms_to("amina")
    assert standdown.startswith("#1 taken by Chen L.")


class _Handed:
    """A worker's pool as routing sees it (free threads), with what the unit of work hands
    it after a commit kept here instead of run, so a test decides when a sender takes it."""

    def __init__(self, world: World, size: int = 1):
        self.pool = world.rt.pool = Pool(size, name="test")
        self.items: list[tuple] = []
        world.rt.dispatch = lambda *item: self.items.append(item)

    def close(self, world: World) -> None:
        self.pool.stop()
        world.rt.pool = world.rt.dispatch = None


@pytest.fixture
def handed(world):
    made = _Handed(world)
    yield made
    made.close(world)


def test_a_page_written_claimed_leaves_without_another_claim(world, handed):
    world.text(DEFENDER, "help", settle=False)
    run_step(world.rt, 1, 0)
    [(kind, row_id, _priority, claimed)] = handed.items
    [page] = world.pages(1)
    message = world.messages(id=row_id)[0]
    assert (message.status, message.attempts, page.status) == ("submitting", 1, "submitting")
    assert claimed.fresh(world.now)
    commits = []
    listener = lambda _connection: commits.append(1)  # noqa: E731
    event.listen(world.rt.engine, "commit", listener)
    try:
        outcome = deliver(world.rt, kind, row_id, claimed)
    finally:
        event.remove(world.rt.engine, "commit", listener)
    assert len(commits) == 1, "the send recorded its outcome, and claimed nothing again"
    assert outcome is not None and world.messages(id=row_id)[0].attempts == 1
    assert len(world.sms_to("amina")) == 1


def test_a_page_written_claimed_that_waited_is_not_sent_once_someone_acked(world, handed):
    world.text(DEFENDER, "help", settle=False)
    run_step(world.rt, 1, 0)
    [(kind, row_id, _priority, claimed)] = handed.items
    assert acknowledge(world.rt, 1, "chen", via="ack").result == "acked"
    world.advance(seconds=1)  # no sender took it within CLAIM_FRESH_S: claimed again
    assert deliver(world.rt, kind, row_id, claimed) is None
    assert world.sms_to("amina") == [], "a page went out after the incident was taken"
    assert [p.status for p in world.pages(1)] == ["cancelled"]


def test_a_page_written_claimed_is_handed_over_and_an_ack_then_stands_its_person_down(
    world, handed
):
    world.text(DEFENDER, "help", settle=False)
    run_step(world.rt, 1, 0)
    [(kind, row_id, _priority, claimed)] = handed.items
    assert acknowledge(world.rt, 1, "chen", via="ack").result == "acked"  # at that instant
    [standdown] = world.messages(purpose="standdown")
    assert unseal(world.rt.vault, standdown, "address") == world.staff_phone("amina")
    assert deliver(world.rt, kind, row_id, claimed) is not None  # within CLAIM_FRESH_S
    assert len(world.sms_to("amina")) == 1


def test_a_page_written_claimed_that_waited_is_claimed_again_and_sent_once(world, handed):
    world.text(DEFENDER, "help", settle=False)
    run_step(world.rt, 1, 0)
    [(kind, row_id, _priority, claimed)] = handed.items
    world.advance(seconds=1)
    assert deliver(world.rt, kind, row_id, claimed) is not None
    assert deliver(world.rt, kind, row_id, claimed) is None, "the renewal is spent"
    assert world.messages(id=row_id)[0].attempts == 1
    assert len(world.sms_to("amina")) == 1


def test_a_page_is_written_pending_when_no_sender_is_free(world, handed):
    hold = threading.Event()
    handed.pool.submit(-1, ("hold",), hold.wait)  # the one thread is busy
    try:
        world.text(DEFENDER, "help", settle=False)
        run_step(world.rt, 1, 0)
    finally:
        hold.set()
    [(kind, row_id, _priority, claimed)] = handed.items
    assert claimed is None and world.messages(id=row_id)[0].status == "pending"
    deliver(world.rt, kind, row_id, claimed)
    assert len(world.sms_to("amina")) == 1


def test_a_step_whose_sms_failed_but_whose_call_rings_keeps_waiting(calling_world):
    world = calling_world
    world.fake.fail_to(world.staff_phone("amina"), code=21211, kind="messages")
    world.text(DEFENDER, "help")
    statuses = sorted((p.method, p.status) for p in world.pages(1))
    assert statuses == [("call", "calling"), ("sms", "failed")]
    incident = world.incident(1)
    assert incident.next_step == 1 and incident.next_step_at == world.now + timedelta(minutes=5)
    assert world.sms_to("chen") == [], "escalated while amina's phone was still ringing"


def test_a_step_whose_every_page_failed_moves_on_at_once(world):
    world.fake.fail_to(world.staff_phone("amina"), code=21211, kind="messages")
    world.text(DEFENDER, "help")
    assert len(world.sms_to("chen")) == 1
    assert any(e.kind == "escalated_early" for e in world.events(1))


def test_a_reply_that_fails_for_good_is_explained_to_its_sender(world):
    world.text("whatsapp:" + DEFENDER, "help")
    world.fake.fail_to("whatsapp:" + DEFENDER, code=63016, kind="messages")
    amina = world.staff_phone("amina")
    assert world.text(amina, "R1 call this lawyer").startswith("#1: reply sent")
    notice = world.sms_to("amina")[-1]
    assert notice.startswith("#1: your reply was NOT delivered")
    assert "24 h" in notice


def test_a_staff_number_the_carrier_refuses_goes_dark(world):
    world.fake.fail_to(world.staff_phone("amina"), code=21610, kind="messages")
    world.text(DEFENDER, "help")
    alerts = world.fake.sms_to(world.staff_phone("fiona"))
    assert any("pager went dark" in text for text in alerts)


def test_pages_go_out_before_stand_downs_and_digests(world):
    assert priority_of("page") < priority_of("relay") < priority_of("standdown")
    assert PRIORITY["page"] < PRIORITY["digest"]


class RecordingPool(Pool):
    """The worker's pool, one thread, noting the order in which work runs (a batch of steps
    as one "steps×n")."""

    def __init__(self):
        super().__init__(1, name="test")
        self.ran: list[str] = []

    def submit(self, priority, key, work):  # noqa: ANN001, ANN201
        return super().submit(priority, key, lambda: (self.ran.append(key[0]), work()))

    def submit_batch(self, priority, key, group, run, limit):  # noqa: ANN001, ANN201
        def recorded(keys):  # noqa: ANN001, ANN202
            self.ran.append(f"{group}×{len(keys)}")
            return run(keys)

        return super().submit_batch(priority, key, group, recorded, limit)


def test_a_step_that_falls_due_while_a_sweep_runs_is_swept_at_once(world):
    world.text(DEFENDER, "help")  # level 1 paged; level 2 due in 5 minutes
    due = world.incident(1).next_step_at
    world.now = due - timedelta(milliseconds=1)
    looked = sweep(world.rt, grace=timedelta(0))  # a pass that looks 1 ms too soon for it
    assert looked.steps == 0
    world.advance(milliseconds=5)  # and ends after the step fell due
    sweeper = Sweeper(world.rt, "test")
    assert sweeper._pause(looked.at) == 0.0, "swept at once, not one interval later"
    assert sweep(world.rt, grace=timedelta(0)).steps == 1
    world.settle()
    assert world.incident(1).next_step == 2


def test_a_page_leaves_before_the_next_due_steps_run(world, monkeypatch):
    """A burst of due steps in one worker: steps queued together run as a batch, and the
    pages a batch wrote go out before the next batch runs."""
    monkeypatch.setattr("routing.handover.STEPS_AT_ONCE", 2)
    for n in range(3):
        world.text(f"+4477009002{n}", "help")
    world.now += timedelta(minutes=5)  # level 2 of all three is due
    pool = world.rt.pool = RecordingPool()
    world.rt.dispatch = functools.partial(send_soon, world.rt)
    try:
        hold = threading.Event()
        pool.submit(-1, ("hold",), hold.wait)  # the thread is busy while the sweeper hands over
        assert sweep(world.rt).steps == 3
        hold.set()
        wait_until(pool.idle, timeout=10, what="the pool to drain")
    finally:
        pool.stop()
        world.rt.pool = world.rt.dispatch = None
    assert pool.ran == ["hold", "steps×2", "message", "message", "steps×1", "message"]
    assert len(world.sms_to("chen")) == 3


def test_steps_due_together_run_as_one_batch_and_a_surge_gets_one_digest(world):
    for n in range(8):
        world.text(f"+4477009003{n}", f"help {n}")
    world.now += timedelta(minutes=2)
    world.text("+447700900399", "not due yet")  # #9: its level 2 is due 2 minutes later
    world.now += timedelta(minutes=3)  # level 2 (chen) of the first eight is due
    due = [(number, 1) for number in range(1, 10)] + [(1, 0), (2, 2)]
    assert run_steps(world.rt, due) == 8  # not #9's early step, nor #1's past, #2's future
    world.settle()
    pages = world.sms_to("chen")
    assert len(pages) == 5 and all(f"help {n}" in pages[n] for n in range(5))
    with Session(world.rt.engine) as session:
        [digest] = session.exec(
            select(Message).where(Message.purpose == "digest", Message.staff_id == "chen")
        ).all()
        steps = session.exec(select(Incident.id, Incident.next_step)).all()
    text = unseal(world.rt.vault, digest, "body")
    assert text.startswith("Hotline surge: 3 more new incident(s) for you: #6 #7 #8.")
    assert '#8 "help 7"' in text
    assert sorted(steps) == [(n, 2) for n in range(1, 9)] + [(9, 1)]
    assert world.incident(9).next_step_at > world.now
    ran_at = {
        e.incident_id: e.at
        for e in world.events()
        if e.kind == "paged" and e.detail.startswith("step 1 ")
    }
    assert sorted(ran_at) == list(range(1, 9)) and set(ran_at.values()) == {world.now}


def test_a_step_that_fails_in_a_batch_is_undone_alone_and_run_by_the_sweeper(world):
    for n in range(3):
        world.text(f"+4477009004{n}", f"help {n}")
    world.now += timedelta(minutes=5)
    with refused(world.rt.engine, "event", "NEW.incident_id = 2 AND NEW.kind = 'paged'"):
        assert run_steps(world.rt, [(1, 1), (2, 1), (3, 1)]) == 2
        assert [world.incident(n).next_step for n in (1, 2, 3)] == [2, 1, 2]
        assert [p.step for p in world.pages(2)] == [0]  # nothing of its step 1 is left
    world.settle()
    assert world.incident(2).next_step == 2
    assert [sum(f'"help {n}"' in page for page in world.sms_to("chen")) for n in range(3)] == [
        1,
        1,
        1,
    ]


@pytest.mark.parametrize("reply", ["ACK 1", "ack1", "A 1", "ACK", "  Ack #1. "])
def test_ack_in_every_syntax_stops_escalation_and_stands_down_others(world, reply):
    world.text(DEFENDER, "help")
    world.now += timedelta(minutes=5)
    world.settle()  # level 2 paged
    assert world.text(world.staff_phone("chen"), reply).startswith("You took #1")
    incident = world.incident(1)
    assert (incident.status, incident.acknowledged_by) == ("acknowledged", "chen")
    assert "#1 taken by" in world.sms_to("amina")[-1]
    world.now += timedelta(hours=2)
    world.settle()
    assert len(world.sms_to("chen")) == 1 and len(world.sms_to("fiona")) == 0


def test_an_ack_race_has_one_winner(world):
    world.text(DEFENDER, "help")
    first = acknowledge(world.rt, 1, "amina", via="ack")
    second = acknowledge(world.rt, 1, "chen", via="ack")
    assert (first.result, second.result) == ("acked", "taken")
    with Session(world.rt.engine) as s:
        assert s.exec(select(Incident.acknowledged_by)).one() == "amina"
    paged_once = [p for p in world.pages(1) if p.status != "cancelled"]
    assert len(paged_once) == 1


@pytest.mark.parametrize("first_word", ["Stop!", "yes", "END"])
def test_a_defenders_first_word_never_vanishes(world, first_word):
    reply = world.text(DEFENDER, first_word)
    [incident] = world.incidents()
    [page] = world.sms_to("amina")
    assert page.startswith(f"#{incident.id} SMS +44*****123:")
    if first_word == "yes":
        assert reply and "R1 text" in page
    else:
        # the carrier now refuses our SMS to them: no auto-reply, and staff are told to call
        assert reply is None
        assert "Carrier opted them out of SMS: CALL 1" in page


def test_anyone_may_act_on_a_taken_incident_and_the_taker_hears_of_it(world):
    world.text(DEFENDER, "help")
    world.text(world.staff_phone("amina"), "ACK 1")
    ben = world.staff_phone("ben")  # never paged for #1
    assert world.text(ben, "R1 a lawyer is on the way").startswith("#1: reply sent")
    assert [m.body for m in world.fake.messages if m.to == DEFENDER][-1] == "a lawyer is on the way"
    world.text(ben, "SILENT 1")
    world.text(ben, "RESOLVE 1")
    told = world.sms_to("amina")[1:]  # after the page: confirmations come back as TwiML
    assert told == [
        '#1: Ben O. replied to the defender: "a lawyer is on the way".',
        "#1: Ben O. made it silent (no automatic texts).",
        "#1: Ben O. resolved it.",
    ]
    assert not [t for t in world.sms_to("ben") if "replied" in t], "the actor is not told"


def test_an_over_long_reply_is_refused_with_the_reason(world):
    world.text(DEFENDER, "help")
    before = len(world.fake.messages)
    answer = world.text(world.staff_phone("amina"), "R1 " + "a" * 1700)
    assert answer.startswith("#1: not sent: your reply has 1700 characters")
    assert len(world.fake.messages) == before


def _senders(count: int) -> list[str]:
    return [f"+4477009{n:05d}" for n in range(1, count + 1)]


def test_a_flood_tells_the_fallback_once_and_digests_quote_the_newest(world):
    world.rt.settings = dataclasses.replace(world.settings, flood_threshold=6)
    for n, sender in enumerate(_senders(8), start=1):
        world.text(sender, f"raid on office {n}")
    floods = [t for t in world.sms_to("fiona") if t.startswith("Hotline FLOOD")]
    assert floods == [
        "Hotline FLOOD: 6 new incidents in 10 min (newest #6). Pages to each of "
        "you fold into digests. STATUS NEW lists the newest; BLOCK 40-120 blocks "
        "and closes a range, UNBLOCK 40-120 undoes it."
    ]
    world.advance(seconds=11)  # the digest leaves DIGEST_DELAY after it was started
    world.settle()
    [digest] = [t for t in world.sms_to("amina") if t.startswith("Hotline surge")]
    assert digest.startswith("Hotline surge: 3 more new incident(s) for you: #6 #7 #8.")
    assert 'Newest: #8 "raid on office 8" #7 "raid on office 7" #6 "raid on office 6".' in digest


def test_a_flood_threaded_in_one_batch_tells_the_fallback_once(world):
    world.rt.settings = dataclasses.replace(world.settings, flood_threshold=3)
    for n, sender in enumerate(_senders(6), start=1):
        receive_message(world.rt, TextMessage(world.sid("SM"), sender, f"raid {n}"), defer=True)
    stored = [("message", m.id) for m in world.messages(direction="in")]
    assert intake.thread_batch(world.rt, stored) == 6  # one transaction
    world.settle()
    floods = [t for t in world.sms_to("fiona") if t.startswith("Hotline FLOOD")]
    assert len(floods) == 1 and "3 new incidents in 10 min (newest #3)" in floods[0]
    assert len([e for e in world.events() if e.kind == "flood"]) == 1


def test_status_new_lists_the_newest_with_their_first_words(world):
    for n, sender in enumerate(_senders(7), start=1):
        world.text(sender, f"message number {n}")
    answer = world.text(world.staff_phone("amina"), "STATUS NEW")
    lines = answer.splitlines()
    assert lines[0].startswith("#7 SMS 0m NOT TAKEN") and lines[0].endswith('"message number 7"')
    assert len(lines) == 6 and lines[-1] == "+2 more"


def test_bulk_block_clears_a_flood_and_unblock_undoes_it(world):
    senders = _senders(4)
    for sender in senders:
        world.text(sender, "fake report")
    amina = world.staff_phone("amina")
    world.text(amina, "ACK 2")  # someone took #2: a bulk block leaves it as it is
    answer = world.text(amina, "BLOCK 1-3")
    assert answer == (
        "#1-#3: 3 sender(s) blocked for 30 days, 2 open incident(s) closed. "
        "UNBLOCK 1-3 undoes both."
    )
    assert [i.status for i in world.incidents()] == ["resolved", "acknowledged", "resolved", "open"]
    paged = len(world.fake.messages)
    world.text(senders[0], "more")
    world.text(senders[2], "more")
    assert len(world.incidents()) == 4 and len(world.fake.messages) == paged
    answer = world.text(amina, "UNBLOCK 1-3")
    assert answer == "#1-#3: 3 block(s) lifted, 2 incident(s) reopened and paged again."
    assert [i.status for i in world.incidents()] == ["open", "acknowledged", "open", "open"]
    assert len(world.fake.messages) > paged, "reopened incidents are paged again"
    world.text(senders[0], "still here")
    assert len(world.incidents()) == 4
