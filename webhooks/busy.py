"""How busy this web process is: whether a defender's message is threaded in the webhook or
left to a worker.

Threading a message (finding the person, opening or joining their incident, planning the
first page) is four fifths of a webhook's work, and on SQLite it holds the one write lock
while it runs. Alone, the webhook does it, right after its answer (routing.intake: the
auto-reply is decided from reads and rides on the TwiML answer); when other messages are
already being handled in this process (a surge), it only stores the message and a worker
threads the backlog in batches (routing.intake `defer`). A request counts as in flight
until the threading after its answer is done. Nothing is lost either way: the message is
committed before the webhook answers.

A surge is a rate, not only what is in flight at one instant: with many clients, a process
often has just this one request in its view between two others. So a message that comes
within SURGE_WINDOW_S of SURGE_ARRIVALS others to this process counts as busy too: more
than 80 a second to one process, where threading each inline (5-7 ms of CPU, on cores the
worker shares) would fall behind. The window is long enough to see a rate: with 10 ms (and
three others) a process taking 250 messages a second often saw only two, threaded those
inline, slowed, and saw fewer still; the closed-loop benchmark then took 430-580 messages
a second instead of 900-1,250.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

# app.config key: how many /twilio/sms requests may be in flight in one process, this one
# counted, for it still to thread inline. 0: always defer (tests of the deferred path).
INLINE_LIMIT = "HOTLINE_INLINE_THREADING_LIMIT"
DEFAULT_INLINE_LIMIT = 1
# app.extensions key: the app's InFlight count of /twilio/sms requests (webhooks.register)
IN_FLIGHT = "hotline_sms_in_flight"
# a message that comes within this long of this many others to the process is part of a surge
SURGE_WINDOW_S = 0.050
SURGE_ARRIVALS = 4
# app.config key: SURGE_ARRIVALS for this app. The test server raises it: a test's messages
# come one after another faster than any defender writes, and are no surge
SURGE_AT = "HOTLINE_SURGE_ARRIVALS"


@dataclass(frozen=True)
class Load:
    """What a request saw as it came in: the requests in flight, itself included, and how
    many others came in the SURGE_WINDOW_S before it."""

    in_flight: int
    arrived_recently: int

    def busy(self, inline_limit: int, surge_arrivals: int = SURGE_ARRIVALS) -> bool:
        """Whether to store only and leave the threading to a worker."""
        return self.in_flight > inline_limit or self.arrived_recently >= surge_arrivals


class InFlight:
    """A count of requests in flight in this process, and of those that came in lately."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._count = 0
        self._arrivals: deque[float] = deque()
        self._clock = clock
        self._lock = threading.Lock()

    def enter(self) -> Load:
        """Count a request in (until `leave`); returns the load it came into."""
        with self._lock:
            now = self._clock()
            while self._arrivals and self._arrivals[0] < now - SURGE_WINDOW_S:
                self._arrivals.popleft()
            self._count += 1
            load = Load(self._count, len(self._arrivals))
            self._arrivals.append(now)
        return load

    def leave(self) -> None:
        """Count a request out: its work, after its answer too, is done."""
        with self._lock:
            self._count -= 1
