"""Logging that is safe to hand over: no phone numbers, at any level.

Our own code never logs numbers or message texts (ids and staff ids only; console mode prints
what would have been sent). This is the second line: a filter on the process's log handlers
that blanks anything shaped like a phone number (a third-party exception message, a rota error
quoting a staff member's phone), in messages and tracebacks alike, and indents every line after
a record's first, so that no text from outside (a relayed message holding a line break) can
pass for a record of its own. And the Twilio SDK's request log, which prints every request's form
(numbers and texts) at INFO, is kept at WARNING however logging is configured.
"""

from __future__ import annotations

import logging
import os
import re
import traceback

# "+447700900123", "447700900123", "086 765 4321": 7 to 15 digits, single spaces allowed.
# Not inside a word (Twilio sids like SM1234…), and dates/times ("2026-11-02 09:00") have too
# few digits between their separators to match.
PHONE_LIKE = re.compile(r"(?<![\w+])\+?\d(?: ?\d){6,14}(?!\w)")
REDACTED = "[number]"
CONTINUED = "    | "  # begins every further line of a record: no record begins so
# alembic: "Context impl ..." at every schema check; hotline.migrate logs what it applied
QUIET = ("twilio.http_client", "urllib3", "rq.worker", "rq.scheduler", "alembic")
OWN_HANDLERS = ("rq.worker", "rq.scheduler")


def redact(text: str) -> str:
    return PHONE_LIKE.sub(REDACTED, text)


class RedactNumbers(logging.Filter):
    """Rewrites each record's message (and traceback) with phone-like digit runs blanked."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: let the handler report it as usual
            return True
        record.msg, record.args = redact(message).replace("\n", "\n" + CONTINUED), None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip())
        return True


def quiet_third_parties() -> None:
    """Keep libraries that log request bodies (twilio's http_client), or chatter, at WARNING."""
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)


def configure(default: int = logging.INFO) -> None:
    """Root logging for a hotline process: level from HOTLINE_LOG_LEVEL (DEBUG, INFO, …),
    numbers redacted on every handler, chatty libraries quiet."""
    name = os.environ.get("HOTLINE_LOG_LEVEL", "").strip().upper()
    level = logging.getLevelName(name) if name else default
    if not isinstance(level, int):
        level = default
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)-7s %(processName)s %(name)s: %(message)s"
    )
    # on our handlers, and on the loggers of RQ, which adds handlers of its own later
    targets = [*logging.getLogger().handlers, *(logging.getLogger(n) for n in OWN_HANDLERS)]
    for target in targets:
        if not any(isinstance(f, RedactNumbers) for f in target.filters):
            target.addFilter(RedactNumbers())
    quiet_third_parties()
