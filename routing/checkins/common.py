"""What the check-in modules share: states and limits."""

from __future__ import annotations

import logging
from datetime import timedelta

log = logging.getLogger(__name__)

ACTIVE = "active"
MIN_AHEAD = timedelta(seconds=5)  # short ones are for trying it out; a typo can't page at once
MAX_AHEAD = timedelta(days=7)
# events that start an alarm, and those that end it (someone took the incident again)
ALARMS = ("checkin_missed", "duress")
ALARM_ENDS = ("acknowledged", "resolved")


class Refused(ValueError):
    """A check-in that cannot be set; the message is the reason, as staff read it."""
