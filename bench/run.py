"""`python -m bench`: run the benchmarks and write bench/results.md and the README block.

    python -m bench                      # everything, SQLite and PostgreSQL (~15 min)
    python -m bench --quick              # a small smoke run of everything on SQLite (~2 min)
    python -m bench --db sqlite --only webhook_load --only surge
    python -m bench --quick --only slow_api --twilio-latency 0.4

Each scenario is a module with `run(opts, db) -> Report` (see bench/README.md). Results are
merged into bench/results.json (so `--only` updates one scenario), rendered to
bench/results.md, and, for full runs, to the block between `<!-- bench:start -->` and
`<!-- bench:end -->` in README.md.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench.common import (
    DEFAULT_POSTGRES_URL,
    DEFAULT_REDIS_URL,
    ROOT,
    Options,
    Report,
    own_redis,
)

SCENARIOS = (
    "webhook_load",
    "first_page",
    "slow_api",
    "escalation",
    "punctuality",
    "worker_kill",
    "surge",
    "console",
)
TITLES = {
    "webhook_load": "1 · Webhook throughput and latency (and first page under load)",
    "first_page": "2 · Webhook to first page, idle, 50 defenders one after another",
    "slow_api": "2b · Webhooks and pages while Twilio answers slowly",
    "escalation": "3 · Escalation step lateness with many open incidents",
    "punctuality": "3b · Level-2 pages against their planned due time, to the millisecond",
    "worker_kill": "4 · Next page after a worker is killed",
    "surge": "5–6 · Surge of 10,000 messages from 1,000 senders; memory",
    "console": "8 · Staff console pages with 10,000 incidents and 100,000 messages",
}
BENCH = Path(__file__).resolve().parent
RESULTS_JSON = BENCH / "results.json"
RESULTS_MD = BENCH / "results.md"
README = ROOT / "README.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run (~2 min on SQLite)")
    parser.add_argument(
        "--db", choices=("sqlite", "postgresql", "both"), help="default: both (--quick: sqlite)"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=SCENARIOS,
        metavar="NAME",
        help=f"run only this scenario (repeatable): {', '.join(SCENARIOS)}",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL),
        help="a Redis database of the benchmark's own: it is FLUSHED "
        "(default: a private redis-server started for the run)",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help="a PostgreSQL database to create throw-away schemas in",
    )
    parser.add_argument(
        "--twilio-latency",
        type=_seconds,
        metavar="SECONDS",
        help="the fake Twilio holds back each REST answer this long, in every "
        "scenario run (default: 0, except slow_api: 0.4)",
    )
    parser.add_argument("--keep", action="store_true", help="keep each run's folder and logs")
    parser.add_argument("--no-readme", action="store_true", help="do not touch README.md")
    args = parser.parse_args(argv)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the cleanup, as on Ctrl-C
    redis_proc = None
    if not args.redis_url:
        scratch = Path(tempfile.mkdtemp(prefix="hotline-bench-redis-"))
        redis_proc, args.redis_url = own_redis(scratch)
    try:
        return _run(args)
    finally:
        if redis_proc is not None:
            redis_proc.stop()
            shutil.rmtree(scratch, ignore_errors=True)


def _run(args: argparse.Namespace) -> int:
    opts = Options(
        quick=args.quick,
        redis_url=args.redis_url,
        postgres_url=args.postgres_url,
        keep=args.keep,
        twilio_latency=args.twilio_latency,
    )
    db = args.db or ("sqlite" if args.quick else "both")
    dbs = ["sqlite", "postgresql"] if db == "both" else [db]
    names = args.only or list(SCENARIOS)
    merged = _load(args.quick)
    failed = 0
    started = time.monotonic()
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        for db in dbs:
            print(f"== {name} on {db} ...", flush=True)
            t0 = time.monotonic()
            try:
                report = module.run(opts, db)
            except Exception:  # one broken scenario must not lose the others' numbers
                failed += 1
                traceback.print_exc()
                report = Report(name, db)
                report.notes.append("failed: " + traceback.format_exc().splitlines()[-1])
            report.raw["seconds"] = round(time.monotonic() - t0, 1)
            if args.twilio_latency is not None:
                report.raw["twilio latency s"] = args.twilio_latency
                report.notes.append(
                    f"--twilio-latency {args.twilio_latency:g}: the fake "
                    "Twilio API held back each answer that long"
                )
            # each scenario's own commit: `--only` merges one into results of another
            merged["reports"][f"{name}/{db}"] = {**report.to_json(), "commit": _commit()}
            _print(report)
            _save(merged)  # after every scenario: an interrupted run keeps what it measured
    merged["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    _save(merged)
    RESULTS_MD.write_text(render(merged))
    print(f"wrote {RESULTS_MD.relative_to(ROOT)} ({time.monotonic() - started:,.0f} s)")
    if args.twilio_latency is not None and not args.quick and not args.no_readme:
        # the README's table is the canonical run: each scenario at its own latency
        print("--twilio-latency given: README.md not updated (see bench/results.md)")
    elif not args.quick and not args.no_readme:
        _update_readme(merged)
    return 1 if failed else 0


def _seconds(value: str) -> float:
    """argparse type: a duration in seconds, 0 or more (`--twilio-latency 0.4`)."""
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, e.g. 0.4, not {value!r}") from None
    if not 0 <= seconds <= 30:
        raise argparse.ArgumentTypeError(f"expected 0 to 30 seconds, not {value}")
    return seconds


def _load(quick: bool) -> dict:
    mode = "quick" if quick else "full"
    try:
        data = json.loads(RESULTS_JSON.read_text())
        if data.get("mode") == mode:
            return data
    except (OSError, ValueError):
        pass
    return {"mode": mode, "machine": _machine(), "reports": {}}


def _save(data: dict) -> None:
    data["machine"] = _machine()
    data["commit"] = _commit()
    RESULTS_JSON.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")


def _commit() -> str:
    """The git commit measured, `+changes` when the work tree differs from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return head + ("+changes" if dirty else "")


def _machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} CPU ({model or platform.machine()}), Python "
        f"{platform.python_version()}, {platform.system()} {platform.release()}"
    )


def _print(report: Report) -> None:
    for label, value in report.metrics.items():
        print(f"   {label}: {value}")
    for label, value in report.checks.items():
        print(f"   [{label}] {value}")
    for note in report.notes:
        print(f"   NOTE {note}")
    sys.stdout.flush()


def _dbs(data: dict) -> list[str]:
    found = {key.split("/")[1] for key in data["reports"]}
    return [db for db in ("sqlite", "postgresql") if db in found]


def render(data: dict) -> str:
    """bench/results.md: per scenario, its metrics side by side for each database."""
    dbs = _dbs(data)
    lines = [
        "# Benchmark results",
        "",
        f"Generated by `python -m bench{' --quick' if data['mode'] == 'quick' else ''}` "
        f"({data['mode']} run, finished {data.get('finished', '?')}) on {data['machine']}. "
        "See bench/README.md for what each scenario does.",
        "",
    ]
    if data["mode"] == "quick":
        lines += ["**A quick smoke run: small counts, short runs. Not the numbers to quote.**", ""]
    lines += render_checks(data), ""
    for name in SCENARIOS:
        reports = {db: data["reports"].get(f"{name}/{db}") for db in dbs}
        if not any(reports.values()):
            continue
        lines += [
            f"## {TITLES[name]}",
            "",
            "| | " + " | ".join(dbs) + " |",
            "|---|" + "---|" * len(dbs),
        ]
        labels: list[str] = []
        for report in reports.values():
            for label in (report or {}).get("metrics", {}):
                if label not in labels:
                    labels.append(label)
        for label in labels:
            cells = [(reports[db] or {}).get("metrics", {}).get(label, "") for db in dbs]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        seconds = [f"{db} {(reports[db] or {}).get('raw', {}).get('seconds', '?')} s" for db in dbs]
        lines += ["", f"_Run time: {', '.join(seconds)}._", ""]
        for db in dbs:
            for note in (reports[db] or {}).get("notes", []):
                lines.append(f"- {db}: {note}")
    return "\n".join(lines).rstrip() + "\n"


def render_checks(data: dict) -> str:
    """The targets table: one row per target, ✅/❌ and the figure for each database."""
    dbs = _dbs(data)
    rows: list[str] = []
    checks: dict[str, dict[str, str]] = {}
    for name in SCENARIOS:
        for db in dbs:
            report = data["reports"].get(f"{name}/{db}") or {}
            for label, value in report.get("checks", {}).items():
                if label not in checks:
                    rows.append(label)
                checks.setdefault(label, {})[db] = value
    out = ["| target | " + " | ".join(dbs) + " |", "|---|" + "---|" * len(dbs)]
    for label in rows:
        out.append(f"| {label} | " + " | ".join(checks[label].get(db, "") for db in dbs) + " |")
    return "\n".join(out)


def _update_readme(data: dict) -> None:
    if not README.is_file():
        print("README.md not found: block not written")
        return
    text = README.read_text()
    if START not in text or END not in text:
        print(f"README.md has no {START} … {END} markers: block not written")
        return
    block = (
        f"{START}\nMeasured by `python -m bench` on {data['machine']} "
        f"({data.get('finished', '?')}); details in [bench/results.md](bench/results.md), "
        "method in [bench/README.md](bench/README.md).\n\n"
        f"{render_checks(data)}\n{END}"
    )
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    README.write_text(head + block + tail)
    print("updated the bench block in README.md")
