"""Scenario 3b: each level-2 page against the instant the database planned it for, to the ms.

The escalation scenario judges steps by when they ran; here the clock stops where a person's
phone starts: at the fake Twilio API. For every incident:

- its planned due time is read from the database itself: `incident.next_step_at`, which
  `routing.escalation.run_step` writes when level 1 runs (level 1's instant + the wait). The
  driver reads it while the incident waits for level 2 (every 100 ms, well inside the wait),
  and checks it against the audit trail's `paged` event of level 1 + the wait;
- its level-2 page's arrival is the fake's wall-clock `received_at` (the same system clock the
  worker reads);
- lateness = arrival − planned due. Never early: the minimum must be ≥ 0, to the millisecond,
  not to a poll interval. p50 / p99 say how late.

Defenders write one at a time, 0.9–1.5 s apart (seeded, so due times fall at every phase of
the worker's and the scheduler's poll intervals), level 1 waits `WAIT_S`, and a colleague
resolves each incident as soon as its level-2 page is in: few incidents are ever open at once,
so no page is bundled into a surge digest (routing.bundling) and every one is measured.
"""

from __future__ import annotations

import random
import time
from datetime import datetime

from bench.common import (
    BenchHotline,
    Options,
    Report,
    new_sid,
    planned_due,
    rota_text,
    sender_number,
    settle,
    signed_post,
    sms_params,
    staff_command,
    step_times,
    summary,
)

WAIT_S = 3.0
GAP_S = (0.9, 1.5)
POLL_S = 0.1
SEED = 11


def run(opts: Options, db: str) -> Report:
    report = Report("punctuality", db)
    count = 20 if opts.quick else 100
    gaps = random.Random(SEED)
    planned: dict[int, datetime] = {}
    changed = 0  # incidents whose planned due time moved while we watched (it must not)
    arrived: dict[int, datetime] = {}
    failures = 0
    rota = rota_text(wait1=f"{WAIT_S:.0f}s", wait2="30m")
    with BenchHotline(db, rota=rota, **opts.hotline_kwargs()) as hotline:
        hotline.start_web()
        hotline.start_worker()
        settle(hotline)
        sent = 0
        next_send = time.monotonic()
        deadline = next_send + count * GAP_S[1] + WAIT_S + 60
        while time.monotonic() < deadline:
            if sent < count and time.monotonic() >= next_send:
                status = signed_post(
                    hotline.sms_url,
                    sms_params(
                        new_sid(),
                        sender_number(700_000 + sent),
                        "they are outside",
                        hotline.fake.account_sid,
                    ),
                    hotline.token,
                )
                failures += status != 200
                sent += 1
                next_send += gaps.uniform(*GAP_S)
            for incident, due in planned_due(hotline, step=1).items():
                if planned.setdefault(incident, due) != due:
                    changed += 1
            for incident, message in hotline.pages("bo"):
                if incident not in arrived:
                    arrived[incident] = message.received_at
                    staff_command(hotline, "bo", f"RESOLVE {incident}")
            if sent == count and len(arrived) >= count - failures:
                break
            time.sleep(POLL_S)
        ran = step_times(hotline)
        bundled = hotline.scalar("SELECT count(*) FROM page WHERE step = 1 AND status = 'bundled'")

    # the audit trail's level-1 instant + the wait must be the very same planned instant
    disagree = [
        abs(ran[n][0] + WAIT_S - due.timestamp())
        for n, due in planned.items()
        if 0 in ran.get(n, {})
    ]
    page_late = [
        at.timestamp() - planned[n].timestamp() for n, at in arrived.items() if n in planned
    ]
    step_late = [ran[n][1] - planned[n].timestamp() for n in planned if 1 in ran.get(n, {})]
    missing = count - failures - len(page_late)
    report.add("incidents (defenders 0.9–1.5 s apart, level-1 wait 3 s)", count)
    report.add("planned due time read from incident.next_step_at", len(planned))
    report.add(
        "…differing from audit trail (level 1 + wait) by more than 1 ms",
        sum(1 for d in disagree if d > 0.001),
    )
    report.add("…changed while waiting", changed)
    late = report.add_latency("level-2 page reached Twilio after its planned due time", page_late)
    report.add("earliest level-2 page against its due time", late["min"], "ms")
    report.add_latency("level-2 step ran after its planned due time (audit trail)", step_late)
    report.add("level-2 pages bundled into a digest (not measured)", bundled)
    report.add("webhooks not answered 200", failures)
    report.add("level-2 pages not seen (or due time not read)", missing)
    report.check(
        "level-2 page never early, to the ms (Twilio arrival − planned due)",
        missing == 0 and changed == 0 and late["min"] >= 0,
        f"min {late['min']:,.1f} ms · p50 {late['p50']:,.0f} · p99 {late['p99']:,.0f}"
        f" ms (n={late['n']})",
    )
    report.raw["step late min ms"] = summary(step_late)["min"]
    return report
