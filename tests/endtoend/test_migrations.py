"""The schema under Alembic: a release 0.1 database upgrades with its log intact, models and
migrations agree, stale databases are refused, and concurrent upgraders apply once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fixtures import release_0_1
from harness import ROOT, SECRET, Hotline, free_port, hotline_cli, wait_until
from sqlalchemy import Column, MetaData, String, text
from sqlmodel import Session, SQLModel, select

from hotline import migrate
from hotline.crypto import SEALED
from hotline.db import make_engine, vault_on
from routing import tables  # noqa: F401  (registers the tables in SQLModel.metadata)
from routing.datakeys import unseal
from routing.tables import Incident, Message

HEAD = migrate.head()


def hotline_clis(
    env: dict[str, str], *commands: tuple[str, ...]
) -> list[subprocess.CompletedProcess]:
    """`hotline_cli` for commands that only read, run side by side (each starts a Python)."""
    with ThreadPoolExecutor(len(commands)) as pool:
        return list(pool.map(lambda args: hotline_cli(env, *args), commands))


def counts(engine) -> dict[str, int]:  # noqa: ANN001
    with engine.connect() as connection:
        return {
            table: connection.execute(text(f'SELECT count(*) FROM "{table}"')).scalar_one()
            for table in migrate.BASELINE_TABLES
        }


def version_rows(engine) -> list[str]:  # noqa: ANN001
    with engine.connect() as connection:
        return list(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())


@pytest.fixture
def engine(database_url):
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def release_0_1_db(engine):
    """The database as release 0.1 left it (tests/fixtures/release_0_1.py)."""
    with engine.begin() as connection:
        release_0_1.load(connection)
    return engine


@pytest.fixture
def deployment(tmp_path, database_url, redis_url, fake_twilio):
    """A configured (not started) hotline on `database_url`: its env is what processes get."""
    hotline = Hotline(
        tmp_path, database_url=database_url, redis_url=redis_url, fake=fake_twilio, rota=_rota()
    )
    yield hotline
    hotline.stop()


def _rota() -> str:
    from conftest import rota_text

    return rota_text()


# --- 1. release 0.1's log survives the upgrade, readable through the application -----------


def test_release_0_1_database_upgrades_with_every_row_readable(release_0_1_db, deployment):
    assert release_0_1.SECRET_KEY == SECRET  # the fixture's ciphertexts open with our key
    engine, env = release_0_1_db, deployment.env
    before = counts(engine)
    assert before == {
        table: sum(1 for name, _ in release_0_1.ROWS if name == table)
        for table in migrate.BASELINE_TABLES
    }

    behind = hotline_cli(env, "db", "current")
    assert behind.returncode == 1, behind.stderr
    assert "release 0.1" in behind.stdout and "hotline db upgrade" in behind.stdout

    upgraded = hotline_cli(env, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout.strip() == f"database schema upgraded: (none) -> {HEAD}"
    assert hotline_cli(env, "db", "current").stdout.strip() == f"{HEAD} (head)"
    assert counts(engine) == before  # stamped, not re-created: every row is still there
    assert version_rows(engine) == [HEAD]

    listed, shown, one = hotline_clis(
        env,
        ("incidents", "--status", "all", "--json"),
        ("incident", "2", "--json"),
        ("incident", "1"),
    )
    assert listed.returncode == 0, listed.stderr
    rows = {row["number"]: row for row in json.loads(listed.stdout)}
    assert sorted(rows) == [1, 2, 3, 4]
    assert [rows[n]["status"] for n in (1, 2, 3, 4)] == [
        "open",
        "acknowledged",
        "resolved",
        "resolved",
    ]
    assert [rows[n]["channel"] for n in (1, 2, 3)] == ["sms", "whatsapp", "voice"]
    assert [rows[n]["language"] for n in (1, 2, 3)] == ["en", "fr", "es"]
    for number, (_address, masked) in release_0_1.DEFENDERS.items():
        assert rows[number]["defender"] == masked  # decrypted with the key, then masked
    assert rows[4]["defender"] == "erased"
    assert rows[2]["opened_at"] == "2026-03-01T11:00:00+00:00"
    assert rows[2]["first_paged_at"] == "2026-03-01T11:00:01+00:00"
    assert rows[2]["acknowledged_at"] == "2026-03-01T11:03:00+00:00"
    assert rows[2]["acknowledged_by"] == "amina" and rows[2]["seconds_to_ack"] == 180.0
    assert rows[3]["resolved_by"] == "ben"

    assert shown.returncode == 0, shown.stderr
    two = json.loads(shown.stdout)
    texts = [m["text"] for m in two["messages"]]
    assert "Ils ont pris mon ordinateur" in texts and "Nous arrivons, restez calme" in texts
    assert [e["kind"] for e in two["events"]] == ["opened", "paged", "acknowledged", "relayed"]
    assert [(p["staff"], p["method"], p["status"]) for p in two["pages"]] == [
        ("amina", "sms", "delivered")
    ]

    assert one.returncode == 0, one.stderr
    assert "from +44*****111" in one.stdout and "Police at my door, please help" in one.stdout
    assert "+447700900111" not in one.stdout

    # and the application goes on writing to it: the keyed hashes of 0.1 still thread a
    # defender's new message into their open incident, and a new defender gets #5
    hotline = deployment.start()
    assert hotline.sms(release_0_1.DEFENDERS[1][0], "still here").status == 200
    assert hotline.sms("+447700900555", "they are outside").status == 200
    inbound = hotline.messages(direction="in")
    assert [m.incident_id for m in inbound[-2:]] == [1, 5]
    assert hotline.unseal(hotline.incident(3), "defender") == release_0_1.DEFENDERS[3][0]


def test_db_upgrade_seals_release_0_1_values_under_data_keys(release_0_1_db, deployment):
    engine, env = release_0_1_db, deployment.env
    upgraded = hotline_cli(env, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "sealed" in upgraded.stderr and "under data keys" in upgraded.stderr
    with Session(engine) as session:
        incidents = session.exec(select(Incident).where(Incident.defender_enc.is_not(None))).all()
        messages = session.exec(select(Message).where(Message.body_enc.is_not(None))).all()
    vault = vault_on(engine, [SECRET])
    assert incidents and messages
    columns = ("defender_enc", "address_enc", "body_enc")
    for row in (*incidents, *messages):
        tokens = [getattr(row, name) for name in columns if hasattr(row, name)]
        assert row.key_id and all(t is None or t.startswith(SEALED) for t in tokens)
    assert [unseal(vault, i, "defender") for i in incidents] == [
        address for address, _ in release_0_1.DEFENDERS.values()
    ]
    again = hotline_cli(env, "rekey")
    assert "Re-encrypted 0 value(s)" in again.stdout  # idempotent
    assert "sealed" not in hotline_cli(env, "db", "upgrade").stderr
    shown = json.loads(hotline_cli(env, "incident", "2", "--json").stdout)
    assert "Ils ont pris mon ordinateur" in [m["text"] for m in shown["messages"]]


# --- 2. models and migrations agree -----------------------------------------------------------


def test_models_and_migrations_agree(engine):
    migrate.upgrade(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []

        # the comparison sees a model change that has no migration (so the line above can fail)
        changed = MetaData()
        for table in SQLModel.metadata.sorted_tables:
            table.to_metadata(changed)
        changed.tables["incident"].append_column(Column("escalated_by", String, nullable=True))
        diff = compare_metadata(context, changed)
    assert [(op[0], op[3].name) for op in diff] == [("add_column", "escalated_by")]


def test_the_baseline_is_release_0_1s_schema(tmp_path):
    """Migrating an empty database to the baseline gives what release 0.1's create_all gave
    (the fixture), on SQLite, which keeps each table's and index's CREATE text verbatim."""
    old, fresh = (make_engine(f"sqlite:///{tmp_path / name}") for name in ("old.db", "new.db"))
    try:
        with old.begin() as connection:
            release_0_1.load(connection)
        with fresh.begin() as connection:
            command.upgrade(migrate.alembic_config(connection), migrate.BASELINE)
        assert _schema_sql(fresh) == _schema_sql(old)
    finally:
        old.dispose()
        fresh.dispose()


def _schema_sql(engine) -> list[str]:  # noqa: ANN001
    with engine.connect() as connection:
        return sorted(
            connection.execute(
                text(
                    "SELECT sql FROM sqlite_master "
                    "WHERE sql IS NOT NULL AND name != 'alembic_version'"
                )
            ).scalars()
        )


# --- 3. stale databases are refused; legacy ones stamped; concurrent upgraders apply once -----


@pytest.mark.one_database  # an end-to-end scenario (tests/conftest.py)
@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["worker"]])
def test_serve_and_worker_refuse_a_database_that_is_behind(deployment, command):
    refused = hotline_cli(deployment.env, *command, timeout=30)
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "`hotline db upgrade`" in lines[0], refused.stderr
    assert refused.stdout == ""


def test_db_current_says_behind_until_upgraded(engine, deployment):
    behind = hotline_cli(deployment.env, "db", "current")
    assert behind.returncode == 1
    assert behind.stdout.strip() == (
        f"none (empty database): behind head {HEAD}; run `hotline db upgrade`"
    )
    assert migrate.current(engine) == (None, HEAD, True, False, False)
    migrate.upgrade(engine)
    at_head = hotline_cli(deployment.env, "db", "current")
    assert (at_head.returncode, at_head.stdout.strip()) == (0, f"{HEAD} (head)")
    assert migrate.current(engine)[:3] == (HEAD, HEAD, False)


def test_a_release_0_1_database_is_stamped_not_recreated(release_0_1_db):
    engine = release_0_1_db
    before = counts(engine)
    assert migrate.current(engine).legacy
    assert migrate.upgrade(engine) == (None, HEAD)
    assert counts(engine) == before and version_rows(engine) == [HEAD]
    assert migrate.upgrade(engine) == (HEAD, HEAD)  # and again: nothing to do


def test_a_partial_database_is_not_mistaken_for_release_0_1(engine):
    with engine.begin() as connection:
        connection.exec_driver_sql(release_0_1.DDL[engine.dialect.name][0])  # one table only
    with pytest.raises(migrate.SchemaError, match="not made by a hotline release"):
        migrate.upgrade(engine)
    with engine.connect() as connection:
        assert not connection.dialect.has_table(connection, "alembic_version")


def test_concurrent_upgrades_both_succeed_and_apply_once(database_url):
    engines = [make_engine(database_url) for _ in range(2)]
    start = threading.Barrier(len(engines))
    results: list[tuple] = []
    errors: list[BaseException] = []

    def upgrader(engine) -> None:  # noqa: ANN001
        try:
            start.wait()
            results.append(migrate.upgrade(engine))
        except BaseException as exc:  # reported below, with the other thread's outcome
            errors.append(exc)

    threads = [threading.Thread(target=upgrader, args=(e,)) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    try:
        assert errors == []
        assert sorted(results, key=lambda r: r[0] or "") == [(None, HEAD), (HEAD, HEAD)]
        assert version_rows(engines[0]) == [HEAD]
    finally:
        for engine in engines:
            engine.dispose()


def test_a_database_ahead_of_this_release_is_used_not_upgraded(engine):
    """A newer release migrated it; this one keeps running (expand/contract, README)."""
    migrate.upgrade(engine)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    state = migrate.current(engine)
    assert (state.revision, state.behind, state.ahead) == ("9999_from_the_future", False, True)
    migrate.require_current(engine)  # does not raise
    assert migrate.upgrade(engine) == ("9999_from_the_future", "9999_from_the_future")


@pytest.mark.one_database  # an end-to-end scenario (tests/conftest.py)
@pytest.mark.slow
def test_hotline_run_upgrades_its_own_database(tmp_path, deployment, engine):
    env = {k: v for k, v in deployment.env.items() if k != "REDIS_URL"}  # embedded Redis
    port = free_port()
    log = open(tmp_path / "run.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "hotline", "run", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def serving() -> bool:
        if proc.poll() is not None:
            raise RuntimeError((tmp_path / "run.log").read_text())
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
        except urllib.error.HTTPError:
            return True  # 503 before the worker's first heartbeat: serve is up all the same
        except OSError:
            return False
        return True

    try:
        wait_until(serving, timeout=60, what="hotline run to serve", interval=0.2)
        assert migrate.current(engine)[:3] == (HEAD, HEAD, False)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


# --- 3. the one intake over release 0.1's split incidents -----------------------------------


def test_sms_and_whatsapp_incidents_of_one_number_upgrade_and_stay_one_person(
    release_0_1_db, deployment
):
    """Release 0.1 opened two incidents for one person who texted by SMS and by WhatsApp
    (their hashes differed by the `whatsapp:` prefix). After the upgrade both stay readable,
    and the person's next messages, on either channel, join one of them: no third incident."""
    from hotline.crypto import Vault

    vault, number = Vault((SECRET,)), "+447700900199"
    with release_0_1_db.begin() as connection:
        for incident_id, address, when in (
            (5, number, "2026-03-02 09:00:00"),
            (6, f"whatsapp:{number}", "2026-03-02 09:05:00"),
        ):
            connection.execute(
                text(
                    "INSERT INTO incident (id, status, channel, language, defender_hash, "
                    "defender_enc, opened_at, next_step, next_step_at, silent) "
                    "VALUES (:id, 'open', :channel, 'en', :hash, :enc, :at, 1, :at, false)"
                ),
                {
                    "id": incident_id,
                    "channel": address.split(":")[0] if ":" in address else "sms",
                    "hash": vault.lookup_hash(address),
                    "enc": vault.encrypt(address),
                    "at": release_0_1._value("opened_at", when, release_0_1_db.dialect.name),
                },
            )
    upgraded = hotline_cli(deployment.env, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    listed = hotline_cli(deployment.env, "incidents", "--status", "all", "--json")
    rows = {row["number"]: row for row in json.loads(listed.stdout)}
    assert (rows[5]["channel"], rows[5]["defender"]) == ("sms", "+44*****199")
    assert (rows[6]["channel"], rows[6]["defender"]) == ("whatsapp", "whatsapp:+44*****199")

    hotline = deployment.start()
    if hotline.engine_dialect() == "postgresql":  # serials continue after the inserted ids
        with hotline.rt.engine.begin() as connection:
            connection.execute(text("SELECT setval(pg_get_serial_sequence('incident', 'id'), 6)"))
    assert hotline.sms(number, "by sms again").status == 200
    assert hotline.sms(f"whatsapp:{number}", "and by whatsapp").status == 200
    joined = [m.incident_id for m in hotline.messages(direction="in")[-2:]]
    assert joined == [5, 5], "the oldest of the person's incidents takes every channel"
    assert len(hotline.incidents()) == 6
