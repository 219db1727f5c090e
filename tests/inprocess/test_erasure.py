"""Erasure that holds: after a purge, what a defender sent is gone from every byte of the
database, not only from its live rows.

The test reads the database as someone who seized the disk with the master key would: every
byte of the SQLite file and its write-ahead log, every value shaped like one of our ciphertexts
tried with the key. Before the purge it must find the defender there (or it could find
nothing for any reason); after it, nothing.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest
from cryptography.fernet import InvalidToken
from sqlalchemy.engine import make_url
from sqlmodel import Session, select

from hotline.crypto import Vault
from hotline.purger import run_purge
from routing import webform
from routing.retention import purge
from routing.tables import Block

DEFENDER = "+447700900123"
WHATSAPP = "whatsapp:+447700900789"
WORDS = "Police at my door, Kestrel office raided, Marguerite arrested"
SECRETS = (DEFENDER, WHATSAPP.removeprefix("whatsapp:"), "Kestrel", "Marguerite", "Signal tern")
# a Fernet token: version 0x80 and a timestamp, base64url
TOKEN = re.compile(rb"gAAAAA[A-Za-z0-9_\-]{40,}={0,2}")


def readable(world) -> str:
    """Everything the key opens in the database file and its write-ahead log, joined."""
    path = Path(make_url(world.settings.database_url).database)
    vault = Vault(world.settings.secret_keys)
    found = []
    for part in (path, path.with_name(path.name + "-wal")):
        data = part.read_bytes() if part.exists() else b""
        for token in set(TOKEN.findall(data)):
            with contextlib.suppress(InvalidToken, ValueError):  # cut by a page boundary
                found.append(vault.decrypt(token.decode()) or "")
    return "\n".join(found)


def test_after_a_purge_nothing_of_the_defender_decrypts_anywhere_in_the_file(make_world):
    world = make_world(config="checkins:\n  duress_words: [sunflower]\n")
    if world.rt.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's file and log are read here; PostgreSQL: see the README, Retention")
    amina = world.staff_phone("amina")
    world.text(DEFENDER, WORDS)
    world.text(amina, "ACK 1")
    world.text(amina, "R1 we are calling your lawyer")
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
