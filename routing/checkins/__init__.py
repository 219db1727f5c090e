"""Check-ins: a defender who goes silent is noticed, and a duress word raises the alarm quietly.

`CHECKIN 17 <when>` (a staff command) writes a `Checkin` row: the defender of #17 must get in
touch by `due_at`. Every contact of theirs (a message or a call, on any channel) goes through
the intake's thread step, which calls `on_contact` in its own transaction: a one-off check-in
ends `kept`, a standing one (`every 6h`) moves its deadline to 6 h after the contact.

A deadline is held in the database like an escalation step: a job scheduled for it
(routing.tasks.checkin_job) and every worker's sweeper call `miss`, which claims the check-in
under its incident's row lock only once it is due, so it is never early and runs once. A miss
reopens the incident and puts its escalation cursor back at step 0, due now: level 1 is paged
`MISSED CHECK-IN #17` (run_step takes the text from `alarm_page`) and the chain runs as for a
new incident.

A message under an active check-in that holds a duress word (settings.duress_words; case and
accents ignored, whole words) is, for the defender, like any other message (same reply, same
auto-reply), and raises the same alarm as `DURESS #17` at once, also on an acknowledged
incident, whose taker is told too. It is no safe check-in: the deadline stands.

Nothing here ever sends anything to the defender: a seized phone must show nothing unusual.

The package: `deadline` (pure: the deadline, duress words), `command` (CHECKIN n), `contact` (a
defender's contact, the intake's hook), `alarm` (a miss, a duress word), `records` (what the
log shows, retention).
"""

from __future__ import annotations

from routing.checkins.alarm import alarm_page, alarms_standing, miss, overdue, raise_alarm
from routing.checkins.command import checkin_command
from routing.checkins.common import ACTIVE, ALARM_ENDS, ALARMS, MAX_AHEAD, MIN_AHEAD, Refused
from routing.checkins.contact import on_contact
from routing.checkins.deadline import deadline, fold, has_duress_word
from routing.checkins.records import active_checkins, end_for_erased, status_notes

__all__ = [
    "ACTIVE",
    "ALARMS",
    "ALARM_ENDS",
    "MAX_AHEAD",
    "MIN_AHEAD",
    "Refused",
    "active_checkins",
    "alarm_page",
    "alarms_standing",
    "checkin_command",
    "deadline",
    "end_for_erased",
    "fold",
    "has_duress_word",
    "miss",
    "on_contact",
    "overdue",
    "raise_alarm",
    "status_notes",
]
