"""Erasure that holds: after a purge, what a defender sent is gone from every byte of the
database, not only from its live rows.

The test reads the database as someone who seized the disk with the master key would: every
byte of the SQLite file and its write-ahead log, every value shaped like one of our ciphertexts
tried with the key. Before the purge it must find the defender there (or it could find
nothing for any reason); after it, nothing.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

import pytest
from conftest import rota_text
from cryptography.fernet import InvalidToken
from engine_world import START
from sqlalchemy import text, update
from sqlalchemy.engine import make_url
from sqlmodel import Session, SQLModel, select

from hotline.crypto import Vault
from hotline.db import vault_on
from hotline.keycheck import KeyMismatch, check_key
from hotline.purger import run_purge
from routing import caseactions, voicemail, webform
from routing.datakeys import unseal
from routing.retention import purge
from routing.tables import Block, Checkin, Incident, KeyCheck, Note, Page, TwilioDeletion
from routing.voicemail import Recording, Transcript

DEFENDER = "+447700900123"
WHATSAPP = "whatsapp:+447700900789"
WORDS = "Police at my door, Kestrel office raided, Marguerite arrested"
SECRETS = (DEFENDER, WHATSAPP.removeprefix("whatsapp:"), "Kestrel", "Marguerite", "Signal tern")
# what a value of ours looks like in the raw bytes: a Fernet token (the master key itself), a
# value sealed under a data key, a wrapped data key (always 80 characters), and runs of hex
# digits, where a data key's id (24 of them) hides. A record's columns lie side by side, so a
# match may run into the next column: each is tried at every length it could have.
FERNET = re.compile(rb"gAAAAA[A-Za-z0-9_\-]{40,}={0,2}")
SEALED = re.compile(rb"k1\.((?:(?!k1\.|w1\.)[A-Za-z0-9_\-])+={0,2})")
WRAPPED = re.compile(rb"w1\.[A-Za-z0-9_\-]{80}")
HEX = re.compile(rb"[0-9a-f]{24,}")
COLUMNS = [
    f"{table.name}.{column.name.removesuffix('_enc')}"
    for table in SQLModel.metadata.sorted_tables
    for column in table.columns
    if column.name.endswith("_enc")
]


def raw_files(world) -> list[Path]:
    """The database's files as a seizure copies them: SQLite's file and its write-ahead log;
    on PostgreSQL, after a CHECKPOINT, the files of every table of this test's schema."""
    url = make_url(world.settings.database_url)
    if world.rt.engine.dialect.name == "sqlite":
        path = Path(url.database)
        return [path, path.with_name(path.name + "-wal")]
    with world.rt.engine.connect() as connection:
        connection.execute(text("CHECKPOINT"))
        home = Path(connection.execute(text("SHOW data_directory")).scalar())
        names = [table.name for table in SQLModel.metadata.sorted_tables]
        return [
            home / connection.execute(text("SELECT pg_relation_filepath(:t)"), {"t": t}).scalar()
            for t in names
        ]


def readable(world) -> str:
    """Everything the master key opens in the raw files, as someone who seized them with the
    key would try: every wrapped data key with every key id found, then every sealed value
    with every data key so opened, in every column."""
    data = b"".join(path.read_bytes() for path in raw_files(world) if path.exists())
    master = Vault(world.settings.secret_keys)
    found = []
    for token in set(FERNET.findall(data)):
        with contextlib.suppress(InvalidToken, ValueError):  # cut by a page boundary
            found.append(master.decrypt(token.decode()) or "")
    ids = {run[i : i + 24].decode() for run in HEX.findall(data) for i in range(len(run) - 23)}
    keys = {}
    for wrapped in {w.decode() for w in WRAPPED.findall(data)}:
        for key_id in ids:
            with contextlib.suppress(InvalidToken, ValueError):
                master.rewrap(key_id, wrapped)
                keys[key_id] = wrapped
    master.attach(keys.get)
    for run in {t for t in SEALED.findall(data)}:
        tokens = ["k1." + run[:n].decode() for n in range(len(run), 23, -1) if n % 4 == 0]
        found += [opened for token in tokens if (opened := _open(master, keys, token))]
    return "\n".join(found)


def _open(vault: Vault, keys: dict[str, str], token: str) -> str | None:
    for key_id in keys:
        for column in COLUMNS:
            with contextlib.suppress(InvalidToken, ValueError):
                return vault.open(key_id, column, token)
    return None


def test_after_a_purge_nothing_of_the_defender_decrypts_anywhere_in_the_file(make_world):
    world = make_world(config="checkins:\n  duress_words: [sunflower]\n")
    if world.rt.engine.dialect.name != "sqlite" and not os.access(raw_files(world)[0], os.R_OK):
        pytest.skip("PostgreSQL's data directory is not readable here")
    amina = world.staff_phone("amina")
    world.text(DEFENDER, WORDS)
    world.text(amina, "ACK 1")
    world.text(amina, "R1 we are calling your lawyer")
    amina_staff = world.rt.rota.current().staff["amina"]
    assert "saved" in caseactions.add_note(world.rt, amina_staff, 1, "Kestrel safehouse, room 4")
    world.text(WHATSAPP, "they took my phone, this is Marguerite's")
    webform.submit(world.rt, "Kestrel office raided again", "Signal tern-77")
    world.settle()
    world.text(amina, "CHECKIN 1 2h")
    world.text(DEFENDER, "all fine sunflower Kestrel")
    world.text(amina, "BLOCK 2")
    for number in (1, 2, 3):
        world.text(amina, f"RESOLVE {number}")
    before = readable(world)
    assert all(secret in before for secret in (DEFENDER, "Kestrel", "Marguerite")), before

    world.advance(days=1)
    assert run_purge(world.settings, 0) in (0, 1)
    after = readable(world)
    assert [secret for secret in SECRETS if secret in after] == []
    with Session(world.rt.engine) as session:
        assert session.exec(select(Note)).all() == []  # the console's notes go with it


def test_a_purge_removes_the_blocks_of_the_incidents_it_erases_only(world):
    amina = world.staff_phone("amina")
    world.text(DEFENDER, "first")
    world.text("+447700900555", "second")
    for command in ("BLOCK 1", "BLOCK 2", "RESOLVE 1"):
        world.text(amina, command)
    with Session(world.rt.engine) as session:
        assert sorted(session.exec(select(Block.incident_id)).all()) == [1, 2]
    world.advance(minutes=1)
    report = purge(world.rt, 0)
    assert (report.incidents, report.blocks) == (1, 1)
    with Session(world.rt.engine) as session:
        assert session.exec(select(Block.incident_id)).all() == [2]


def test_a_sealed_value_copied_into_another_incident_does_not_open_there(world):
    world.text(DEFENDER, "first")
    world.text("+447700900555", "second")
    one, two = world.incidents()
    assert one.key_id != two.key_id, "each incident has a data key of its own"
    with Session(world.rt.engine) as session:  # someone who can write to the database
        session.exec(update(Incident).where(Incident.id == 2).values(defender_enc=one.defender_enc))
        session.commit()
    swapped = world.incident(2)
    with pytest.raises(InvalidToken):
        unseal(world.rt.vault, swapped, "defender")
    # nor does a value open in another column of its own row's key
    [first] = world.messages(direction="in", incident_id=1)
    with pytest.raises(InvalidToken):
        world.rt.vault.open(first.key_id, "message.address", first.body_enc)


def test_purge_deletes_every_twilio_copy_then_forgets_the_sids(world):
    amina = world.staff_phone("amina")
    world.text(DEFENDER, "they are at the door")
    received = world.call(DEFENDER)  # joins #1
    [call] = [c for c in world.calls() if c.direction == "in"]
    recording = "RE" + "7" * 32
    voicemail.recording_ready(
        world.rt, received.incident_id, Recording(call.sid, recording, "https://x/RE7", "completed")
    )
    transcription = world.fake.add_transcription(recording)
    voicemail.transcript_ready(world.rt, Transcript(recording, "completed", "help me please"))
    world.text(amina, "R1 we are calling your lawyer")
    world.text(amina, "RESOLVE 1")
    messages = {m.sid for m in world.messages(incident_id=1) if m.sid}
    calls = {c.sid for c in world.calls() if c.incident_id == 1 and c.sid}
    assert len(messages) >= 3 and call.sid in calls

    world.advance(days=1)
    report = purge(world.rt, 0)
    assert report.pending_at_twilio == 0
    deleted = {(d.kind, d.sid) for d in world.fake.deletions}
    assert {sid for kind, sid in deleted if kind == "messages"} >= messages
    assert {sid for kind, sid in deleted if kind == "calls"} >= calls
    assert ("recordings", recording) in deleted and ("transcriptions", transcription) in deleted
    # Twilio confirmed: nothing here names those contacts there any more
    with Session(world.rt.engine) as session:
        kept = session.exec(select(TwilioDeletion.sid)).all()
    assert kept and all(sid.startswith("deleted:") for sid in kept)


def test_an_erased_incident_keeps_only_coarse_figures(world):
    amina = world.staff_phone("amina")
    world.advance(seconds=17.5)
    world.text(DEFENDER, "they are at the door")
    world.text(amina, "ACK 1")
    world.text(amina, "CHECKIN 1 every 1w")
    world.text(amina, "SILENT 1")
    world.text(amina, "RESOLVE 1")
    world.advance(days=1)
    purge(world.rt, 0)
    incident = world.incident(1)
    assert world.messages(incident_id=1) == [] and not [c for c in world.calls() if c.incident_id]
    with Session(world.rt.engine) as session:
        assert session.exec(select(Checkin)).all() == []
        pages = session.exec(select(Page)).all()
    assert pages and all(p.created_at.second == p.created_at.microsecond == 0 for p in pages)
    times = (incident.opened_at, incident.first_paged_at, incident.acknowledged_at)
    assert all(t.second == t.microsecond == 0 for t in (*times, incident.resolved_at))
    events = world.events(1)
    assert {"opened", "acknowledged", "resolved", "erased"} <= {e.kind for e in events}
    assert all(e.at.second == e.at.microsecond == 0 for e in events), "the audit to the minute"
    assert (incident.channel, incident.silent, incident.last_inbound_at) == ("sms", False, None)


def test_an_auto_reply_sent_as_twiml_is_found_at_twilio_and_deleted(world):
    answer = world.text(DEFENDER, "help")  # answered in the webhook's TwiML
    assert answer and "hotline" in answer.lower()
    # Twilio sent it, and only Twilio knows its sid; another message to the same person
    # with other words, and the same words to someone else, are not it
    number, now = world.settings.number, world.now
    sent = world.fake.add_twiml_message(DEFENDER, number, answer, now)
    other = world.fake.add_twiml_message(DEFENDER, number, "something else", now)
    elsewhere = world.fake.add_twiml_message("+447700900555", number, answer, now)
    [logged] = world.messages(purpose="auto_reply")
    assert logged.sid is None
    world.text(world.staff_phone("amina"), "RESOLVE 1")
    world.advance(days=1)
    purge(world.rt, 0)
    deleted = {d.sid for d in world.fake.deletions if d.kind == "messages"}
    assert sent in deleted and not {other, elsewhere} & deleted


def test_the_rota_s_coordinators_are_told_before_an_incident_ages_out(make_world):
    world = make_world(rota=rota_text(at=START) + "coordinators: [dana]\n")
    world.text(DEFENDER, "they took my brother")
    world.advance(days=174)
    purge(world.rt, 90)
    world.settle()
    assert [t for t in world.sms_to("dana") if "max_open_days" in t]
    assert not [t for t in world.sms_to("fiona") if "max_open_days" in t], "not the fallback"


def test_an_incident_quiet_for_max_open_days_is_announced_then_closed_and_erased(world):
    world.text(DEFENDER, "they took my brother")
    world.text("+447700900555", "first")
    world.text(world.staff_phone("amina"), "ACK 1")
    world.advance(days=100)
    world.text("+447700900555", "still here")  # #2's defender keeps in touch
    world.advance(days=74)  # #1: 174 days without contact
    purge(world.rt, 90)
    world.settle()
    [warning] = [t for t in world.sms_to("fiona") if "max_open_days" in t]
    assert warning.startswith("Hotline: #1 has had no contact since 03 Nov 2026.")
    assert "On 02 May 2027 it will be resolved and its personal data erased" in warning
    purge(world.rt, 90)
    world.settle()
    assert len([t for t in world.sms_to("fiona") if "max_open_days" in t]) == 1, "told once"
    assert world.incident(1).status == "acknowledged"

    world.advance(days=6, minutes=1)
    report = purge(world.rt, 90)
    closed, alive = world.incident(1), world.incident(2)
    assert (closed.status, closed.resolved_by) == ("resolved", "max_open_days")
    assert closed.purged_at is not None and closed.defender_enc is None
    assert report.incidents == 1 and alive.status == "open" and alive.purged_at is None


def test_the_key_check_is_recorded_only_for_the_key_the_data_is_under(world):
    world.text(DEFENDER, "help")  # sealed under data keys wrapped by the world's key
    new = "n" * 43
    check_key(world.rt.engine, vault_on(world.rt.engine, [new, *world.settings.secret_keys]))
    with Session(world.rt.engine) as session:
        assert session.get(KeyCheck, 1) is None, "mid-rotation: the data is not under `new` yet"
    check_key(world.rt.engine, vault_on(world.rt.engine, world.settings.secret_keys))
    with Session(world.rt.engine) as session:
        recorded = session.get(KeyCheck, 1).value
    assert recorded == Vault(world.settings.secret_keys).check_values()[0]
    with pytest.raises(KeyMismatch):
        check_key(world.rt.engine, vault_on(world.rt.engine, [new]))


def test_two_auto_replies_to_one_defender_minutes_apart_are_each_deleted(world):
    amina, number = world.staff_phone("amina"), world.settings.number
    first = world.text(DEFENDER, "help")
    one = world.fake.add_twiml_message(DEFENDER, number, first, world.now)
    world.text(amina, "RESOLVE 1")
    world.advance(minutes=3)
    again = world.text(DEFENDER, "help again")  # a new incident, the same auto-reply
    two = world.fake.add_twiml_message(DEFENDER, number, again, world.now)
    world.text(amina, "RESOLVE 2")
    world.advance(days=1)
    assert purge(world.rt, 0).incidents == 2
    assert {one, two} <= {d.sid for d in world.fake.deletions if d.kind == "messages"}
