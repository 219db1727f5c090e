"""Outbound SMS and calls: through the Twilio SDK, or logged in console mode.

Two kinds of failure (as healthchecks' transports do it): a permanent `SendError` means this
contact cannot be reached this way (bad number, opted out): move on now; a transient one
(Twilio 5xx, 429, network) is retried with backoff.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from twilio.base.exceptions import TwilioException, TwilioRestException

from routing.display import clean_text
from routing.masking import mask_number

log = logging.getLogger(__name__)

# Twilio error codes that no retry will fix.
# https://www.twilio.com/docs/api/errors : invalid/unreachable number, opted out, not allowed.
PERMANENT_CODES = frozenset(
    {
        21211,
        21212,
        21214,
        21217,
        21219,
        21401,
        21407,
        21408,
        21421,
        21610,
        21612,
        21614,
        21606,
        21608,
        21215,
        63003,
        63016,
        63024,
    }
)
OPTED_OUT = 21610


class SendError(Exception):
    """A message or call was not accepted. `permanent` says whether retrying can help."""

    def __init__(self, message: str, *, code: int | None, permanent: bool):
        super().__init__(message)
        self.code = code
        self.permanent = permanent


@dataclass(frozen=True)
class Outbound:
    sid: str
    status: str


@dataclass(frozen=True)
class Arrival:
    """A message or call Twilio took for one of our numbers (whether or not its webhook
    reached us): what a backfill after an outage looks for (routing.backfill)."""

    kind: str  # message | call
    sid: str
    sender: str
    at: datetime
    body: str = ""
    answered_by: str | None = None  # a call: the number whose <Dial> leg picked up


class Notifier(Protocol):
    console: bool

    def send_message(
        self, *, to: str, from_: str, body: str, status_callback: str | None
    ) -> Outbound: ...

    def place_call(
        self,
        *,
        to: str,
        from_: str,
        url: str,
        status_callback: str | None,
        machine_detection: bool = False,
        timeout: int = 30,
    ) -> Outbound: ...

    def delete_message(self, sid: str) -> None: ...

    def delete_call(self, sid: str) -> None: ...

    def find_sent(self, *, to: str, from_: str, body: str, around: datetime) -> list[str]:
        """The sids of messages `from_` sent `to` with exactly `body`, from a few minutes
        before `around` to ten minutes after: an answer we gave as TwiML (Twilio sends it
        within seconds), whose sid we never learned."""

    def delete_recording(self, sid: str) -> None:
        """The recording, and every transcription Twilio made of it."""

    def arrivals(self, *, to: str, since: datetime) -> list[Arrival]:
        """Every message and call that reached `to` since `since`, oldest first."""


def classify(exc: Exception) -> SendError:
    """Map an SDK exception to a SendError (permanent or transient)."""
    if isinstance(exc, TwilioRestException):
        status = exc.status or 0
        transient = status >= 500 or status == 429 or exc.code in (20429, 20500, 20503)
        permanent = not transient and (exc.code in PERMANENT_CODES or 400 <= status < 500)
        return SendError(f"Twilio {status} error {exc.code}", code=exc.code, permanent=permanent)
    return SendError(f"Twilio unreachable: {exc.__class__.__name__}", code=None, permanent=False)


class TwilioNotifier:
    """Sends through a `twilio.rest.Client` (built by hotline.twilio_client)."""

    console = False

    def __init__(self, client):  # noqa: ANN001
        self._client = client

    def send_message(self, *, to, from_, body, status_callback):  # noqa: ANN001
        try:
            msg = self._client.messages.create(
                to=to, from_=from_, body=body, status_callback=status_callback
            )
        except (TwilioException, OSError) as exc:
            raise classify(exc) from exc
        return Outbound(sid=msg.sid, status=msg.status or "queued")

    def place_call(
        self,
        *,
        to,
        from_,
        url,
        status_callback,
        machine_detection=False,  # noqa: ANN001
        timeout=30,
    ):
        extra = {"machine_detection": "Enable"} if machine_detection else {}
        try:
            call = self._client.calls.create(
                to=to,
                from_=from_,
                url=url,
                status_callback=status_callback,
                status_callback_event=["initiated", "ringing", "answered", "completed"],
                timeout=timeout,
                **extra,
            )
        except (TwilioException, OSError) as exc:
            raise classify(exc) from exc
        return Outbound(sid=call.sid, status=call.status or "queued")

    def delete_message(self, sid: str) -> None:
        self._delete(self._client.messages(sid))

    def delete_call(self, sid: str) -> None:
        self._delete(self._client.calls(sid))

    def find_sent(self, *, to: str, from_: str, body: str, around: datetime) -> list[str]:
        try:
            sent = self._client.messages.list(
                to=to,
                from_=from_,
                date_sent_after=around - timedelta(minutes=5),
                date_sent_before=around + timedelta(minutes=10),
                limit=50,
            )
        except (TwilioException, OSError) as exc:
            raise classify(exc) from exc
        return [message.sid for message in sent if (message.body or "") == body]

    def arrivals(self, *, to: str, since: datetime) -> list[Arrival]:
        try:
            messages = self._client.messages.list(to=to, date_sent_after=since, limit=5000)
            calls = self._client.calls.list(to=to, start_time_after=since, limit=5000)
            found = [
                Arrival("message", m.sid, m.from_, m.date_sent or m.date_created, m.body or "")
                for m in messages
                if m.direction == "inbound"
            ]
            for call in calls:
                if call.direction != "inbound":
                    continue
                legs = self._client.calls.list(parent_call_sid=call.sid, limit=50)
                answered = next((leg.to for leg in legs if leg.status == "completed"), None)
                when = call.start_time or call.date_created
                # the SDK names a call's From `_from` (a message's is `from_`)
                found.append(Arrival("call", call.sid, call._from, when, answered_by=answered))
        except (TwilioException, OSError) as exc:
            raise classify(exc) from exc
        return sorted(found, key=lambda arrival: arrival.at)

    def delete_recording(self, sid: str) -> None:
        try:
            transcriptions = self._client.recordings(sid).transcriptions.list()
        except TwilioRestException as exc:
            if exc.status != 404:
                raise classify(exc) from exc
            transcriptions = []  # the recording is gone, and its transcriptions with it
        except (TwilioException, OSError) as exc:
            raise classify(exc) from exc
        for transcription in transcriptions:
            self._delete(self._client.transcriptions(transcription.sid))
        self._delete(self._client.recordings(sid))

    @staticmethod
    def _delete(resource) -> None:  # noqa: ANN001
        try:
            resource.delete()
        except TwilioRestException as exc:
            if exc.status != 404:  # already gone is what we wanted
                raise classify(exc) from exc
        except (TwilioException, OSError) as exc:
            raise classify(exc) from exc


class ConsoleNotifier:
    """Console mode: every outbound SMS and call is written to the log, numbers masked."""

    console = True

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    def _sid(self, prefix: str) -> str:
        # random, as Twilio's are: a counter would start again with each process and each
        # restart, and a SID stored before would refuse the next send's outcome
        return f"{prefix}{secrets.token_hex(16)}"

    def send_message(self, *, to, from_, body, status_callback):  # noqa: ANN001
        log.warning("CONSOLE SMS to %s:\n%s", mask_number(to), clean_text(body))
        self.sent.append(("sms", to, body))
        return Outbound(sid=self._sid("SM"), status="sent")

    def place_call(
        self,
        *,
        to,
        from_,
        url,
        status_callback,
        machine_detection=False,  # noqa: ANN001
        timeout=30,
    ):
        log.warning("CONSOLE CALL to %s (call flow %s)", mask_number(to), url.split("?")[0])
        self.sent.append(("call", to, url))
        return Outbound(sid=self._sid("CA"), status="queued")

    def delete_message(self, sid: str) -> None:
        log.info("CONSOLE delete message %s", sid)

    def delete_call(self, sid: str) -> None:
        log.info("CONSOLE delete call %s", sid)

    def find_sent(self, *, to, from_, body, around):  # noqa: ANN001, ANN201
        return []  # console mode answers in the log, never through Twilio

    def delete_recording(self, sid: str) -> None:
        log.info("CONSOLE delete recording %s", sid)

    def arrivals(self, *, to: str, since: datetime) -> list[Arrival]:
        return []  # console mode: nothing reaches Twilio, so nothing waits there
