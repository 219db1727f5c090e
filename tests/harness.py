"""The test world: a hotline web app over real HTTP, signed webhooks, real worker processes."""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import weakref
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from sqlalchemy.engine import make_url
from sqlmodel import Session, select
from twilio.request_validator import RequestValidator
from werkzeug.serving import make_server
from werkzeug.wsgi import ClosingIterator

from hotline import migrate
from hotline.app import build_runtime, create_app
from hotline.db import make_engine
from hotline.settings import load_settings
from routing.datakeys import unseal
from routing.tables import Call, Event, Incident, Message, Page, WorkerHeartbeat
from webhooks.busy import SURGE_AT

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")
SECRET = "test-secret-key-0123456789abcdef"


_sqlite_template: Path | None = None


class _Requests:
    """The app as the test server runs it, telling when a request's work is all done.

    The app answers a defender's message before it threads it (webhooks.messages): Twilio
    has its answer a few milliseconds before the incident exists. A test reads the hotline
    as it is once that work is done too, so `Hotline.post` waits for the request's close
    (which the server calls after writing the answer) before it returns.
    """

    HEADER = "X-Test-Request"

    def __init__(self, app: Callable) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._done: dict[str, threading.Event] = {}

    def __call__(self, environ: dict, start_response: Callable) -> object:
        key = environ.get("HTTP_" + self.HEADER.upper().replace("-", "_"))
        if key is None:
            return self.app(environ, start_response)
        done = threading.Event()
        with self._lock:
            self._done[key] = done
        try:
            return ClosingIterator(self.app(environ, start_response), done.set)
        except BaseException:
            done.set()
            raise

    def wait_done(self, key: str, timeout: float = 20) -> None:
        """Wait until request `key` is closed (no wait when it never reached the app)."""
        with self._lock:
            done = self._done.pop(key, None)
        if done is not None and not done.wait(timeout):
            raise AssertionError(f"request {key} not closed within {timeout} s")


def migrated(url: str) -> str:
    """Brings the database at `url` to the newest schema through the migrations, as
    `hotline db upgrade` would (so a missing or broken migration fails the suite); returns `url`.

    A new SQLite file is a copy of a template migrated once per test run (a copy takes about a
    millisecond, a migration tens of them); an existing file, and a PostgreSQL schema, are
    upgraded in place.
    """
    database = make_url(url).database
    if make_url(url).get_backend_name() == "sqlite" and database and database != ":memory:":
        target = Path(database)
        if not target.exists() or target.stat().st_size == 0:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(_template(), target)
            target.chmod(0o600)  # as hotline.db makes it: serve and worker refuse looser files
            return url
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()
    return url


def _template() -> Path:
    global _sqlite_template
    if _sqlite_template is None:
        folder = Path(tempfile.mkdtemp(prefix="hotline-schema-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        path = folder / "template.db"
        engine = make_engine(f"sqlite:///{path}")
        try:
            migrate.upgrade(engine)
        finally:
            engine.dispose()  # the last connection checkpoints the WAL into the file
        _sqlite_template = path
    return _sqlite_template


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    what: str = "condition",
    interval: float = 0.02,
) -> T:
    """Poll `predicate` (a database read, say) until it returns something truthy.
    Raises TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Response:
    def __init__(self, status: int, body: str, content_type: str):
        self.status, self.body, self.content_type = status, body, content_type


class Hotline:
    """A configured hotline whose web app runs in this process on a real port."""

    def __init__(
        self,
        tmp_path: Path,
        *,
        database_url: str,
        redis_url: str,
        fake,
        rota: str,
        number: str = "+35312100489",
        whatsapp: str | None = "whatsapp:+14155238886",
        languages: tuple[str, ...] = ("en", "fr", "es"),
        auto_reply: bool = True,
        reveal_numbers: bool = False,
        retention_days: int = 90,
        web_form: dict[str, object] | None = None,
        console: bool = False,
        env: dict[str, str] | None = None,
        config: str = "",
    ):
        self.dir = tmp_path / f"hotline-{secrets.token_hex(3)}"
        self.dir.mkdir()
        self.fake = fake
        # bound now and handed to the server at start(): a port only looked up here could be
        # taken by another process (a redis-server, nginx, another test's server) before then
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self.port = self._listener.getsockname()[1]
        weakref.finalize(self, self._listener.close)  # kept across stop() and start() again
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.rota_path = self.dir / "rota.yaml"
        self.rota_path.write_text(rota)
        settings = [
            "hotline:",
            f'  number: "{number}"',
            f"  languages: [{', '.join(languages)}]",
            f"  auto_reply: {str(auto_reply).lower()}",
            f"  reveal_numbers: {str(reveal_numbers).lower()}",
        ]
        if whatsapp:
            settings.append(f'  whatsapp: "{whatsapp}"')
        settings += [f"retention_days: {retention_days}", "rota_file: rota.yaml"]
        if web_form is not None:  # e.g. {"enabled": True, "submit_limit": "3/minute"}
            settings.append("web_form:")
            settings += [
                f"  {key}: {str(value).lower() if isinstance(value, bool) else value}"
                for key, value in web_form.items()
            ]
        if console:  # the staff console, at the address passkeys accept on this machine
            self.console_url = f"http://localhost:{self.port}"
            config += f'console: {{enabled: true, url: "{self.console_url}"}}\n'
        if "reminders:" not in config:
            # real workers run on the real clock: a weekly handoff of the test rotas must not
            # add a shift reminder to what a test counts (tests/inprocess/test_reminders.py asks
            # for them)
            config += "reminders: {before: off}\n"
        (self.dir / "config.yaml").write_text("\n".join(settings) + "\n" + config)
        self.env = {
            "HOTLINE_CONFIG": str(self.dir / "config.yaml"),
            "HOTLINE_INSTANCE_DIR": str(self.dir / "instance"),
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "TWILIO_ACCOUNT_SID": fake.account_sid,
            "TWILIO_AUTH_TOKEN": fake.auth_token,
            "TWILIO_API_BASE_URL": fake.base_url,
            "HOTLINE_PUBLIC_URL": self.base_url,
            "HOTLINE_SECRET_KEY": SECRET,
            **(env or {}),
        }
        self.settings = load_settings(self.env)
        self.rt = None
        self.app = None
        self._server = None

    def start(self) -> Hotline:
        migrated(self.settings.database_url)  # the operator's `hotline db upgrade`
        self.rt = build_runtime(self.settings)
        self.app = create_app(runtime=self.rt)
        # a test's messages come one after another, faster than defenders write: no surge
        # (the rate rule has tests of its own; the deferred path: INLINE_LIMIT 0)
        self.app.config[SURGE_AT] = 10**9
        self._requests = _Requests(self.app)
        self._server = make_server(
            "127.0.0.1", self.port, self._requests, threaded=True, fd=self._listener.fileno()
        )
        # a short poll: shutdown() waits for it, in every test's teardown
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self.rt is not None:
            self.rt.engine.dispose()

    # --- webhooks, as Twilio sends them ---------------------------------------------------

    def post(
        self,
        path: str,
        params: dict | list[tuple[str, str]],
        *,
        signed: bool = True,
        signature: str | None = None,
        token: str | None = None,
        over_http: bool = True,
    ) -> Response:
        """POST a form as Twilio would, signed unless told otherwise. `over_http` False hands
        the same request to the app in this process (no socket: for tests that post
        thousands)."""
        url = self.base_url + path
        if signature is None and signed:
            signature = RequestValidator(token or self.fake.auth_token).compute_signature(
                url, _multidict(params)
            )
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if signature:
            headers["X-Twilio-Signature"] = signature
        if not over_http:
            # buffered: the response is closed, and the work after the answer done, at once
            answer = self.app.test_client().post(
                path,
                data=urllib.parse.urlencode(params),
                headers=headers,
                base_url=self.base_url,
                buffered=True,
            )
            return Response(
                answer.status_code,
                answer.get_data(as_text=True),
                answer.headers.get("Content-Type", ""),
            )
        request_id = secrets.token_hex(8)
        headers[_Requests.HEADER] = request_id
        request = urllib.request.Request(
            url, data=urllib.parse.urlencode(params).encode(), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=20) as resp:
                answer = Response(resp.status, resp.read().decode(), resp.headers["Content-Type"])
        except urllib.error.HTTPError as exc:
            answer = Response(exc.code, exc.read().decode(), exc.headers.get("Content-Type", ""))
        self._requests.wait_done(request_id)
        return answer

    def get(self, path: str) -> Response:
        try:
            with urllib.request.urlopen(self.base_url + path, timeout=20) as resp:
                return Response(resp.status, resp.read().decode(), resp.headers["Content-Type"])
        except urllib.error.HTTPError as exc:
            return Response(exc.code, exc.read().decode(), exc.headers.get("Content-Type", ""))

    def sms(
        self,
        sender: str,
        body: str,
        *,
        sid: str | None = None,
        to: str | None = None,
        media: tuple[str, ...] = (),
        **extra: str,
    ) -> Response:
        whatsapp = sender.startswith("whatsapp:")
        params = {
            "MessageSid": sid or "SM" + secrets.token_hex(16),
            "AccountSid": self.fake.account_sid,
            "From": sender,
            "To": to or (self.settings.whatsapp if whatsapp else self.settings.number),
            "Body": body,
            "NumMedia": str(len(media)),
        }
        for i, content_type in enumerate(media):
            params[f"MediaContentType{i}"] = content_type
            params[f"MediaUrl{i}"] = f"https://api.twilio.com/media/ME{secrets.token_hex(16)}"
        params.update(extra)
        return self.post("/twilio/sms", params)

    # --- the rota -------------------------------------------------------------------------

    def write_rota(self, text: str) -> None:
        self.rota_path.write_text(text)
        later = time.time() + 5  # a new mtime even within the file system's resolution
        os.utime(self.rota_path, (later, later))

    def staff_phone(self, staff_id: str) -> str:
        return self.rt.rota.current().staff[staff_id].phone

    # --- reading the log ------------------------------------------------------------------

    def session(self) -> Session:
        return Session(self.rt.engine)

    def incidents(self) -> list[Incident]:
        with self.session() as s:
            return list(s.exec(select(Incident).order_by(Incident.id)).all())

    def incident(self, number: int) -> Incident:
        with self.session() as s:
            return s.get(Incident, number)

    def messages(self, **where) -> list[Message]:
        with self.session() as s:
            query = select(Message).order_by(Message.id)
            for key, value in where.items():
                query = query.where(getattr(Message, key) == value)
            return list(s.exec(query).all())

    def pages(self, incident: int | None = None) -> list[Page]:
        with self.session() as s:
            query = select(Page).order_by(Page.id)
            if incident is not None:
                query = query.where(Page.incident_id == incident)
            return list(s.exec(query).all())

    def events(self, incident: int | None = None) -> list[Event]:
        with self.session() as s:
            query = select(Event).order_by(Event.id)
            if incident is not None:
                query = query.where(Event.incident_id == incident)
            return list(s.exec(query).all())

    # --- barriers: what "nothing more happened" waits for, instead of a fixed sleep --------

    def outbox_settled(self, timeout: float = 20) -> None:
        """Wait until nothing the hotline wrote to send is still on its way: no message or
        call pending, held, retrying or being handed to Twilio. After that, no send that the
        log does not already hold can leave."""
        waiting = ("pending", "held", "retrying", "submitting")

        def settled() -> bool:
            with self.session() as s:
                return not (
                    s.exec(select(Message.id).where(Message.status.in_(waiting))).first()
                    or s.exec(select(Call.id).where(Call.status.in_(waiting))).first()
                )

        wait_until(settled, timeout=timeout, what="the outbox to settle")

    def jobs_due_ran(self, timeout: float = 30) -> None:
        """Wait until RQ has run every job due by now: none queued, none scheduled for
        earlier, none running."""
        from rq.registry import ScheduledJobRegistry, StartedJobRegistry

        queue = self.rt.queue
        now = time.time()

        def ran() -> bool:
            scheduled = ScheduledJobRegistry(queue=queue).get_jobs_to_schedule(now)
            return not (len(queue) or scheduled or StartedJobRegistry(queue=queue).count)

        wait_until(ran, timeout=timeout, what="the jobs due to run", interval=0.05)

    def swept_after(self, instant: datetime, timeout: float = 30) -> None:
        """Wait until a worker's sweeper has made a whole pass that began after `instant`.

        The sweeper writes its heartbeat after a pass, every few seconds: of two heartbeats
        after `instant`, the second follows a pass that began after the first."""
        beats: list[datetime] = []

        def two_beats() -> bool:
            with self.session() as s:
                at = s.exec(select(WorkerHeartbeat.at).order_by(WorkerHeartbeat.at.desc())).first()
            if at is not None and at > instant and at not in beats:
                beats.append(at)
            return len(beats) >= 2

        wait_until(two_beats, timeout=timeout, what="a sweep after the instant", interval=0.1)

    def engine_dialect(self) -> str:
        return self.rt.engine.dialect.name

    def step_times(self, incident: int) -> dict[int, datetime]:
        """When each escalation step of `incident` ran, from the audit trail: the instant the
        next step's due time was computed from (`paged` events: "step N (...)")."""
        return {int(e.detail.split()[1]): e.at for e in self.events(incident) if e.kind == "paged"}

    def unseal(self, row, name: str) -> str | None:  # noqa: ANN001
        """The plaintext of `row`'s `<name>_enc` column (routing.datakeys)."""
        return unseal(self.rt.vault, row, name)

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        """`hotline …` run against this hotline's configuration."""
        return hotline_cli(self.env, *args)


def hotline_cli(
    env: dict[str, str], *args: str, timeout: float = 60
) -> subprocess.CompletedProcess:
    """The real `hotline` console script, as an operator runs it, with `env` added to ours."""
    return subprocess.run(
        [sys.executable, "-m", "hotline", *args],
        cwd=ROOT,
        text=True,
        env={**os.environ, **env},
        capture_output=True,
        timeout=timeout,
    )


def _multidict(params):  # noqa: ANN001, ANN202
    """What RequestValidator wants for repeated keys: a mapping with getall()."""
    if isinstance(params, dict):
        return params

    class Multi(dict):
        def getall(self, key):  # noqa: ANN001, ANN202
            return [v for k, v in params if k == key]

    return Multi({k: v for k, v in params})


class TestWorker:
    """A real `hotline worker` process (its own session, so a kill takes its scheduler too)."""

    __test__ = False

    def __init__(self, hotline: Hotline, name: str = "worker"):
        self.hotline = hotline
        self.log_path = hotline.dir / f"{name}-{secrets.token_hex(2)}.log"
        self.proc: subprocess.Popen | None = None

    def start(self, wait: bool = True) -> TestWorker:
        env = {**os.environ, **self.hotline.env, "PYTHONUNBUFFERED": "1"}
        self._log = open(self.log_path, "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hotline", "worker"],
            env=env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if wait:
            started = time.monotonic()
            wait_until(lambda: self._alive_since(started), timeout=30, what="worker heartbeat")
        return self

    def _alive_since(self, started: float) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"worker exited {self.proc.returncode}:\n{self.log()}")
        with self.hotline.session() as s:
            beats = s.exec(select(WorkerHeartbeat)).all()
        return any(
            b.at.timestamp() >= time.time() - (time.monotonic() - started) - 1 for b in beats
        )

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the worker and its scheduler, as a crash or OOM would."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self, *, graceful: bool = False) -> None:
        """End the worker. By default as a crash would (SIGKILL to its whole session): a test
        is done with it, and a graceful stop costs a second or more (RQ's scheduler notices
        SIGTERM only after its one-second sleep) in every test. `graceful`: SIGTERM and wait,
        as an operator stops `hotline worker` (its own test checks that it ends in seconds).
        """
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM if graceful else signal.SIGKILL)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.proc:
            with contextlib.suppress(ProcessLookupError):  # leftovers of its session, if any
                os.killpg(self.proc.pid, signal.SIGKILL)
            self._log.close()
