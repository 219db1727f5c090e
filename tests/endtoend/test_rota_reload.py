"""The live rota: an edit applies without a restart, a broken edit never does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import rota_text
from harness import TestWorker, migrated, wait_until
from sqlmodel import Session, select

from hotline import rotasource
from hotline.crypto import Vault
from hotline.db import make_engine
from hotline.rotasource import RotaSource, RotaUnavailable
from routing.tables import Event

DEFENDERS = ("+447700900123", "+447700900456", "+447700900789")
AMINA, BEN, CHEN, DANA = "+353861234567", "+353867654321", "+353861112233", "+353862223344"
SECRET = "reload-secret-key-0123456789abcdef"


def rota(primary: str, backup: str, *, wait1: str = "30m", broken: bool = False) -> str:
    """The test rota with one member per rotation; `broken` adds a misspelt staff id."""
    text = rota_text(wait1=wait1)
    text = text.replace("members: [amina, ben]", f"members: [{primary}{', dna' if broken else ''}]")
    return text.replace("members: [chen, dana]", f"members: [{backup}]")


def healthz(hotline) -> tuple[int, dict]:
    with urllib.request.urlopen(hotline.base_url + "/healthz", timeout=10) as response:
        return response.status, json.loads(response.read())


def health_details(hotline) -> dict:
    """`hotline health --json`, as an operator runs it."""
    result = subprocess.run(
        [sys.executable, "-m", "hotline", "health", "--json"],
        env={**os.environ, **hotline.env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return json.loads(result.stdout)


def rota_events(hotline) -> list[tuple[str, str]]:
    return [(e.kind, e.detail) for e in hotline.events() if e.kind.startswith("rota_")]


def pages_to(fake, number: str, incident: int) -> list[str]:
    return [m.body for m in fake.messages if m.to == number and m.body.startswith(f"#{incident} ")]


@pytest.mark.one_database  # an end-to-end scenario (tests/conftest.py)
def test_an_edited_rota_pages_the_new_people_without_a_restart(make_hotline, fake_twilio):
    hotline = make_hotline(rota=rota("amina", "chen", wait1="1s"))
    worker = TestWorker(hotline).start()
    try:
        hotline.sms(DEFENDERS[0], "they took my phone")
        fake_twilio.wait_for(lambda: pages_to(fake_twilio, AMINA, 1))
        fake_twilio.wait_for(lambda: pages_to(fake_twilio, CHEN, 1))  # level 2, by the worker

        hotline.write_rota(rota("ben", "dana", wait1="1s"))
        wait_until(
            lambda: hotline.rt.rota.current().rotations["primary"].members == ("ben",),
            what="the web process to reload the rota",
        )
        hotline.sms(DEFENDERS[1], "police at the office")
        fake_twilio.wait_for(lambda: pages_to(fake_twilio, BEN, 2))
        fake_twilio.wait_for(lambda: pages_to(fake_twilio, DANA, 2))  # the worker reloaded too
        assert pages_to(fake_twilio, AMINA, 2) == [] and pages_to(fake_twilio, CHEN, 2) == []
        loads = [detail for kind, detail in rota_events(hotline) if kind == "rota_loaded"]
        assert len(loads) == 2 and loads[0] != loads[1]  # one per version, not per process
    finally:
        worker.stop()


@pytest.mark.one_database  # an end-to-end scenario (tests/conftest.py)
def test_a_broken_edit_leaves_the_last_valid_rota_live_until_fixed(make_hotline, fake_twilio):
    hotline = make_hotline(rota=rota("amina", "chen"))
    worker = TestWorker(hotline).start()
    try:
        hotline.write_rota(rota("ben", "dana", broken=True))
        wait_until(lambda: hotline.rt.rota.status().stale, what="the broken edit to be seen")

        status, body = healthz(hotline)  # public: the state only, never the rota's words
        assert status == 200 and body["ok"] is True and body["checks"]["rota"] == "stale"
        check = health_details(hotline)["checks"]["rota"]
        assert check["state"] == "stale"
        assert check["errors"] == [
            "rota.yaml:10: staff 'dna' in rotation 'primary' is not defined (did you mean 'dana'?)"
        ]

        hotline.sms(DEFENDERS[0], "arrested at the border")  # the worker meets the edit too
        fake_twilio.wait_for(lambda: pages_to(fake_twilio, AMINA, 1))
        assert pages_to(fake_twilio, BEN, 1) == []
        # both processes saw the same broken file; the audit trail says so once, without names
        wait_until(lambda: len(hotline.pages(1)) >= 1, what="the page to be logged")
        assert rota_events(hotline)[1:] == [("rota_rejected", rota_events(hotline)[1][1])]
        assert rota_events(hotline)[1][1].startswith("1 problem; sha256 ")
        assert rota_events(hotline)[0][0] == "rota_loaded"

        hotline.write_rota(rota("ben", "dana"))
        wait_until(lambda: not hotline.rt.rota.status().stale, what="the fix to apply")
        status, body = healthz(hotline)
        assert status == 200 and body["checks"]["rota"] == "ok"
        assert health_details(hotline)["checks"]["rota"]["errors"] == []
        assert [kind for kind, _ in rota_events(hotline)] == [
            "rota_loaded",
            "rota_rejected",
            "rota_loaded",
        ]
        assert hotline.rt.rota.current().rotations["primary"].members == ("ben",)
    finally:
        worker.stop()


# --- RotaSource on its own: the stored copy for restarts ----------------------------------


@pytest.fixture
def store(database_url, monkeypatch):
    monkeypatch.setattr(rotasource, "CHECK_INTERVAL_S", 0.0)  # re-stat on every call
    engine = make_engine(migrated(database_url))
    yield engine
    engine.dispose()


def source(path, engine) -> RotaSource:  # noqa: ANN001
    return RotaSource(path, None, engine=engine, vault=Vault((SECRET,)))


def events(engine) -> list[str]:
    with Session(engine) as session:
        return [e.kind for e in session.exec(select(Event).order_by(Event.id)).all()]


def test_a_restart_with_a_broken_file_restores_the_last_valid_rota(tmp_path, store):
    path = tmp_path / "rota.yaml"
    path.write_text(rota("amina", "chen"))
    assert source(path, store).current().rotations["primary"].members == ("amina",)

    path.write_text(rota("ben", "dana", broken=True))
    restarted, second = source(path, store), source(path, store)  # web and worker, say
    live = restarted.current()
    assert live.rotations["primary"].members == ("amina",)
    status = restarted.status()
    assert status.ok and status.stale and len(status.errors) == 1
    second.current()
    restarted.current()
    assert events(store) == ["rota_loaded", "rota_rejected"]  # once, however many look


def test_a_reverted_edit_is_the_one_restored(tmp_path, store):
    path = tmp_path / "rota.yaml"
    live = source(path, store)
    for primary in ("amina", "ben", "amina"):  # edit, then undo the edit
        path.write_text(rota(primary, "chen"))
        assert live.current().rotations["primary"].members == (primary,)
    path.write_text("timezone: [")
    assert source(path, store).current().rotations["primary"].members == ("amina",)
    assert events(store) == ["rota_loaded"] * 3 + ["rota_rejected"]


def test_no_valid_rota_ever_is_unavailable(tmp_path, store):
    path = tmp_path / "rota.yaml"
    path.write_text(rota("ben", "dana", broken=True))
    fresh = source(path, store)
    with pytest.raises(RotaUnavailable, match="staff 'dna'"):
        fresh.current()
    status = fresh.status()
    assert not status.ok and status.stale and status.sha256 is None


def test_an_edit_first_read_inside_a_transaction_neither_stalls_it_nor_goes_unstored(
    tmp_path, store
):
    """Any read of the live rota may be the first after an edit, inside a step or an ack:
    storing the new version must not wait for the very transaction it was read in (on
    SQLite, that transaction's write lock: 30 s, then the copy was lost)."""
    path = tmp_path / "rota.yaml"
    path.write_text(rota_text())
    live = source(path, store)
    live.current()
    before = live.status().sha256
    path.write_text(rota_text(wait1="7m"))
    with Session(store) as session:
        session.exec(select(Event)).all()  # a transaction is open in this thread
        started = time.monotonic()
        live.current()
        assert time.monotonic() - started < 2
        assert live.status().sha256 != before  # the edit is live at once
    wait_until(lambda: events(store).count("rota_loaded") == 2, what="the edit stored")
    assert (
        rotasource.stored_rota(store, Vault((SECRET,)), path.name, None)[1].sha256
        == live.status().sha256
    )
