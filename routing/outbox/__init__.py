"""One outbox for everything the hotline sends: SMS, WhatsApp messages and calls.

An outbound row (a `Message` or a `Call`) is written `pending` in the transaction of the state
change that caused it, and goes:

    pending -> submitting (claimed: attempt counted, committed before the network call)
    or written submitting (claimed by the transaction that wrote it: `add_message` claim_now)
            -> Twilio's statuses, only ever forward (a callback may come before or after we
               record the API's answer: both merge)
            or retrying (a transient failure; due again at `next_attempt_at`)
            or failed (permanent, or out of attempts)
            or cancelled (at its claim, the incident it was for no longer wanted it)
    held -> submitting (a surge digest, due at `next_attempt_at`: routing.bundling)

The network call runs with no transaction open and no lock held. What must hold at send time
is a claim condition, checked under the incident's row lock, the lock an ACK takes: a page or
a notification call leaves only while its incident is still open, retries included; a CALL
bridge only while it is unresolved. A page claimed before an ACK commits has been handed to
Twilio, and the ACK stands its person down. A page its step wrote claimed (under that same
lock, in a worker with a sender free) leaves as it is if a sender takes it within
CLAIM_FRESH_S, and is claimed again otherwise: the moment it is handed over stays within a
tenth of a second of the check.

Failures are classified once, by the transport (routing.notifier.SendError: permanent or
transient). This module records them; what follows a failure (escalate, tell the staff member
who asked for the send) is the caller's (routing.sending).

The package: `write` (add_message, add_call), `send` (claim, transmit, record), `status`
(Twilio's callbacks), `overdue` (the sweeper's view), and what they share in `common`.
"""

from __future__ import annotations

from routing.outbox.common import (
    CALL_ENDED,
    CLAIM_FRESH_S,
    LOWEST,
    MAX_ATTEMPTS,
    MESSAGE_FAILED,
    PRIORITY,
    Outcome,
    backoff,
    priority_of,
)
from routing.outbox.overdue import overdue
from routing.outbox.send import Claimed, claim, record, sender_for, transmit
from routing.outbox.status import record_status
from routing.outbox.write import add_call, add_message, alert

__all__ = [
    "CALL_ENDED",
    "CLAIM_FRESH_S",
    "LOWEST",
    "MAX_ATTEMPTS",
    "MESSAGE_FAILED",
    "PRIORITY",
    "Claimed",
    "Outcome",
    "add_call",
    "add_message",
    "alert",
    "backoff",
    "claim",
    "overdue",
    "priority_of",
    "record",
    "record_status",
    "sender_for",
    "transmit",
]
