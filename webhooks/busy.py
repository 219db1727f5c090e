"""How busy this web process is: whether a defender's message is threaded in the webhook or
left to a worker.

Threading a message (finding the person, opening or joining their incident, planning the
first page) is four fifths of a webhook's work, and on SQLite it holds the one write lock
while it runs. Alone, the webhook does it, so the incident exists and the auto-reply rides on
the TwiML answer; when other messages are already being handled in this process (a surge),
it only stores the message and a worker threads the backlog in batches (routing.intake
`defer`). Nothing is lost either way: the message is committed before the webhook answers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

# app.config key: how many /twilio/sms requests may be in flight in one process, this one
# counted, for it still to thread inline. 0: always defer (tests of the deferred path).
INLINE_LIMIT = "HOTLINE_INLINE_THREADING_LIMIT"
DEFAULT_INLINE_LIMIT = 1
# app.extensions key: the app's InFlight count of /twilio/sms requests (webhooks.register)
IN_FLIGHT = "hotline_sms_in_flight"


class InFlight:
    """A count of requests in flight in this process."""

    def __init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()

    @contextmanager
    def entered(self) -> Iterator[int]:
        """Count this request in while the block runs; yields the count, this one included."""
        with self._lock:
            self._count += 1
            count = self._count
        try:
            yield count
        finally:
            with self._lock:
                self._count -= 1
