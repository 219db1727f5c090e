"""A fake Twilio REST API served over real HTTP, for use with the real ``twilio`` SDK.

``FakeTwilio`` runs a stdlib ``ThreadingHTTPServer`` on ``127.0.0.1`` (random free
port) in a daemon thread and implements the small slice of the 2010-04-01 API the
hotline uses::

    POST   /2010-04-01/Accounts/{AccountSid}/Messages.json         create SMS/MMS (201)
    GET    /2010-04-01/Accounts/{AccountSid}/Messages.json         list (To, From, DateSent<>)
    GET    /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json   fetch
    DELETE /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json   delete (204)
    POST   /2010-04-01/Accounts/{AccountSid}/Calls.json            create call (201)
    GET    /2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json      fetch
    POST   /2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json      update (Twiml/Url/Status)
    DELETE /2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json      delete (204)
    DELETE /2010-04-01/Accounts/{AccountSid}/Recordings/{Sid}.json delete (204)
    GET    /2010-04-01/Accounts/{AccountSid}/Recordings/{Sid}/Transcriptions.json   list
    DELETE /2010-04-01/Accounts/{AccountSid}/Transcriptions/{Sid}.json              delete

Every request must carry HTTP Basic auth equal to ``(account_sid, auth_token)``;
otherwise a 401 with Twilio's error body (code 20003) is returned.  Errors use
Twilio's legacy JSON shape (``code``, ``message``, ``more_info``, ``status``) so the
SDK raises ``twilio.base.exceptions.TwilioRestException`` with ``.code``/``.status``.

The fake answers at once by default.  ``FakeTwilio(latency=0.4)`` (or setting
``fake.latency``) holds every REST response back that long, like the real API's
100-500 ms, so a caller that waits on Twilio one request at a time shows it; the
request is still recorded when it arrives.

Routing the real SDK to the fake (verified against twilio 9.13 source)
---------------------------------------------------------------------
``client.messages``, ``client.calls`` and ``client.recordings`` are all shortcuts
for ``client.api.account.<list>`` (``twilio/rest/__init__.py``).  ``client.api`` is
a single cached ``Api`` *Domain* object whose ``base_url`` defaults to
``"https://api.twilio.com"``; every request URL is built lazily, at request time,
as ``domain.base_url.strip("/") + "/" + "2010-04-01" + uri``
(``twilio/base/domain.py`` / ``twilio/base/version.py``).  Hence setting exactly::

    client = Client(account_sid, auth_token)
    client.api.base_url = fake.base_url        # "http://127.0.0.1:PORT", no path

is sufficient, before or after touching ``client.messages``.  Only the ``api``
domain is redirected; other domains (``client.messaging``, ``client.lookups``...)
keep their own ``base_url`` and would still hit the internet.

Caveats found in the SDK:

* ``Client.__init__`` reads ``TWILIO_EDGE`` / ``TWILIO_REGION`` from the
  environment.  If either is set (or passed), ``ClientBase.get_hostname`` rewrites
  the host part of every URL (``127.0.0.1:PORT`` -> ``127.ie1.0.1:PORT`` for
  ``region="ie1"``), so keep both unset for tests.
* ``TwilioHttpClient`` does **not** retry: ``max_retries`` defaults to ``None`` and
  the ``requests`` adapters then use ``Retry(0, read=False)``.  A 5xx from the fake
  yields exactly one request and one ``TwilioRestException``.
* ``TwilioHttpClient`` has **no timeout** by default (``timeout=None``); pass
  ``http_client=TwilioHttpClient(timeout=...)`` in production code.
* ``requests`` honours ``HTTP(S)_PROXY``/``NO_PROXY`` env vars for the SDK call.
* An error body containing all of ``type``, ``title``, ``status``, ``code`` would be
  parsed as ``TwilioServiceException`` (RFC 9457); the fake never sends ``type``/
  ``title`` so the SDK raises ``TwilioRestException``.

Status callbacks
----------------
``post_status()`` POSTs to the ``StatusCallback`` URL the app supplied, form
encoded and signed exactly like Twilio (``X-Twilio-Signature`` =
``RequestValidator(auth_token).compute_signature(url, params)``, HMAC-SHA1).  If the
app validates signatures against a public base URL that differs from the URL the
fake actually posts to, pass ``public_url_base``: the signature is then computed
over ``public_url_base + path?query`` of the callback URL while the POST still goes
to the callback URL (or to ``deliver_to`` if given).
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, TypeVar

from fake_numbers import FakeNumbers
from fake_studio import FakeStudio
from twilio.request_validator import RequestValidator

__all__ = [
    "API_VERSION",
    "CallUpdate",
    "Deletion",
    "ERROR_MESSAGES",
    "FakeCall",
    "FakeMessage",
    "FakeTwilio",
    "Rejection",
    "StatusCallbackPost",
    "error_body",
]

API_VERSION = "2010-04-01"

T = TypeVar("T")
Form = dict[str, list[str]]
FailureKind = Literal["messages", "calls", "call_updates", "deletions"]

#: Default human-readable messages for common Twilio error codes.
ERROR_MESSAGES: dict[int, str] = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "An internal server error has occurred",
    20503: "Service Unavailable",
    21201: "No 'To' number is specified",
    21205: "Url is not a valid URL",
    21211: "The 'To' number is not a valid phone number.",
    21213: "No 'From' number is specified",
    21408: (
        "Permission to send an SMS has not been enabled for the region indicated by the 'To' number"
    ),
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "'To' number is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
}

_PATH_RE = re.compile(
    r"^/2010-04-01/Accounts/(?P<account>[^/]+)/"
    r"(?P<resource>Messages|Calls|Recordings|Transcriptions)"
    r"(?:/(?P<sid>[^/.]+))?(?P<sub>/Transcriptions)?\.json$"
)

_TERMINAL_CALL_STATUSES = {"completed", "canceled", "busy", "failed", "no-answer"}


def _now_wall() -> datetime:
    """Return the current UTC time (aware)."""
    return datetime.now(UTC)


def _rfc2822(dt: datetime | None) -> str | None:
    """Format ``dt`` the way Twilio does (``Thu, 30 Jul 2015 20:12:31 +0000``)."""
    return format_datetime(dt) if dt is not None else None


def _new_sid(prefix: str) -> str:
    """Return a 34-character Twilio-style SID with the given 2-letter prefix."""
    return prefix + uuid.uuid4().hex


def _first(form: Form, key: str) -> str | None:
    """Return the first value of ``key`` in a parsed form, or ``None``."""
    values = form.get(key)
    return values[0] if values else None


def error_body(code: int, status: int, message: str | None = None) -> dict[str, Any]:
    """Build a Twilio-shaped (legacy) error body."""
    return {
        "code": code,
        "message": message or ERROR_MESSAGES.get(code, f"Twilio error {code}"),
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


# --------------------------------------------------------------------------- records

# GSM 03.38, the default SMS alphabet, as its 8 columns of 16 (0x1B, the escape, left out),
# and the extension table reached through that escape: a character there costs two septets.
# A message with any other character is sent as UCS-2, counted in UTF-16 code units.
_GSM_TABLE = (
    "@\u0394 0\u00a1P\u00bfp"
    "\u00a3_!1AQaq"
    '$\u03a6"2BRbr'
    "\u00a5\u0393#3CScs"
    "\u00e8\u039b\u00a44DTdt"
    "\u00e9\u03a9%5EUeu"
    "\u00f9\u03a0&6FVfv"
    "\u00ec\u03a8'7GWgw"
    "\u00f2\u03a3(8HXhx"
    "\u00c7\u0398)9IYiy"
    "\n\u039e*:JZjz"
    "\u00d8+;K\u00c4k\u00e4"
    "\u00f8\u00c6,<L\u00d6l\u00f6"
    "\r\u00e6-=M\u00d1m\u00f1"
    "\u00c5\u00df.>N\u00dcn\u00fc"
    "\u00e5\u00c9/?O\u00a7o\u00e0"
)
_GSM_ESCAPED = "^{}\\[~]|\u20ac"


def sms_segments(body: str) -> int:
    """How many segments Twilio bills `body` as: one of 160 septets (70 UCS-2 units), or
    parts of 153 (67) each."""
    if all(ch in _GSM_TABLE or ch in _GSM_ESCAPED for ch in body):
        units, single, part = len(body) + sum(ch in _GSM_ESCAPED for ch in body), 160, 153
    else:
        units, single, part = len(body.encode("utf-16-le")) // 2, 70, 67
    return 1 if units <= single else -(-units // part)


@dataclass
class FakeMessage:
    """A message accepted by the fake (``POST Messages.json``)."""

    sid: str
    to: str
    from_: str | None
    body: str | None
    status_callback: str | None
    media_urls: list[str]
    form: Form
    received_monotonic: float
    received_at: datetime
    status: str = "queued"
    error_code: int | None = None
    direction: str = "outbound-api"  # "inbound": what someone sent our number (add_inbound_*)

    @property
    def segments(self) -> int:
        return sms_segments(self.body or "")

    def to_json(self, account_sid: str) -> dict[str, Any]:
        """Render as Twilio's Message resource JSON."""
        uri = f"/{API_VERSION}/Accounts/{account_sid}/Messages/{self.sid}.json"
        date = _rfc2822(self.received_at)
        return {
            "account_sid": account_sid,
            "api_version": API_VERSION,
            "body": self.body or "",
            "date_created": date,
            "date_sent": date if self.status not in ("queued", "accepted") else None,
            "date_updated": _rfc2822(_now_wall()),
            "direction": self.direction,
            "error_code": self.error_code,
            "error_message": None,
            "from": self.from_,
            "messaging_service_sid": _first(self.form, "MessagingServiceSid"),
            "num_media": str(len(self.media_urls)),
            "num_segments": str(self.segments),
            "price": None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
            "to": self.to,
            "uri": uri,
        }


@dataclass
class FakeCall:
    """A call accepted by the fake (``POST Calls.json``)."""

    sid: str
    to: str
    from_: str | None
    url: str | None
    twiml: str | None
    status_callback: str | None
    status_callback_events: list[str]
    machine_detection: str | None
    form: Form
    received_monotonic: float
    received_at: datetime
    status: str = "queued"
    answered_by: str | None = None
    duration: int | None = None
    body: None = None  # calls have no body; present for uniformity with FakeMessage
    direction: str = "outbound-api"  # "inbound", or "outbound-dial" for a <Dial>'s leg
    parent_call_sid: str | None = None  # a <Dial>'s leg: the call that dialled it

    def to_json(self, account_sid: str) -> dict[str, Any]:
        """Render as Twilio's Call resource JSON."""
        uri = f"/{API_VERSION}/Accounts/{account_sid}/Calls/{self.sid}.json"
        base = uri[: -len(".json")]
        return {
            "account_sid": account_sid,
            "annotation": None,
            "answered_by": self.answered_by,
            "api_version": API_VERSION,
            "caller_name": None,
            "date_created": _rfc2822(self.received_at),
            "date_updated": _rfc2822(_now_wall()),
            "direction": self.direction,
            "duration": str(self.duration) if self.duration is not None else None,
            "end_time": None,
            "forwarded_from": None,
            "from": self.from_,
            "from_formatted": self.from_,
            "group_sid": None,
            "parent_call_sid": self.parent_call_sid,
            "phone_number_sid": None,
            "price": None,
            "price_unit": "USD",
            "queue_time": "0",
            "sid": self.sid,
            "start_time": _rfc2822(self.received_at),
            "status": self.status,
            "subresource_uris": {
                "notifications": f"{base}/Notifications.json",
                "recordings": f"{base}/Recordings.json",
                "events": f"{base}/Events.json",
            },
            "to": self.to,
            "to_formatted": self.to,
            "trunk_sid": None,
            "uri": uri,
        }


@dataclass
class CallUpdate:
    """A ``POST Calls/{sid}.json`` (modify a live call) received by the fake."""

    sid: str
    status: str | None
    url: str | None
    twiml: str | None
    form: Form
    received_monotonic: float
    received_at: datetime


@dataclass
class Deletion:
    """A ``DELETE`` received by the fake; ``kind`` is ``"messages"``, ``"calls"``,
    ``"recordings"`` or ``"transcriptions"``."""

    kind: str
    sid: str
    received_monotonic: float
    received_at: datetime


@dataclass
class Rejection:
    """A request the fake answered with an error (injected, validation or auth)."""

    kind: str
    method: str
    path: str
    to: str | None
    from_: str | None
    body: str | None
    status_callback: str | None
    code: int
    status: int
    message: str
    form: Form
    received_monotonic: float
    received_at: datetime
    sid: None = None  # nothing was created


@dataclass
class StatusCallbackPost:
    """A status callback the fake POSTed to the app."""

    sid: str
    url: str
    signed_url: str
    params: dict[str, str]
    signature: str
    http_status: int | None
    error: str | None
    sent_monotonic: float
    sent_at: datetime


@dataclass
class _FailureRule:
    """An injected failure; ``remaining=None`` means until ``clear_failures()``."""

    kinds: frozenset[str]
    to: str | None
    code: int
    status: int
    message: str | None
    remaining: int | None

    def matches(self, kind: str, to: str | None) -> bool:
        """Whether this rule applies to a request of ``kind`` addressed to ``to``."""
        if kind not in self.kinds:
            return False
        return self.to is None or self.to == to


# --------------------------------------------------------------------------- server


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer carrying a back-reference to its ``FakeTwilio``."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, fake: FakeTwilio) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


class _Handler(BaseHTTPRequestHandler):
    """Request handler dispatching to ``FakeTwilio``."""

    server: _Server
    protocol_version = "HTTP/1.1"
    # Headers and body are separate writes; without TCP_NODELAY, Nagle + delayed
    # ACK add ~40 ms to every keep-alive request.
    disable_nagle_algorithm = True
    server_version = "FakeTwilio/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Silence the default stderr access log."""

    def _dispatch(self) -> None:
        """Read the body and hand the request to the fake."""
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        fake = self.server.fake
        status, payload, after = fake._handle(
            self.command, self.path, self.headers.get("Authorization"), raw
        )
        latency = fake.latency
        if latency > 0:
            # Recorded at arrival (``received_*``), answered later, as a slow Twilio would:
            # only this connection's thread sleeps, so concurrent requests overlap.
            time.sleep(latency)
        if payload is None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            if status == 401:
                self.send_header("WWW-Authenticate", 'Basic realm="Twilio API"')
            self.end_headers()
            self.wfile.write(data)
        self.wfile.flush()
        if after is not None:
            after()

    do_GET = do_POST = do_DELETE = do_PUT = _dispatch


# --------------------------------------------------------------------------- fake


class FakeTwilio:
    """In-process fake of the Twilio REST API (see module docstring).

    All record lists are exposed as snapshot copies taken under a lock, so they can
    be read from any thread.  Every handled request (and every status callback the
    fake sends) notifies an internal ``Condition`` that ``wait_for`` waits on.
    """

    def __init__(
        self,
        account_sid: str = "AC" + "0" * 32,
        auth_token: str = "fake-auth-token",
        *,
        auto_status: Sequence[str] = (),
        callback_timeout: float = 10.0,
        latency: float = 0.0,
    ) -> None:
        """Create (but do not start) the fake.

        :param account_sid: the ``AC…`` SID the app authenticates with.
        :param auth_token: the auth token; also the status-callback signing key.
        :param auto_status: if non-empty (e.g. ``("sent", "delivered")``), after each
            accepted message that has a ``StatusCallback`` the fake posts those
            statuses, in order, from a background thread.  Off by default.
        :param callback_timeout: socket timeout for status-callback POSTs.
        :param latency: seconds each REST API response is held back after the request
            was handled (and recorded, so ``received_*`` is its arrival); ``0`` (the
            default) answers at once.  May be changed on a running fake through the
            ``latency`` attribute.  Status callbacks are not delayed.
        :raises ValueError: ``latency`` is negative.
        """
        if latency < 0:
            raise ValueError(f"latency must be >= 0 seconds, got {latency!r}")
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.auto_status: tuple[str, ...] = tuple(auto_status)
        self.callback_timeout = callback_timeout
        self.latency = float(latency)
        self._cond = threading.Condition(threading.RLock())
        self._messages: list[FakeMessage] = []
        self._calls: list[FakeCall] = []
        self._call_updates: list[CallUpdate] = []
        self._deletions: list[Deletion] = []
        self._transcriptions: dict[str, list[str]] = {}  # recording sid -> transcription sids
        self.studio = FakeStudio(account_sid)  # /v2/Flows (tests/fake_studio.py)
        self.numbers = FakeNumbers(account_sid)  # IncomingPhoneNumbers (tests/fake_numbers.py)
        self._rejected: list[Rejection] = []
        self._status_callbacks: list[StatusCallbackPost] = []
        self._by_sid: dict[str, FakeMessage | FakeCall] = {}
        self._rules: list[_FailureRule] = []
        self._sequence: dict[str, itertools.count[int]] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    # ------------------------------------------------------------- lifecycle

    def start(self) -> FakeTwilio:
        """Bind to a free port on 127.0.0.1 and serve in a daemon thread."""
        if self._server is not None:
            return self
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FakeTwilio:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Shut the server down and close its socket (idempotent)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeTwilio:
        """Start the server."""
        return self.start()

    def __exit__(self, *exc: object) -> None:
        """Stop the server."""
        self.stop()

    @property
    def port(self) -> int:
        """The bound TCP port (server must be started)."""
        if self._server is None:
            raise RuntimeError("FakeTwilio is not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` — assign to ``client.api.base_url``."""
        return f"http://127.0.0.1:{self.port}"

    def client(self, **kwargs: Any) -> Any:
        """Return a real ``twilio.rest.Client`` already routed to this fake.

        ``edge``/``region`` are forced to ``None`` semantics by passing an empty
        ``environment`` unless one is given in ``kwargs``.
        """
        from twilio.rest import Client

        kwargs.setdefault("environment", {"_": ""})
        client = Client(self.account_sid, self.auth_token, **kwargs)
        client.api.base_url = self.base_url
        return client

    # ------------------------------------------------------------- records

    @property
    def messages(self) -> list[FakeMessage]:
        """Snapshot of accepted messages, oldest first."""
        with self._cond:
            return list(self._messages)

    @property
    def calls(self) -> list[FakeCall]:
        """Snapshot of accepted calls, oldest first."""
        with self._cond:
            return list(self._calls)

    @property
    def call_updates(self) -> list[CallUpdate]:
        """Snapshot of call modifications (``POST Calls/{sid}.json``)."""
        with self._cond:
            return list(self._call_updates)

    @property
    def deletions(self) -> list[Deletion]:
        """Snapshot of DELETEs (messages and recordings)."""
        with self._cond:
            return list(self._deletions)

    @property
    def rejected(self) -> list[Rejection]:
        """Snapshot of requests answered with an error."""
        with self._cond:
            return list(self._rejected)

    @property
    def status_callbacks(self) -> list[StatusCallbackPost]:
        """Snapshot of status callbacks the fake has POSTed to the app."""
        with self._cond:
            return list(self._status_callbacks)

    def get(self, sid: str) -> FakeMessage | FakeCall:
        """Return the message or call with ``sid`` (``KeyError`` if unknown)."""
        with self._cond:
            return self._by_sid[sid]

    def sms_to(self, number: str) -> list[str]:
        """Bodies of accepted messages sent to ``number``, oldest first."""
        with self._cond:
            return [m.body or "" for m in self._messages if m.to == number]

    def clear(self) -> None:
        """Forget all recorded traffic.  Failure rules and SID lookup are kept."""
        with self._cond:
            self._messages.clear()
            self._calls.clear()
            self._call_updates.clear()
            self._deletions.clear()
            self._rejected.clear()
            self._status_callbacks.clear()
            self._cond.notify_all()

    # ------------------------------------------------------------- waiting

    def wait_for(self, predicate: Callable[[], T], timeout: float = 10.0) -> T:
        """Block until ``predicate()`` is truthy and return its value.

        The predicate is evaluated under the fake's lock immediately and again
        after every request the fake handles (no polling sleeps).  It should only
        depend on the fake's state; it must not make requests to the fake.

        :raises TimeoutError: if still falsy after ``timeout`` seconds.
        """
        with self._cond:
            result = self._cond.wait_for(predicate, timeout)
            if not result:
                raise TimeoutError(f"condition not met within {timeout}s; {self._summary()}")
            return result

    def wait_for_messages(
        self, count: int, to: str | None = None, timeout: float = 10.0
    ) -> list[FakeMessage]:
        """Wait until at least ``count`` messages (to ``to``, if given) exist; return them."""

        def matching() -> list[FakeMessage]:
            return [m for m in self._messages if to is None or m.to == to]

        self.wait_for(lambda: len(matching()) >= count, timeout)
        with self._cond:
            return matching()

    def wait_for_calls(
        self, count: int, to: str | None = None, timeout: float = 10.0
    ) -> list[FakeCall]:
        """Wait until at least ``count`` calls (to ``to``, if given) exist; return them."""

        def matching() -> list[FakeCall]:
            return [c for c in self._calls if to is None or c.to == to]

        self.wait_for(lambda: len(matching()) >= count, timeout)
        with self._cond:
            return matching()

    def _summary(self) -> str:
        """One-line description of recorded traffic, for timeout messages."""
        return (
            f"messages={[(m.to, m.body) for m in self._messages]!r} "
            f"calls={[c.to for c in self._calls]!r} "
            f"rejected={[(r.kind, r.to, r.code) for r in self._rejected]!r} "
            f"deletions={len(self._deletions)} "
            f"status_callbacks={len(self._status_callbacks)}"
        )

    # ------------------------------------------------------------- failures

    def fail_next(
        self,
        count: int = 1,
        code: int = 21211,
        status: int = 400,
        to: str | None = None,
        kind: FailureKind = "messages",
        message: str | None = None,
    ) -> None:
        """Make the next ``count`` matching requests fail with a Twilio error.

        :param kind: ``"messages"`` / ``"calls"`` (create), ``"call_updates"``, or
            ``"deletions"`` (message and recording DELETEs; ``to`` never matches).
        :param to: only requests whose ``To`` equals this (exact string) match.
        Use ``status=500``/``503`` with ``code=20500``/``20503`` for transient errors.
        """
        with self._cond:
            self._rules.append(_FailureRule(frozenset({kind}), to, code, status, message, count))

    def fail_to(
        self,
        number: str,
        code: int,
        status: int = 400,
        kind: FailureKind | None = None,
        message: str | None = None,
    ) -> None:
        """Make every message/call create to ``number`` fail until ``clear_failures()``.

        :param kind: restrict to ``"messages"`` or ``"calls"``; default both.
        """
        kinds = frozenset({kind}) if kind else frozenset({"messages", "calls"})
        with self._cond:
            self._rules.append(_FailureRule(kinds, number, code, status, message, None))

    def clear_failures(self) -> None:
        """Drop all injected failure rules."""
        with self._cond:
            self._rules.clear()

    def _take_failure(self, kind: str, to: str | None) -> _FailureRule | None:
        """Find (and consume one use of) the first rule matching; lock held."""
        for rule in self._rules:
            if rule.matches(kind, to):
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        self._rules.remove(rule)
                return rule
        return None

    # ------------------------------------------------------------- HTTP handling

    def _handle(
        self, method: str, raw_path: str, authorization: str | None, raw_body: bytes
    ) -> tuple[int, dict[str, Any] | None, Callable[[], None] | None]:
        """Handle one request; returns (status, json body or None, post-response hook)."""
        parts = urllib.parse.urlsplit(raw_path)
        path = parts.path
        form: Form = urllib.parse.parse_qs(raw_body.decode("utf-8"), keep_blank_values=True)
        if method == "GET":  # a list's filters come in the query string
            form = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
        with self._cond:
            try:
                return self._route(method, path, authorization, form)
            finally:
                self._cond.notify_all()

    def _reject(
        self,
        kind: str,
        method: str,
        path: str,
        form: Form,
        code: int,
        status: int,
        message: str | None = None,
    ) -> tuple[int, dict[str, Any], None]:
        """Record a rejection and build the error response; lock held."""
        body = error_body(code, status, message)
        self._rejected.append(
            Rejection(
                kind=kind,
                method=method,
                path=path,
                to=_first(form, "To"),
                from_=_first(form, "From"),
                body=_first(form, "Body"),
                status_callback=_first(form, "StatusCallback"),
                code=code,
                status=status,
                message=body["message"],
                form=form,
                received_monotonic=time.monotonic(),
                received_at=_now_wall(),
            )
        )
        return status, body, None

    def _authorized(self, authorization: str | None, account: str) -> bool:
        """Check Basic credentials and that the path account is ours."""
        if not authorization or not authorization.startswith("Basic "):
            return False
        try:
            decoded = base64.b64decode(authorization[6:]).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return False
        user, _, password = decoded.partition(":")
        return (
            user == self.account_sid and password == self.auth_token and account == self.account_sid
        )

    def _route(
        self, method: str, path: str, authorization: str | None, form: Form
    ) -> tuple[int, dict[str, Any] | None, Callable[[], None] | None]:
        """Dispatch on method and path; lock held."""
        for resources in (self.studio, self.numbers):
            if resources.handles(path):
                if not self._authorized(authorization, self.account_sid):
                    return 401, error_body(20003, 401), None
                status, payload = resources.route(method, path, form)
                return status, payload, None
        match = _PATH_RE.match(path)
        resource = match["resource"] if match else ""
        sid = match["sid"] if match else None
        kind = {
            "Messages": "messages",
            "Calls": "calls",
            "Recordings": "recordings",
            "Transcriptions": "transcriptions",
        }.get(resource, "unknown")
        if match is None:
            return self._reject(
                kind, method, path, form, 20404, 404, f"The requested resource {path} was not found"
            )
        if not self._authorized(authorization, match["account"]):
            return self._reject(kind, method, path, form, 20003, 401)

        if method == "POST" and sid is None and resource == "Messages":
            return self._create_message(path, form)
        if method == "POST" and sid is None and resource == "Calls":
            return self._create_call(path, form)
        if method == "POST" and sid is not None and resource == "Calls":
            return self._update_call(path, sid, form)
        if method == "GET" and sid is not None and resource in ("Messages", "Calls"):
            obj = self._by_sid.get(sid)
            wanted = FakeMessage if resource == "Messages" else FakeCall
            if not isinstance(obj, wanted):
                return self._reject(
                    kind,
                    method,
                    path,
                    form,
                    20404,
                    404,
                    f"The requested resource {path} was not found",
                )
            return 200, obj.to_json(self.account_sid), None
        if method == "GET" and sid is None and resource == "Messages":
            return 200, self._list_messages(match["account"], form), None
        if method == "GET" and sid is None and resource == "Calls":
            return 200, self._list_calls(match["account"], form), None
        if method == "GET" and match["sub"] and resource == "Recordings":
            return 200, self._transcriptions_of(match["account"], sid), None
        if method == "DELETE" and sid is not None and not match["sub"]:
            rule = self._take_failure("deletions", None)
            if rule is not None:
                return self._reject(
                    "deletions", method, path, form, rule.code, rule.status, rule.message
                )
            self._deletions.append(
                Deletion(
                    kind=kind, sid=sid, received_monotonic=time.monotonic(), received_at=_now_wall()
                )
            )
            return 204, None, None
        return self._reject(
            kind, method, path, form, 20404, 404, f"The requested resource {path} was not found"
        )

    def add_transcription(self, recording_sid: str) -> str:
        """Twilio transcribed a recording: a transcription now exists there (listed under the
        recording until it is deleted). Returns its sid."""
        sid = "TR" + secrets.token_hex(16)
        with self._cond:
            self._transcriptions.setdefault(recording_sid, []).append(sid)
        return sid

    def add_twiml_message(self, to: str, from_: str, body: str, at: datetime | None = None) -> str:
        """Twilio sent a message a webhook answered with as TwiML (`<Message>`), at `at`
        (default now): it exists here, listed like any other, though the app never created
        it. Returns its sid."""
        return self._kept_message(to, from_, body, at, "delivered", "outbound-reply")

    def add_inbound_message(
        self, from_: str, to: str, body: str, at: datetime | None = None
    ) -> str:
        """Someone texted `to` (our number) at `at` (default now), and Twilio kept it, whether
        or not its webhook reached us. Returns its sid."""
        return self._kept_message(to, from_, body, at, "received", "inbound")

    def _kept_message(
        self, to: str, from_: str, body: str, at: datetime | None, status: str, direction: str
    ) -> str:
        with self._cond:
            msg = FakeMessage(
                sid=_new_sid("SM"),
                to=to,
                from_=from_,
                body=body,
                status_callback=None,
                media_urls=[],
                form={},
                received_monotonic=time.monotonic(),
                received_at=at or _now_wall(),
                status=status,
                direction=direction,
            )
            self._messages.append(msg)
            self._by_sid[msg.sid] = msg
        return msg.sid

    def add_inbound_call(
        self,
        from_: str,
        to: str,
        at: datetime | None = None,
        *,
        dialled: Sequence[str] = (),
        answered: str | None = None,
    ) -> str:
        """Someone called `to` at `at` (default now). `dialled`: the numbers a <Dial> rang
        (Studio's fallback flow), each a child leg; `answered`: the one that picked up.
        Returns the parent call's sid."""
        when = at or _now_wall()
        with self._cond:
            parent = self._call_record(from_, to, when, "inbound", None, "completed")
            for number in dialled:
                status = "completed" if number == answered else "no-answer"
                self._call_record(to, number, when, "outbound-dial", parent.sid, status)
        return parent.sid

    def _call_record(
        self, from_: str, to: str, at: datetime, direction: str, parent: str | None, status: str
    ) -> FakeCall:
        call = FakeCall(
            sid=_new_sid("CA"),
            to=to,
            from_=from_,
            url=None,
            twiml=None,
            status_callback=None,
            status_callback_events=[],
            machine_detection=None,
            form={},
            received_monotonic=time.monotonic(),
            received_at=at,
            status=status,
            direction=direction,
            parent_call_sid=parent,
        )
        self._calls.append(call)
        self._by_sid[call.sid] = call
        return call

    def _list_calls(self, account: str, form: Form) -> dict[str, Any]:
        """``GET Calls.json``: one page, filtered by ``To``, ``From``, ``ParentCallSid`` and
        ``StartTime>`` / ``StartTime<``; lock held."""
        deleted = {d.sid for d in self._deletions if d.kind == "calls"}
        after, before = _first(form, "StartTime>"), _first(form, "StartTime<")
        parent = _first(form, "ParentCallSid")
        items = [
            c.to_json(account)
            for c in self._calls
            if c.sid not in deleted
            and c.to == (_first(form, "To") or c.to)
            and c.from_ == (_first(form, "From") or c.from_)
            and (parent is None or c.parent_call_sid == parent)
            and (not after or c.received_at >= _instant(after))
            and (not before or c.received_at < _instant(before))
        ]
        return _one_page("calls", f"/{API_VERSION}/Accounts/{account}/Calls.json", items)

    def _list_messages(self, account: str, form: Form) -> dict[str, Any]:
        """``GET Messages.json``: one page of the messages not deleted, filtered by ``To``,
        ``From``, ``DateSent>`` and ``DateSent<`` (ISO 8601, compared with when the fake got
        them); lock held."""
        deleted = {d.sid for d in self._deletions if d.kind == "messages"}
        after, before = _first(form, "DateSent>"), _first(form, "DateSent<")
        items = [
            m.to_json(account)
            for m in self._messages
            if m.sid not in deleted
            and m.to == (_first(form, "To") or m.to)
            and m.from_ == (_first(form, "From") or m.from_)
            and (not after or m.received_at >= _instant(after))
            and (not before or m.received_at < _instant(before))
        ]
        return _one_page("messages", f"/{API_VERSION}/Accounts/{account}/Messages.json", items)

    def _transcriptions_of(self, account: str, recording_sid: str) -> dict[str, Any]:
        """``GET Recordings/{sid}/Transcriptions.json``: one page; lock held."""
        deleted = {d.sid for d in self._deletions}
        base = f"/{API_VERSION}/Accounts/{account}/Recordings/{recording_sid}/Transcriptions.json"
        items = [
            {"sid": sid, "account_sid": account, "recording_sid": recording_sid}
            for sid in self._transcriptions.get(recording_sid, [])
            if sid not in deleted
        ]
        return _one_page("transcriptions", base, items)

    def _create_message(
        self, path: str, form: Form
    ) -> tuple[int, dict[str, Any] | None, Callable[[], None] | None]:
        """``POST Messages.json``; lock held."""
        to = _first(form, "To")
        body = _first(form, "Body")
        media = form.get("MediaUrl", [])
        if not to:
            return self._reject("messages", "POST", path, form, 21604, 400)
        if not (_first(form, "From") or _first(form, "MessagingServiceSid")):
            return self._reject("messages", "POST", path, form, 21603, 400)
        if not (body or media or _first(form, "ContentSid")):
            return self._reject("messages", "POST", path, form, 21602, 400)
        if body is not None and len(body) > 1600:
            return self._reject("messages", "POST", path, form, 21617, 400)
        rule = self._take_failure("messages", to)
        if rule is not None:
            return self._reject(
                "messages", "POST", path, form, rule.code, rule.status, rule.message
            )
        msg = FakeMessage(
            sid=_new_sid("SM"),
            to=to,
            from_=_first(form, "From"),
            body=body,
            status_callback=_first(form, "StatusCallback"),
            media_urls=list(media),
            form=form,
            received_monotonic=time.monotonic(),
            received_at=_now_wall(),
        )
        self._messages.append(msg)
        self._by_sid[msg.sid] = msg
        after: Callable[[], None] | None = None
        if self.auto_status and msg.status_callback:
            # Started only after the 201 has been written, so the app normally
            # sees the SID before the first callback (as with real Twilio).
            after = threading.Thread(
                target=self._auto_post,
                args=(msg.sid, self.auto_status),
                name=f"FakeTwilio-auto-{msg.sid}",
                daemon=True,
            ).start
        return 201, msg.to_json(self.account_sid), after

    def _create_call(
        self, path: str, form: Form
    ) -> tuple[int, dict[str, Any] | None, Callable[[], None] | None]:
        """``POST Calls.json``; lock held."""
        to = _first(form, "To")
        if not to:
            return self._reject("calls", "POST", path, form, 21201, 400)
        if not _first(form, "From"):
            return self._reject("calls", "POST", path, form, 21213, 400)
        if not (_first(form, "Url") or _first(form, "Twiml") or _first(form, "ApplicationSid")):
            return self._reject("calls", "POST", path, form, 21205, 400)
        rule = self._take_failure("calls", to)
        if rule is not None:
            return self._reject("calls", "POST", path, form, rule.code, rule.status, rule.message)
        call = FakeCall(
            sid=_new_sid("CA"),
            to=to,
            from_=_first(form, "From"),
            url=_first(form, "Url"),
            twiml=_first(form, "Twiml"),
            status_callback=_first(form, "StatusCallback"),
            status_callback_events=list(form.get("StatusCallbackEvent", [])),
            machine_detection=_first(form, "MachineDetection"),
            form=form,
            received_monotonic=time.monotonic(),
            received_at=_now_wall(),
        )
        self._calls.append(call)
        self._by_sid[call.sid] = call
        return 201, call.to_json(self.account_sid), None

    def _update_call(
        self, path: str, sid: str, form: Form
    ) -> tuple[int, dict[str, Any] | None, Callable[[], None] | None]:
        """``POST Calls/{sid}.json``; lock held."""
        call = self._by_sid.get(sid)
        if not isinstance(call, FakeCall):
            return self._reject(
                "call_updates",
                "POST",
                path,
                form,
                20404,
                404,
                f"The requested resource {path} was not found",
            )
        rule = self._take_failure("call_updates", call.to)
        if rule is not None:
            return self._reject(
                "call_updates", "POST", path, form, rule.code, rule.status, rule.message
            )
        status = _first(form, "Status")
        update = CallUpdate(
            sid=sid,
            status=status,
            url=_first(form, "Url"),
            twiml=_first(form, "Twiml"),
            form=form,
            received_monotonic=time.monotonic(),
            received_at=_now_wall(),
        )
        self._call_updates.append(update)
        if status:
            call.status = status
        if update.url:
            call.url = update.url
        if update.twiml:
            call.twiml = update.twiml
        if _first(form, "StatusCallback"):
            call.status_callback = _first(form, "StatusCallback")
        return 200, call.to_json(self.account_sid), None

    # ------------------------------------------------------------- status callbacks

    def post_status(
        self,
        sid: str,
        status: str,
        error_code: int | None = None,
        public_url_base: str | None = None,
        *,
        answered_by: str | None = None,
        call_duration: int | None = None,
        extra: dict[str, str] | None = None,
        deliver_to: str | None = None,
    ) -> int:
        """POST a signed status callback for message/call ``sid``; return the HTTP status.

        Messages get ``MessageSid, MessageStatus, SmsSid, SmsStatus, AccountSid, From,
        To, ApiVersion`` (+ ``ErrorCode`` for ``failed``/``undelivered``, default
        30008, or whenever ``error_code`` is given).  Calls get ``CallSid, CallStatus,
        AccountSid, From, To, Called, Caller, Direction, ApiVersion, CallbackSource,
        SequenceNumber, Timestamp`` (+ ``AnsweredBy`` if given, ``CallDuration``/
        ``Duration`` for ``completed``, ``ErrorCode`` if given).  ``extra`` is merged
        last.  The stored resource's status is updated first, so a subsequent GET
        reflects it.

        :param public_url_base: sign over this base + the callback's path/query
            instead of the callback URL itself (see module docstring).
        :param deliver_to: POST here instead of the recorded ``StatusCallback``.
        :raises KeyError: unknown ``sid``.
        :raises ValueError: the resource has no ``StatusCallback`` and no ``deliver_to``.
        :raises urllib.error.URLError: the callback could not be delivered at all.
        """
        url, signed_url, params = self._build_status(
            sid,
            status,
            error_code,
            public_url_base,
            answered_by,
            call_duration,
            extra,
            deliver_to,
        )
        return self._send_callback(sid, url, signed_url, params, raise_errors=True)

    def _build_status(
        self,
        sid: str,
        status: str,
        error_code: int | None,
        public_url_base: str | None,
        answered_by: str | None,
        call_duration: int | None,
        extra: dict[str, str] | None,
        deliver_to: str | None,
    ) -> tuple[str, str, dict[str, str]]:
        """Update the resource and compute (post url, signed url, params)."""
        with self._cond:
            obj = self._by_sid[sid]
            callback = obj.status_callback
            if not callback and not deliver_to:
                raise ValueError(f"{sid} has no StatusCallback")
            params: dict[str, str] = {
                "AccountSid": self.account_sid,
                "ApiVersion": API_VERSION,
                "From": obj.from_ or "",
                "To": obj.to,
            }
            if isinstance(obj, FakeMessage):
                obj.status = status
                if status in ("failed", "undelivered") and error_code is None:
                    error_code = 30008
                obj.error_code = error_code
                params.update(MessageSid=sid, MessageStatus=status, SmsSid=sid, SmsStatus=status)
                if _first(obj.form, "MessagingServiceSid"):
                    params["MessagingServiceSid"] = _first(obj.form, "MessagingServiceSid") or ""
            else:
                obj.status = status
                seq = self._sequence.setdefault(sid, itertools.count())
                params.update(
                    CallSid=sid,
                    CallStatus=status,
                    Called=obj.to,
                    Caller=obj.from_ or "",
                    Direction="outbound-api",
                    CallbackSource="call-progress-events",
                    SequenceNumber=str(next(seq)),
                    Timestamp=format_datetime(_now_wall()),
                )
                if answered_by is not None:
                    obj.answered_by = answered_by
                    params["AnsweredBy"] = answered_by
                if status == "completed" or call_duration is not None:
                    duration = call_duration or 0
                    obj.duration = duration
                    params["CallDuration"] = str(duration)
                    params["Duration"] = str(max(1, -(-duration // 60)) if duration else 0)
            if error_code is not None:
                params["ErrorCode"] = str(error_code)
            if extra:
                params.update(extra)
        target = callback or deliver_to or ""
        signed_url = target
        if public_url_base:
            parts = urllib.parse.urlsplit(target)
            rest = parts.path + (f"?{parts.query}" if parts.query else "")
            signed_url = public_url_base.rstrip("/") + rest
        return deliver_to or target, signed_url, params

    def _send_callback(
        self,
        sid: str,
        url: str,
        signed_url: str,
        params: dict[str, str],
        *,
        raise_errors: bool,
    ) -> int:
        """POST ``params`` to ``url`` signed over ``signed_url``; record and notify."""
        signature = RequestValidator(self.auth_token).compute_signature(signed_url, params)
        request = urllib.request.Request(
            url,
            data=urllib.parse.urlencode(params).encode(),
            method="POST",
            headers={
                "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
                "User-Agent": "TwilioProxy/1.1",
                "X-Twilio-Signature": signature,
                "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
            },
        )
        http_status: int | None = None
        error: str | None = None
        exc: BaseException | None = None
        try:
            with self._opener.open(request, timeout=self.callback_timeout) as resp:
                resp.read()
                http_status = resp.status
        except urllib.error.HTTPError as e:
            http_status = e.code
            e.read()
            e.close()
        except (urllib.error.URLError, OSError) as e:
            error = repr(e)
            exc = e
        with self._cond:
            self._status_callbacks.append(
                StatusCallbackPost(
                    sid=sid,
                    url=url,
                    signed_url=signed_url,
                    params=params,
                    signature=signature,
                    http_status=http_status,
                    error=error,
                    sent_monotonic=time.monotonic(),
                    sent_at=_now_wall(),
                )
            )
            self._cond.notify_all()
        if exc is not None and raise_errors:
            raise exc
        return http_status if http_status is not None else 0

    def _auto_post(self, sid: str, statuses: Iterable[str]) -> None:
        """Background: post each status in order (``auto_status`` mode)."""
        for status in statuses:
            try:
                url, signed_url, params = self._build_status(
                    sid, status, None, None, None, None, None, None
                )
            except (KeyError, ValueError):
                return
            self._send_callback(sid, url, signed_url, params, raise_errors=False)


def _one_page(name: str, uri: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    """A list resource's only page, as Twilio shapes one."""
    return {
        name: items,
        "uri": uri,
        "first_page_uri": uri,
        "next_page_uri": None,
        "previous_page_uri": None,
        "page": 0,
        "page_size": 50,
        "start": 0,
        "end": len(items),
    }


def _instant(text: str) -> datetime:
    """A DateSent filter: a date or an ISO 8601 instant (UTC)."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)
