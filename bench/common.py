"""Shared helpers for the benchmarks: a hotline of real processes, signed webhooks, statistics.

A `BenchHotline` is one throw-away deployment: its own folder (config.yaml, rota.yaml, logs),
its own database (a SQLite file, or a PostgreSQL schema in the `test` database that is dropped
afterwards), our own Redis database (flushed: it is ours), the fake Twilio API served from this
(the driver) process, optionally slowed down to answer like the real one (`twilio_latency`),
and real processes: `hotline serve` (gunicorn) and `hotline worker`.
Every process is started in its own session so that stopping or killing it takes its children
(web processes, the RQ scheduler) with it. Nothing here is imported by the product.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import psutil
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from twilio.request_validator import RequestValidator

# `python -m bench` runs from the repository's root, where tests/ is importable as a package;
# the fake's own modules import each other as the tests do (tests/ on the path)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from tests.fake_twilio import FakeMessage, FakeTwilio  # noqa: E402
from tests.harness import wait_until  # noqa: E402, F401  (scenarios import it from here)

ROOT = Path(__file__).resolve().parent.parent

T = TypeVar("T")
PYTHON = sys.executable
SECRET = "bench-secret-key-0123456789abcdef"
NUMBER = "+35312100489"
DEFAULT_REDIS_URL = ""  # empty: a private redis-server started for the run (see own_redis)
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
QUEUE_LOCK_KEY = "rq:scheduler-lock:hotline"
# A page (routing.texts.page_text): "#17 SMS +44*****123: <words> ACK 17 | R17 text | PASS 17",
# "NOBODY ACKED #17 …" at the fallback. Not a stand-down ("#17 resolved by …"), a relay, or a
# surge digest ("Hotline surge: … #40 #41 …"), which names many incidents and pages none alone.
PAGE = re.compile(r"(?:NOBODY ACKED )?#(\d+) .*\bPASS \1\Z", re.DOTALL)
DIGEST_PREFIX = "Hotline surge:"

# One staff member per rotation, so the level of a page is known from its recipient. Staff are
# Irish mobiles (+353 86…); defenders in the benchmarks are +44 7700 numbers: they never collide.
STAFF = {
    "primary": ("pia", "+353861000001"),
    "backup": ("bo", "+353861000002"),
    "fallback": ("fay", "+353861000003"),
}


def rota_text(wait1: str = "30m", wait2: str = "30m") -> str:
    """A rota with level 1 (`pia`), level 2 (`bo`) and a fallback (`fay`), no repeats."""
    staff = "\n".join(
        f'  {sid}: {{name: {sid.title()}, phone: "{phone}", languages: [en]}}'
        for sid, phone in STAFF.values()
    )
    return (
        "timezone: Europe/Dublin\n"
        "default_region: IE\n"
        f"staff:\n{staff}\n"
        "rotations:\n"
        f'  primary: {{members: [{STAFF["primary"][0]}], shift: 1w, handoff: "2026-01-05 09:00"}}\n'
        f'  backup:  {{members: [{STAFF["backup"][0]}], shift: 1w, handoff: "2026-01-05 09:00"}}\n'
        "escalation:\n"
        f"  - {{notify: primary, wait: {wait1}}}\n"
        f"  - {{notify: backup,  wait: {wait2}}}\n"
        "repeat: 0\n"
        f"fallback: [{STAFF['fallback'][0]}]\n"
    )


def staff_of(phone: str) -> str:
    """The staff id a page was sent to (or the number itself for anyone else)."""
    for sid, number in STAFF.values():
        if number == phone:
            return sid
    return phone


def sender_number(index: int) -> str:
    """A distinct defender number for each index (0 … 999,999), never a staff number."""
    return f"+447700{index:06d}"


# --------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100) by linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


# fewer samples than this give no percentile: the max and n are reported instead (a "p99" of
# five samples is their largest, wearing a name it has not earned)
MIN_FOR_PERCENTILES = 100


def tail(stats: dict[str, float]) -> float:
    """What a tail target is judged on: the p99, or the max when there are too few samples."""
    return stats["p99"] if stats["n"] >= MIN_FOR_PERCENTILES else stats["max"]


def tail_text(stats: dict[str, float]) -> str:
    """`p99 18 ms`, or `max 172 ms (n=5)` when there are too few samples for a p99."""
    if stats["n"] >= MIN_FOR_PERCENTILES:
        return f"p99 {stats['p99']:,.0f} ms"
    return f"max {stats['max']:,.0f} ms (n={stats['n']:,})"


def summary(values: Sequence[float], scale: float = 1000.0) -> dict[str, float]:
    """n, p50, p99, max and min of `values` (seconds), times `scale` (default: milliseconds)."""
    values = list(values)
    if not values:
        return {"n": 0, "p50": math.nan, "p99": math.nan, "max": math.nan, "min": math.nan}
    return {
        "n": len(values),
        "p50": percentile(values, 50) * scale,
        "p99": percentile(values, 99) * scale,
        "max": max(values) * scale,
        "min": min(values) * scale,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------- webhooks


def sms_params(sid: str, sender: str, body: str, account_sid: str) -> dict[str, str]:
    """The form Twilio posts to `/twilio/sms` for a plain SMS."""
    return {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": account_sid,
        "From": sender,
        "To": NUMBER,
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
    }


def new_sid() -> str:
    return "SM" + uuid.uuid4().hex


def signed_post(url: str, params: dict[str, str], token: str, timeout: float = 10.0) -> int:
    """POST a webhook signed as Twilio would; returns the HTTP status."""
    signature = RequestValidator(token).compute_signature(url, params)
    request = urllib.request.Request(
        url,
        data=urllib.parse.urlencode(params).encode(),
        method="POST",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


# --------------------------------------------------------------------------- processes


_LIVE: set[Proc] = set()


def stop_all() -> None:
    """Stop every process the benchmark started and has not stopped (at exit, or on Ctrl-C)."""
    for proc in list(_LIVE):
        proc.stop(timeout=5)


atexit.register(stop_all)


class Proc:
    """A child process in its own session, logging to a file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path):
        self.name, self.argv, self.log_path = name, argv, log_path
        self._log = open(log_path, "w")  # noqa: SIM115
        self.popen = subprocess.Popen(
            argv,
            env=env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _LIVE.add(self)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tree(self) -> list[psutil.Process]:
        """This process and its descendants (web processes, the RQ scheduler)."""
        try:
            root = psutil.Process(self.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text().splitlines()[-lines:])
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL the whole process group, as a crash or the OOM killer would."""
        self._signal_group(signal.SIGKILL)
        self.popen.wait()

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the group, then SIGKILL whatever is left after `timeout`."""
        if self.alive():
            self._signal_group(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.popen.wait()
        self._signal_group(signal.SIGKILL)  # leftovers of the session, if any
        self._log.close()
        _LIVE.discard(self)

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)


def peak_rss_mb(proc: psutil.Process) -> float:
    """The process's peak resident set size so far (VmHWM), in MiB; NaN when it is gone."""
    try:
        with open(f"/proc/{proc.pid}/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return math.nan


@dataclass
class Options:
    """What `python -m bench` was asked for."""

    quick: bool = False
    redis_url: str = DEFAULT_REDIS_URL
    postgres_url: str = DEFAULT_POSTGRES_URL
    keep: bool = False
    # seconds the fake Twilio holds back each REST answer; None: each scenario's own default
    # (0, except the scenarios that are about a slow API)
    twilio_latency: float | None = None

    def latency_or(self, default: float) -> float:
        """The `--twilio-latency` asked for, else the scenario's `default`."""
        return default if self.twilio_latency is None else self.twilio_latency

    def hotline_kwargs(self, **extra: Any) -> dict[str, Any]:
        """BenchHotline keyword arguments for these options (`extra` overrides them)."""
        return {
            "redis_url": self.redis_url,
            "postgres_url": self.postgres_url,
            "keep": self.keep,
            "twilio_latency": self.latency_or(0.0),
            **extra,
        }


def own_redis(folder: Path) -> tuple[Proc, str]:
    """A private `redis-server` on a free loopback port, without persistence, for one run:
    nobody else's jobs can land on our queue, and flushing it touches nobody's data."""
    binary = shutil.which("redis-server") or str(Path(PYTHON).parent / "redis-server")
    port = free_port()
    proc = Proc(
        "redis",
        [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
        ],
        dict(os.environ),
        folder / "redis.log",
    )
    url = f"redis://127.0.0.1:{port}/0"

    def up() -> bool:
        if not proc.alive():
            raise RuntimeError(f"redis-server exited:\n{proc.log_tail()}")
        try:
            return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
        except redis.ConnectionError:
            return False

    wait_until(up, 10, "redis-server")
    return proc, url


# --------------------------------------------------------------------------- databases


@dataclass
class Database:
    """A database of our own: a SQLite file in `folder`, or a fresh PostgreSQL schema, with the
    schema made by the migrations, as an operator's `hotline db upgrade` would."""

    kind: str  # sqlite | postgresql
    folder: Path
    postgres_url: str = DEFAULT_POSTGRES_URL
    url: str = ""
    schema: str | None = None

    def create(self) -> str:
        if self.kind == "sqlite":
            self.url = f"sqlite:///{self.folder / 'hotline.db'}"
        else:
            import psycopg

            self.schema = f"bench_{secrets.token_hex(5)}"
            with psycopg.connect(_plain(self.postgres_url), autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{self.schema}"')
            sep = "&" if "?" in self.postgres_url else "?"
            self.url = f"{self.postgres_url}{sep}options=-csearch_path%3D{self.schema}"
        _upgrade(self.url)
        return self.url

    def drop(self) -> None:
        if self.schema is None:
            return
        import psycopg

        with psycopg.connect(_plain(self.postgres_url), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
        self.schema = None


def _upgrade(url: str) -> None:
    """`hotline db upgrade` for `url` (serve and worker refuse a database that is behind)."""
    from hotline.db import make_engine
    from hotline.migrate import upgrade

    engine = make_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


# --------------------------------------------------------------------------- the hotline


@dataclass
class BenchHotline:
    """One deployment under test. Use as a context manager; `stop()` cleans everything up."""

    db_kind: str
    rota: str = field(default_factory=rota_text)
    redis_url: str = DEFAULT_REDIS_URL
    postgres_url: str = DEFAULT_POSTGRES_URL
    keep: bool = False
    twilio_latency: float = 0.0  # seconds the fake holds back each REST answer

    def __post_init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="hotline-bench-"))
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.sms_url = self.base_url + "/twilio/sms"
        self.fake = FakeTwilio(
            auth_token="bench-auth-token-" + secrets.token_hex(4), latency=self.twilio_latency
        ).start()
        self.database = Database(self.db_kind, self.dir, postgres_url=self.postgres_url)
        (self.dir / "rota.yaml").write_text(self.rota)
        (self.dir / "config.yaml").write_text(
            f'hotline:\n  number: "{NUMBER}"\n  languages: [en]\n  auto_reply: true\n'
            "  reveal_numbers: false\nretention_days: 90\nrota_file: rota.yaml\n"
        )
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("TWILIO_")},
            "HOTLINE_CONFIG": str(self.dir / "config.yaml"),
            "HOTLINE_INSTANCE_DIR": str(self.dir / "instance"),
            "DATABASE_URL": self.database.create(),
            "REDIS_URL": self.redis_url,
            "TWILIO_ACCOUNT_SID": self.fake.account_sid,
            "TWILIO_AUTH_TOKEN": self.fake.auth_token,
            "TWILIO_API_BASE_URL": self.fake.base_url,
            "HOTLINE_PUBLIC_URL": self.base_url,
            "HOTLINE_SECRET_KEY": SECRET,
            "PYTHONUNBUFFERED": "1",
        }
        connection = redis.Redis.from_url(self.redis_url)
        connection.flushdb()  # our own database number: see DEFAULT_REDIS_URL
        connection.close()
        self.redis = redis.Redis.from_url(self.redis_url)
        self.web: Proc | None = None
        self.workers: list[Proc] = []
        self._engine: Engine | None = None
        self._count = 0

    def __enter__(self) -> BenchHotline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def token(self) -> str:
        return self.fake.auth_token

    def _proc(self, name: str, argv: list[str]) -> Proc:
        self._count += 1
        return Proc(name, argv, self.env, self.dir / f"{self._count:02d}-{name}.log")

    def start_web(self, workers: int = 2) -> Proc:
        """`hotline serve` (gunicorn, gthread workers) on our port; returns once it answers HTTP."""
        self.web = self._proc(
            "web",
            [
                PYTHON,
                "-m",
                "hotline",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
            ],
        )
        wait_for_http(self.base_url + "/healthz", self.web, timeout=60)
        # the server answers as soon as one process is up: wait for all of them
        wait_until(lambda: len(self.web.tree()) >= workers + 1, 30, "web processes")
        return self.web

    def start_bare(self, workers: int = 2) -> Proc:
        """The baseline (bench.bare_app) on our port, under the same server config."""
        self.web = self._proc(
            "bare",
            [PYTHON, "-m", "bench.bare_app", "--port", str(self.port), "--workers", str(workers)],
        )
        wait_for_http(self.base_url + "/healthz", self.web, timeout=60)
        wait_until(lambda: len(self.web.tree()) >= workers + 1, 30, "web processes")
        return self.web

    def start_worker(self, wait: bool = True) -> Proc:
        """A `hotline worker`; with `wait`, returns once its sweeper wrote a heartbeat."""
        worker = self._proc(f"worker{len(self.workers) + 1}", [PYTHON, "-m", "hotline", "worker"])
        self.workers.append(worker)
        if wait:

            def beating() -> bool:
                if not worker.alive():
                    raise RuntimeError(f"worker exited:\n{worker.log_tail()}")
                try:
                    return (
                        self.scalar(
                            "SELECT count(*) FROM workerheartbeat WHERE name = :name",
                            name=f"{socket.gethostname()}.{worker.pid}",
                        )
                        > 0
                    )
                except Exception:  # the tables are not there yet
                    return False

            wait_until(beating, 60, "worker heartbeat", interval=0.1)
            wait_until(
                lambda: len(worker.tree()) >= 2 or self.redis.exists(QUEUE_LOCK_KEY),
                10,
                "RQ scheduler",
            )
        return worker

    def scheduler_holder(self) -> Proc | None:
        """The worker whose RQ scheduler child holds the queue's scheduler lock."""
        for worker in self.workers:
            if worker.alive() and len(worker.tree()) >= 2:
                return worker
        return None

    # --- reading the database (a plain engine: reads must not take SQLite's write lock) ---

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = (
                create_engine(self.database.url, pool_size=2)
                if self.db_kind != "sqlite"
                else create_engine(self.database.url)
            )
        return self._engine

    def rows(self, sql: str, **params: Any) -> list[tuple]:
        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql), params)]

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def first_sid_by_incident(self) -> dict[int, str]:
        """Incident number -> MessageSid of the defender message that opened it."""
        result: dict[int, str] = {}
        for incident_id, sid in self.rows(
            "SELECT incident_id, sid FROM message WHERE direction = 'in' "
            "AND incident_id IS NOT NULL ORDER BY id"
        ):
            result.setdefault(incident_id, sid)
        return result

    def pages(self, staff: str | None = None) -> list[tuple[int, FakeMessage]]:
        """(incident number, message) of every page the fake Twilio accepted (to `staff`
        only, if given), oldest first. Digests, stand-downs and relays are not pages."""
        phone = dict(STAFF.values()).get(staff) if staff else None
        found = []
        for message in self.fake.messages:
            if phone and message.to != phone:
                continue
            match = PAGE.match(message.body or "")
            if match:
                found.append((int(match.group(1)), message))
        return found

    def digests(self, staff: str | None = None) -> list[FakeMessage]:
        """Every surge digest the fake Twilio accepted (to `staff` only, if given)."""
        phone = dict(STAFF.values()).get(staff) if staff else None
        return [
            m
            for m in self.fake.messages
            if (m.body or "").startswith(DIGEST_PREFIX) and (phone is None or m.to == phone)
        ]

    def stop(self) -> None:
        for proc in [*self.workers, *([self.web] if self.web else [])]:
            proc.stop()
        if self._engine is not None:
            self._engine.dispose()
        self.redis.flushdb()
        self.redis.close()
        self.fake.stop()
        try:
            self.database.drop()
        finally:
            if not self.keep:
                shutil.rmtree(self.dir, ignore_errors=True)


def wait_for_http(url: str, proc: Proc | None, timeout: float) -> None:
    """Until `url` answers any HTTP status (a 503 from /healthz is an answer)."""

    def answers() -> bool:
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{proc.name} exited:\n{proc.log_tail()}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False

    wait_until(answers, timeout, url, interval=0.1)


# --------------------------------------------------------------------------- load generator


@dataclass
class LoadResult:
    """What `bench.loadgen` measured: one row per request."""

    sids: list[str]
    t_sched: list[float]  # monotonic (system-wide on Linux, so comparable across processes)
    t_send: list[float]
    t_done: list[float]
    status: list[int]
    elapsed: float
    extra: dict[str, Any]

    @property
    def ok(self) -> int:
        return sum(1 for s in self.status if s == 200)

    @property
    def errors(self) -> int:
        return sum(1 for s in self.status if s != 200)

    @property
    def throughput(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    def latencies(self, from_schedule: bool = False) -> list[float]:
        """Seconds from send (or, open loop, from the planned send time) to the response."""
        start = self.t_sched if from_schedule else self.t_send
        return [
            d - s for s, d, st in zip(start, self.t_done, self.status, strict=True) if st == 200
        ]

    def sent_at(self) -> dict[str, float]:
        return dict(zip(self.sids, self.t_send, strict=True))


def run_load(
    url: str,
    token: str,
    account_sid: str,
    *,
    mode: str,
    count: int,
    senders: int,
    sender_base: int,
    concurrency: int = 16,
    rate: float = 0.0,
    duration: float = 60.0,
    body: str = "help police at my door",
    scratch: Path | None = None,
) -> LoadResult:
    """Run `python -m bench.loadgen` in its own process and read back what it measured.

    mode "closed": `concurrency` requests in flight at all times, until `count` were sent or
    `duration` seconds passed. mode "open": one request every 1/`rate` s regardless of
    responses (at most `count`, and never past `duration`). Message i comes from sender
    `sender_base + i % senders`.
    """
    out = Path(tempfile.mkstemp(prefix="loadgen-", suffix=".json", dir=scratch)[1])
    argv = [
        PYTHON,
        "-m",
        "bench.loadgen",
        "--url",
        url,
        "--token",
        token,
        "--account-sid",
        account_sid,
        "--mode",
        mode,
        "--count",
        str(count),
        "--senders",
        str(senders),
        "--sender-base",
        str(sender_base),
        "--concurrency",
        str(concurrency),
        "--rate",
        str(rate),
        "--duration",
        str(duration),
        "--body",
        body,
        "--out",
        str(out),
    ]
    try:
        subprocess.run(argv, cwd=ROOT, check=True, timeout=duration + 120)
        data = json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)
    return LoadResult(
        data["sids"],
        data["t_sched"],
        data["t_send"],
        data["t_done"],
        data["status"],
        data["elapsed"],
        data.get("extra", {}),
    )


def fmt_ms(value: float) -> str:
    return (
        "–"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{value:,.0f}"
        if value >= 100
        else f"{value:.1f}"
    )


def counted(items: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return dict(sorted(out.items()))


def first_page_latencies(
    hotline: BenchHotline, sent_at: dict[str, float], timeout: float, staff: str = "pia"
) -> tuple[list[float], int, float | None]:
    """For every incident opened by a message in `sent_at` (MessageSid -> monotonic send time):
    seconds from that webhook's send to the incident's first page reaching the fake Twilio.

    A level-1 page bundled into a surge digest (routing.bundling) is not a page of its own: it
    has no latency here and is not waited for (see bundled_first_pages). Waits up to `timeout`
    s for every other such incident to be paged. Returns (latencies, number of incidents
    neither paged nor bundled, monotonic time of the last page seen or None).
    """
    opened = {i: sid for i, sid in hotline.first_sid_by_incident().items() if sid in sent_at}

    def paged() -> dict[int, float]:
        first: dict[int, float] = {}
        for number, message in hotline.pages(staff):
            if number in opened and number not in first:
                first[number] = message.received_monotonic
        return first

    def unpaged() -> int:
        return len(set(opened) - set(paged()) - bundled_first_pages(hotline, set(opened)))

    with contextlib.suppress(TimeoutError):
        wait_until(lambda: unpaged() == 0, timeout, "first pages", interval=0.2)
    first = paged()
    latencies = [first[n] - sent_at[opened[n]] for n in first]
    return latencies, unpaged(), max(first.values(), default=None)


def bundled_first_pages(hotline: BenchHotline, incidents: set[int]) -> set[int]:
    """Those of `incidents` whose level-1 page was bundled into a surge digest."""
    return {
        n
        for (n,) in hotline.rows(
            "SELECT DISTINCT incident_id FROM page WHERE step = 0 AND status = 'bundled'"
        )
        if n in incidents
    }


# --------------------------------------------------------------------------- reporting


@dataclass
class Report:
    """What one scenario measured on one database: metrics (label -> text), target checks."""

    scenario: str
    db: str
    metrics: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, label: str, value: Any, unit: str = "") -> None:
        """Record a metric; floats are rounded for the table, kept whole in `raw`."""
        self.raw[label] = value
        if isinstance(value, float):
            shown = fmt_ms(value) if unit == "ms" else f"{value:,.1f}"
        elif isinstance(value, int):
            shown = f"{value:,}"
        else:
            shown = str(value)
        self.metrics[label] = shown if shown == "–" else f"{shown} {unit}".rstrip()

    def add_latency(self, label: str, values: Sequence[float]) -> dict[str, float]:
        """p50 / p99 / max of `values` (seconds) as one metric in ms; the max and n alone
        when there are fewer than MIN_FOR_PERCENTILES of them."""
        stats = summary(values)
        self.raw[label] = stats
        if stats["n"] < MIN_FOR_PERCENTILES:
            self.metrics[label] = f"max {fmt_ms(stats['max'])} ms (n={stats['n']:,})"
            return stats
        self.metrics[label] = (
            f"p50 {fmt_ms(stats['p50'])} · p99 {fmt_ms(stats['p99'])} · "
            f"max {fmt_ms(stats['max'])} ms (n={stats['n']:,})"
        )
        return stats

    def check(self, label: str, ok: bool, detail: str) -> None:
        self.checks[label] = f"{'✅' if ok else '❌'} {detail}"
        self.raw.setdefault("checks", {})[label] = ok

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "db": self.db,
            "metrics": self.metrics,
            "raw": self.raw,
            "checks": self.checks,
            "notes": self.notes,
        }


def page_rows(hotline: BenchHotline) -> dict[int, dict[int, float]]:
    """incident -> {step: epoch seconds the step ran (Page.created_at)} from the database."""
    from sqlmodel import Session, select

    from routing.tables import Page

    steps: dict[int, dict[int, float]] = {}
    with Session(hotline.engine) as session:
        for incident_id, step, created in session.exec(
            select(Page.incident_id, Page.step, Page.created_at)
        ).all():
            steps.setdefault(incident_id, {}).setdefault(step, created.timestamp())
    return steps


STEP_EVENT = re.compile(r"step (\d+) ")


def step_times(hotline: BenchHotline) -> dict[int, dict[int, float]]:
    """incident -> {step: epoch seconds the step ran} from the audit trail.

    The `paged` event carries the very instant `routing.escalation.run_step` ran at and
    planned the next step from (`next_step_at` = it + the level's wait), so lateness computed
    from it is exact. A Page row is not: a page bundled into a surge digest is stamped by
    routing.bundling with a clock read of its own, later in the step's transaction.
    """
    from sqlmodel import Session, select

    from routing.tables import Event

    steps: dict[int, dict[int, float]] = {}
    with Session(hotline.engine) as session:
        for incident_id, at, detail in session.exec(
            select(Event.incident_id, Event.at, Event.detail).where(Event.kind == "paged")
        ).all():
            match = STEP_EVENT.match(detail)
            if match and incident_id is not None:
                steps.setdefault(incident_id, {}).setdefault(int(match.group(1)), at.timestamp())
    return steps


def escalation_lateness(
    hotline: BenchHotline, incidents: set[int], wait_s: float, timeout: float
) -> dict[str, Any]:
    """Lateness of level 2 against level 1 + `wait_s` for `incidents`, once their level-2 pages
    reached the fake Twilio (waits up to `timeout` s).

    Returns the lists `step_late` (the step ran this long after it was due, from the audit
    trail: see step_times), `page_late` (the level-2 page reached Twilio this long after the
    step was due; only pages sent on their own, not bundled) and `missing` (incidents whose
    level-2 step never ran).
    """

    def level2() -> dict[int, float]:
        found: dict[int, float] = {}
        for number, message in hotline.pages("bo"):
            if number in incidents and number not in found:
                found[number] = message.received_at.timestamp()
        return found

    def stepped() -> dict[int, dict[int, float]]:
        return {
            n: ran
            for n, ran in step_times(hotline).items()
            if n in incidents and 0 in ran and 1 in ran
        }

    with contextlib.suppress(TimeoutError):
        wait_until(
            lambda: len(stepped()) >= len(incidents), timeout, "level-2 steps", interval=0.25
        )
    steps = stepped()
    # every level-2 step, from the database; the page's arrival only where it went out on its
    # own (in a surge the hotline bundles pages to one person into a digest: routing.bundling)
    step_late = [ran[1] - ran[0] - wait_s for ran in steps.values()]
    page_late = [at - steps[n][0] - wait_s for n, at in level2().items() if n in steps]
    return {"step_late": step_late, "page_late": page_late, "missing": len(incidents) - len(steps)}


def planned_due(hotline: BenchHotline, step: int) -> dict[int, datetime]:
    """incident -> `next_step_at` of every open incident whose next step is `step`: the exact
    instant the engine planned that step for (written with the previous step's run)."""
    from sqlmodel import Session, select

    from routing.tables import Incident

    with Session(hotline.engine) as session:
        return dict(
            session.exec(
                select(Incident.id, Incident.next_step_at).where(
                    Incident.status == "open",
                    Incident.next_step == step,
                    Incident.next_step_at.is_not(None),
                )
            ).all()
        )


def outbound_in_flight(hotline: BenchHotline) -> int:
    """Outbound messages and calls not yet handed to Twilio (pending, being sent, retrying).
    Held surge digests are not counted: they wait on purpose."""
    busy = "direction = 'out' AND status IN ('pending', 'submitting', 'retrying')"
    return hotline.scalar(f"SELECT count(*) FROM message WHERE {busy}") + hotline.scalar(
        f"SELECT count(*) FROM call WHERE {busy}"
    )


def settle(hotline: BenchHotline, timeout: float = 30.0) -> None:
    """Until everything the hotline has queued to send has reached the fake Twilio.
    Raises TimeoutError after `timeout` s."""
    wait_until(lambda: outbound_in_flight(hotline) == 0, timeout, "outbox drained", interval=0.05)


def staff_command(hotline: BenchHotline, staff: str, text: str) -> int:
    """An SMS from staff member `staff` (e.g. "RESOLVE 17"), signed; returns the HTTP status."""
    phone = dict(STAFF.values())[staff]
    return signed_post(
        hotline.sms_url, sms_params(new_sid(), phone, text, hotline.fake.account_sid), hotline.token
    )
