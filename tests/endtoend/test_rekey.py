"""Key rotation: old data keeps working under "new,old", and after `hotline rekey` it all
opens with the new key alone."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from harness import SECRET, hotline_cli
from sqlalchemy import select
from sqlmodel import SQLModel

import oncall
from hotline.crypto import Vault
from hotline.db import vault_on
from hotline.settings import load_settings
from routing.tables import KeyCheck

# end-to-end scenarios: each runs on one database (tests/conftest.py)
pytestmark = pytest.mark.one_database

NEW_KEY = "new-secret-key-fedcba9876543210abc"
OLD_DEFENDER = "+447700900101"
BLOCKED = "+447700900102"


def restart_with_keys(hotline, keys: str) -> None:
    hotline.stop()
    hotline.env["HOTLINE_SECRET_KEY"] = keys
    hotline.settings = load_settings(hotline.env)
    hotline.start()


def every_encrypted_value(hotline) -> list[tuple[str | None, str, str]]:
    """(data key, column, value) of every encrypted value; the rota's copy has no data key."""
    values = []
    with hotline.rt.engine.connect() as connection:
        for table in SQLModel.metadata.sorted_tables:
            key = table.columns.get("key_id")
            for column in table.columns:
                if column.name.endswith("_enc"):
                    where = f"{table.name}.{column.name.removesuffix('_enc')}"
                    rows = connection.execute(select(key if key is not None else None, column))
                    values += [(k, where, v) for k, v in rows if v]
    return values


def test_rotation_keeps_old_data_working_and_rekey_moves_it_to_the_new_key(hotline):
    l1 = oncall.who_is_on_call(hotline.rt.rota.current(), datetime.now(UTC))[0].staff[0].phone
    hotline.sms(OLD_DEFENDER, "arrested at the border")
    hotline.sms(BLOCKED, "spam")
    hotline.sms(l1, "BLOCK 2")
    hotline.sms(l1, "RESOLVE 2")

    restart_with_keys(hotline, f"{NEW_KEY},{SECRET}")
    hotline.sms(OLD_DEFENDER, "they took my phone")  # joins the incident opened under the old key
    assert len(hotline.incidents()) == 2
    assert "<Message>" not in hotline.sms(BLOCKED, "spam again").body  # old-key block holds
    assert len(hotline.incidents()) == 2

    result = hotline.cli("rekey")
    assert result.returncode == 0, result.stderr
    assert "remove the old key" in result.stdout
    again = hotline.cli("rekey")
    assert "Re-encrypted 0 value(s) and recomputed 0 lookup hash(es) and 0 block(s)" in again.stdout

    restart_with_keys(hotline, NEW_KEY)
    new_only = vault_on(hotline.rt.engine, [NEW_KEY])
    values = every_encrypted_value(hotline)
    assert len(values) > 10
    # raises if any did not open; every personal value is under a data key now
    assert all(new_only.open(*value) is not None for value in values)
    assert all(key for key, where, _ in values if not where.startswith("rotaversion"))
    hotline.sms(OLD_DEFENDER, "still here")
    hotline.sms(BLOCKED, "spam once more")
    assert len(hotline.incidents()) == 2
    assert [m.incident_id for m in hotline.messages(direction="in", purpose="defender")] == [
        1,
        2,
        1,
        None,
        1,
        None,
    ]
    assert hotline.rt.rota.current()  # the stored rota copy opens too
    listed = json.loads(hotline.cli("incidents", "--json").stdout)
    assert listed[0]["defender"] == "+44*****101"


def test_rekey_with_one_key_changes_nothing(hotline):
    hotline.sms(OLD_DEFENDER, "help")
    result = hotline.cli("rekey")
    assert result.returncode == 0
    assert "Re-encrypted 0 value(s) and recomputed 0 lookup hash(es)" in result.stdout


def key_check(hotline) -> tuple[str, ...]:
    with hotline.rt.engine.connect() as connection:
        return tuple(connection.execute(select(KeyCheck.value)).scalars())


def test_a_key_that_is_not_the_datas_stops_each_process_with_one_line(hotline):
    hotline.sms(OLD_DEFENDER, "arrested at the border")
    assert hotline.cli("incidents").returncode == 0  # records the key the data is under
    recorded = key_check(hotline)
    assert recorded == (Vault([SECRET]).check_values()[0],)
    events = len(hotline.events())

    other = hotline_cli({"HOTLINE_SECRET_KEY": "k" * 32}, "keygen").stdout.strip()
    assert len(other) == 43 and other != hotline_cli({}, "keygen").stdout.strip()
    wrong = {**hotline.env, "HOTLINE_SECRET_KEY": other}
    for command in (("purge",), ("incidents",), ("rekey",), ("worker",)):
        result = hotline_cli(wrong, *command, timeout=30)
        assert result.returncode == 2, (command, result.stderr)
        [line] = result.stderr.strip().splitlines()
        assert "HOTLINE_SECRET_KEY does not match the data in this database" in line
    assert (len(hotline.events()), key_check(hotline)) == (events, recorded), "nothing written"

    # rotating: new key first, the data's key after it; rekey moves the check to the new key
    rotating = {**hotline.env, "HOTLINE_SECRET_KEY": f"{other},{SECRET}"}
    assert hotline_cli(rotating, "rekey").returncode == 0
    assert key_check(hotline) == (Vault([other]).check_values()[0],)
    assert hotline_cli(hotline.env, "incidents").returncode == 2  # the old key alone: refused


def test_a_short_key_is_refused_with_the_command_that_makes_one(hotline):
    result = hotline_cli({**hotline.env, "HOTLINE_SECRET_KEY": "x" * 31}, "incidents")
    assert result.returncode == 2
    assert "at least 32 characters" in result.stderr and "hotline keygen" in result.stderr
