"""Scenarios 5 and 6: a surge of 10,000 messages from 1,000 senders in one minute, and memory.

Open loop at 10,000/60 s ≈ 167 requests a second, message i from sender i mod 1,000 (so every
sender's ten messages are spread over the minute). Afterwards, from the database and the fake
Twilio API: every message stored (inbound count == 10,000) and every webhook answered 200,
threaded into one incident per sender (== 1,000), and how many pages each staff member got
(bundled into digests after the first few a minute: routing.bundling). Peak RSS (VmHWM) of
`hotline serve`'s processes (its parent and each web process) and of the `hotline worker`
(and its RQ scheduler child) is read from /proc at the end: they were started for this run.
"""

from __future__ import annotations

import contextlib
import time

from bench.common import (
    STAFF,
    BenchHotline,
    Options,
    Report,
    counted,
    peak_rss_mb,
    run_load,
    staff_of,
    wait_until,
)


def run(opts: Options, db: str) -> Report:
    report = Report("surge", db)
    messages, senders, seconds = (1_000, 100, 10.0) if opts.quick else (10_000, 1_000, 60.0)
    with BenchHotline(db, **opts.hotline_kwargs()) as hotline:
        web = hotline.start_web()
        worker = hotline.start_worker()
        load = run_load(
            hotline.sms_url,
            hotline.token,
            hotline.fake.account_sid,
            mode="open",
            count=messages,
            senders=senders,
            sender_base=400_000,
            rate=messages / seconds,
            duration=seconds + 1,
        )
        report.add(f"sent {messages:,} from {senders:,} senders over", load.elapsed, "s")
        report.add("webhook answered 200", load.ok)
        report.add_latency("webhook latency during the surge", load.latencies(from_schedule=True))

        def stored() -> int:
            return hotline.scalar("SELECT count(*) FROM message WHERE direction = 'in'")

        def threaded() -> int:
            return hotline.scalar(
                "SELECT count(*) FROM message WHERE direction = 'in' AND status = 'threaded'"
            )

        # the webhooks were busy: most messages wait for the worker's threader (anything it
        # lost is the sweeper's, after ORPHAN_GRACE); the backlog drains at the rate one
        # worker threads
        with contextlib.suppress(TimeoutError):
            wait_until(lambda: threaded() >= messages, 180, "threading", interval=0.5)
        if threaded() >= messages:
            report.add(
                "every message threaded, after the surge's last answer",
                time.monotonic() - max(load.t_done),
                "s",
            )
        incidents = hotline.scalar("SELECT count(*) FROM incident")
        count_in, count_threaded = stored(), threaded()
        report.add("messages stored (database)", count_in)
        report.add("messages threaded into an incident", count_threaded)
        report.add("incidents", incidents)
        per_incident = hotline.rows(
            "SELECT incident_id, count(*) FROM message WHERE direction = 'in' GROUP BY incident_id"
        )
        sizes = sorted(n for _i, n in per_incident)
        if sizes:
            report.add("messages per incident (min / max)", f"{sizes[0]} / {sizes[-1]}")
        # a non-200 is a message Twilio has to retry or send to the fallback URL: a miss
        report.check(
            f"every message stored, 0 non-200 ({messages:,})",
            count_in == messages and load.errors == 0,
            f"{count_in:,} stored, {load.errors} non-200",
        )
        report.check(
            f"one incident per sender ({senders:,})",
            incidents == senders and count_threaded == messages,
            f"{incidents:,} incidents, {count_threaded:,} threaded",
        )

        # most pages are bundled into digests: done when nothing is left to send, held
        # digests included (not when every incident has a page of its own: that never comes)
        with contextlib.suppress(TimeoutError):
            wait_until(
                lambda: _unsent(hotline) == 0,
                60 if opts.quick else 180,
                "pages and digests out",
                interval=0.5,
            )
        last = max(
            (
                m.received_monotonic
                for m in hotline.fake.messages
                if m.to in {phone for _sid, phone in STAFF.values()}
            ),
            default=max(load.t_done),
        )
        report.add(
            "last page or digest out, after the surge's last answer (< 0: before it)",
            last - max(load.t_done),
            "s",
        )
        report.add("still unsent at the end", _unsent(hotline))
        pages = counted(staff_of(m.to) for _n, m in hotline.pages())
        report.add("pages per staff member", ", ".join(f"{k}: {v:,}" for k, v in pages.items()))
        digests = counted(staff_of(m.to) for m in hotline.digests())
        report.add(
            "digests per staff member",
            ", ".join(f"{k}: {v:,}" for k, v in digests.items()) or "none",
        )
        per_incident_pages = counted(str(n) for n, _m in hotline.pages("pia"))
        duplicates = sum(1 for v in per_incident_pages.values() if v > 1)
        report.add("incidents paged more than once at level 1", duplicates)

        server = web.tree()  # `hotline serve`: a parent and its web processes
        report.add("peak RSS web server parent", peak_rss_mb(server[0]), "MiB")
        report.add(
            "peak RSS per web process (max)",
            max((peak_rss_mb(p) for p in server[1:]), default=float("nan")),
            "MiB",
        )
        tree = worker.tree()
        report.add("peak RSS hotline worker", peak_rss_mb(tree[0]) if tree else float("nan"), "MiB")
        if len(tree) > 1:
            report.add("peak RSS RQ scheduler child", peak_rss_mb(tree[1]), "MiB")
    return report


def _unsent(hotline: BenchHotline) -> int:
    """Outbound messages not yet handed to Twilio, held surge digests included."""
    return hotline.scalar(
        "SELECT count(*) FROM message WHERE direction = 'out' AND status IN "
        "('pending', 'submitting', 'retrying', 'held')"
    )
