"""Nothing readable if the server or a log is seized: after a full emergency, no number and no
message text appears in any log line (at DEBUG) or anywhere in the database."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import phonenumbers
from harness import TestWorker, wait_until
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

import oncall
from hotline.logsafety import redact

DEFENDER = "+447700900123"
TEXTS = (
    "Kestrel office raided by uniformed police",
    "they are asking for passwords",
    "Marguerite is calling your lawyer",
)


def number_forms(e164: str) -> set[str]:
    """Every way a number might be written: E.164, digits, national with and without spaces."""
    parsed = phonenumbers.parse(e164, None)
    national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    return {
        e164,
        e164.lstrip("+"),
        national,
        national.replace(" ", ""),
        str(parsed.national_number),
    }


def forbidden(hotline) -> set[str]:
    rota = hotline.rt.rota.current()
    words = set(TEXTS) | number_forms(DEFENDER)
    for person in rota.staff.values():
        words |= number_forms(person.phone)
    words |= {
        line.split("phone:")[1].split('"')[1]
        for line in hotline.rota_path.read_text().splitlines()
        if "phone:" in line
    }  # as the coordinator typed them
    return words


def full_emergency(hotline, fake_twilio) -> None:
    rota = hotline.rt.rota.current()
    l1 = oncall.who_is_on_call(rota, datetime.now(UTC))[0].staff[0].phone
    hotline.sms(DEFENDER, TEXTS[0])
    fake_twilio.wait_for_messages(1, to=l1)
    hotline.sms(l1, "ACK 1")
    hotline.sms(DEFENDER, TEXTS[1])
    fake_twilio.wait_for_messages(2, to=l1)  # relayed to whoever took it
    hotline.sms(l1, f"R1 {TEXTS[2]}")
    fake_twilio.wait_for_messages(1, to=DEFENDER)
    hotline.sms(l1, "RESOLVE 1")
    wait_until(
        lambda: all(
            m.status not in ("pending", "submitting") for m in hotline.messages(direction="out")
        ),
        what="all sent",
    )


def test_no_number_or_text_in_any_log_or_the_database(hotline, fake_twilio, caplog):
    caplog.set_level(logging.DEBUG)
    hotline.env["HOTLINE_LOG_LEVEL"] = "DEBUG"
    worker = TestWorker(hotline).start()
    try:
        full_emergency(hotline, fake_twilio)
    finally:
        worker.stop(graceful=True)  # its shutdown's log lines are scanned too
    words = forbidden(hotline)
    logs = {"web process": caplog.text, "worker": worker.log()}
    assert "DEBUG" in worker.log() or "INFO" in worker.log()  # the log did record things
    stored = database_text(hotline)
    assert "gAAAAA" in stored  # the data is there, encrypted
    for where, content in {**logs, "database": stored}.items():
        leaks = sorted(w for w in words if w in content)
        assert not leaks, f"{where} contains {leaks}"


def database_text(hotline) -> str:
    """The database as a seizer would read it: the SQLite files' raw bytes, or every row of
    every PostgreSQL table as text."""
    url = make_url(hotline.settings.database_url)
    if url.get_backend_name() == "sqlite":
        base = Path(url.database)
        files = [p for p in (base, Path(f"{base}-wal"), Path(f"{base}-shm")) if p.exists()]
        return "\n".join(p.read_bytes().decode("latin-1") for p in files)
    rows = []
    with hotline.rt.engine.connect() as connection:
        for table in SQLModel.metadata.sorted_tables:
            rows += connection.execute(text(f'SELECT t::text FROM "{table.name}" t')).scalars()
    return "\n".join(rows)


def test_log_redaction_blanks_numbers_but_not_ids_or_times():
    line = (
        "rota.yaml:12: staff 'ben': phone '086 765 4321' invalid; +447700900123 and "
        "447700900123 at 2026-11-02 09:00:00 for message SM0123456789abcdef0123 step 12"
    )
    cleaned = redact(line)
    assert "765 4321" not in cleaned and "447700900123" not in cleaned
    assert "2026-11-02 09:00:00" in cleaned and "SM0123456789abcdef0123" in cleaned
    assert "step 12" in cleaned
