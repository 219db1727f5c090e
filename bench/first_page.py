"""Scenario 2, idle half: 50 defenders one after another, webhook answer and webhook to page.

One defender message at a time (each from a new sender, so each opens an incident), on an
otherwise idle hotline (`hotline serve` + one `hotline worker`). For each: the webhook's answer
time, and the time from the signed POST leaving to the level-1 page reaching the fake Twilio
API. As soon as the page is there another staff member (level 2, `bo`) resolves the incident
by SMS, as a colleague would, and the next defender writes at once: the resolution's
stand-down to the paged person and its confirmation are still being sent by the same worker
when the next page is due, so the page has to get ahead of them (the pool's priorities).
The loaded half is measured in bench.webhook_load, during the fixed-rate runs.

The first defender after the processes start is reported on its own, not in the idle
percentiles: each process pays one-time costs on its first webhook, step and send (SQLAlchemy
compiles each statement once per process; a full run measured 60-100 ms to its page against
20-35 ms for the next ones), so with 50 samples, where p99 is nearly the maximum, it alone
would decide the idle figure.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bench.common import (
    STAFF,
    BenchHotline,
    FakeMessage,
    Options,
    Report,
    new_sid,
    sender_number,
    settle,
    signed_post,
    sms_params,
    staff_command,
    step_times,
    tail,
    tail_text,
    wait_until,
)

TARGET_WEBHOOK_P99_MS = 20.0
TARGET_PAGE_P99_MS = 50.0
PAGE_TIMEOUT_S = 10.0


def run(opts: Options, db: str) -> Report:
    report = Report("first_page", db)
    samples = 15 if opts.quick else 50
    with BenchHotline(db, **opts.hotline_kwargs()) as hotline:
        hotline.start_web()
        hotline.start_worker()
        settle(hotline)
        cold = _one_defender(hotline, -1)
        page_s: list[float] = []
        webhook_s: list[float] = []
        failures = 0
        sent_wall: dict[int, float] = {}  # incident -> epoch seconds its webhook left
        pages: dict[int, FakeMessage] = {}
        for i in range(samples):
            done = _one_defender(hotline, i)
            if done.webhook_s is not None:
                webhook_s.append(done.webhook_s)
            if done.page is None:
                failures += 1
                continue
            page_s.append(done.page_s)
            sent_wall[done.incident], pages[done.incident] = done.sent_wall, done.page
        # the first defender after start-up, on its own (see the module's docstring)
        report.add(
            "cold start, first defender after start-up: webhook answer", cold.webhook_s * 1000, "ms"
        )
        report.add(
            "cold start, first defender after start-up: webhook → first page",
            float("nan") if cold.page is None else cold.page_s * 1000,
            "ms",
        )
        report.add_latency(f"webhook answer ({samples} defenders, one at a time)", webhook_s)
        stats = report.add_latency(
            f"webhook → first page ({samples} defenders, one at a time)", page_s
        )
        report.add(f"failures (non-200 or no page within {PAGE_TIMEOUT_S:.0f} s)", failures)
        settle(hotline)
        _breakdown(report, hotline, sent_wall, pages)
        pia = dict(STAFF.values())["pia"]
        report.add(
            "stand-downs the paged person got (sent by the same worker)",
            sum(
                1 for m in hotline.fake.messages if m.to == pia and "resolved by" in (m.body or "")
            ),
        )
        webhook = report.raw[f"webhook answer ({samples} defenders, one at a time)"]
        report.check(
            f"idle webhook answer p99 < {TARGET_WEBHOOK_P99_MS:.0f} ms",
            failures == 0 and tail(webhook) < TARGET_WEBHOOK_P99_MS,
            tail_text(webhook),
        )
        report.check(
            f"idle first page p99 < {TARGET_PAGE_P99_MS:.0f} ms ({samples} defenders)",
            failures == 0 and tail(stats) < TARGET_PAGE_P99_MS,
            tail_text(stats),
        )
    return report


@dataclass
class _Defender:
    """One defender's message, timed: `page` is None when it failed (non-200, no page)."""

    webhook_s: float | None = None
    page_s: float | None = None
    incident: int | None = None
    page: FakeMessage | None = None
    sent_wall: float = 0.0


def _one_defender(hotline: BenchHotline, i: int) -> _Defender:
    """A new defender writes; once the page is at the fake a colleague resolves the incident
    (a stand-down to the paged person follows, through the same worker as the next page)."""
    params = sms_params(
        new_sid(), sender_number(500_000 + i), "help, they took Ana", hotline.fake.account_sid
    )
    start, start_wall = time.monotonic(), time.time()
    status = signed_post(hotline.sms_url, params, hotline.token)
    done = _Defender(webhook_s=time.monotonic() - start, sent_wall=start_wall)
    if status != 200:
        return done
    done.incident = _incident_of(hotline, params["MessageSid"])
    try:
        page = hotline.fake.wait_for(
            lambda n=done.incident: _page_for(hotline, n), timeout=PAGE_TIMEOUT_S
        )
    except TimeoutError:  # counted; the run goes on
        return done
    done.page, done.page_s = page, page.received_monotonic - start
    staff_command(hotline, "bo", f"RESOLVE {done.incident}")
    return done


def _incident_of(hotline: BenchHotline, sid: str) -> int:
    """The incident the defender message `sid` opened (the webhook threads it before it
    answers; the sweeper would do it within seconds otherwise)."""

    def found() -> int | None:
        return hotline.scalar("SELECT incident_id FROM message WHERE sid = :sid", sid=sid)

    return wait_until(found, PAGE_TIMEOUT_S, f"incident of {sid}", interval=0.002)


def _page_for(hotline: BenchHotline, incident: int) -> FakeMessage | None:
    """The level-1 page of `incident` at the fake, if it is there."""
    return next((m for n, m in hotline.pages("pia") if n == incident), None)


def _breakdown(
    report: Report,
    hotline: BenchHotline,
    sent_wall: dict[int, float],
    pages: dict[int, FakeMessage],
) -> None:
    """Where the webhook → page time goes, from the audit trail's instants (one system clock):
    webhook → incident opened (the webhook's own work), opened → level 1 ran (the rest of the
    webhook's transaction, the step's item on the Redis due list, the worker's waker and
    pool), level 1 ran → page at Twilio (the rest of the step and its commit, the send in the
    worker's pool: the HTTP call, after a claim of its own only when the step could not write
    the page claimed, routing.outbox `claim_now`)."""
    from sqlmodel import Session, select

    from routing.tables import Event

    steps = step_times(hotline)
    with Session(hotline.engine) as session:
        opened_at = {
            n: at.timestamp()
            for n, at in session.exec(
                select(Event.incident_id, Event.at).where(Event.kind == "opened")
            ).all()
        }
    common = [n for n in pages if n in opened_at and 0 in steps.get(n, {})]
    report.add_latency(
        "… webhook sent → incident opened", [opened_at[n] - sent_wall[n] for n in common]
    )
    report.add_latency(
        "… incident opened → level 1 ran (step via the Redis due list)",
        [steps[n][0] - opened_at[n] for n in common],
    )
    report.add_latency(
        "… level 1 ran → page at Twilio (rest of the step, pool, HTTP)",
        [pages[n].received_at.timestamp() - steps[n][0] for n in common],
    )
