"""The `hotline` console script.

Over 300 lines on purpose: most of it is the argparse table of every command, which reads best
as one piece (each command's function is a few lines that call where the work is done).
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from collections.abc import Callable, Sequence

from hotline.settings import Settings, SettingsError, load_settings

log = logging.getLogger("hotline")


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        print(f"hotline: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _private_settings() -> Settings:
    """Settings for a process that keeps data (run, serve, worker): refuse to start on an
    instance folder or database file other local users can read."""
    from hotline.filesafety import check_private

    settings = _settings()
    try:
        check_private(settings)
    except SettingsError as exc:
        print(f"hotline: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return settings


def _logging(level: int = logging.INFO) -> None:
    from hotline.logsafety import configure

    configure(level)  # HOTLINE_LOG_LEVEL overrides; numbers are redacted at every level


def _needs_schema(command: Callable[[argparse.Namespace], int]) -> Callable:
    """For commands that use the database: a schema that is behind, or a key that is not the
    data's, is one line and exit 2."""

    @functools.wraps(command)
    def checked(args: argparse.Namespace) -> int:
        from hotline.keycheck import KeyMismatch
        from hotline.migrate import SchemaBehind

        try:
            return command(args)
        except (SchemaBehind, KeyMismatch) as exc:
            print(f"hotline: {exc}", file=sys.stderr)
            return 2

    return checked


def cmd_run(args: argparse.Namespace) -> int:
    from hotline.runner import run_all

    _logging()
    return run_all(_private_settings(), host=args.host, port=args.port)


@_needs_schema
def cmd_serve(args: argparse.Namespace) -> int:
    from hotline.server import serve

    _logging()
    from hotline.rotasource import RotaUnavailable
    from hotline.twilio_client import warn_if_console

    settings = _private_settings()
    if args.console_only and not settings.console.enabled:
        print(
            "hotline: --console-only, but the staff console is off: set "
            "`console: {enabled: true}` in the config",
            file=sys.stderr,
        )
        return 2
    warn_if_console(settings)
    try:
        serve(
            settings,
            host=args.host,
            port=args.port,
            workers=args.workers,
            console_only=args.console_only,
        )
    except RotaUnavailable as exc:
        print(f"hotline: no valid rota, not serving: {exc}", file=sys.stderr)
        return 2
    return 0


@_needs_schema
def cmd_worker(args: argparse.Namespace) -> int:
    from hotline.twilio_client import warn_if_console
    from hotline.worker import run_worker

    _logging()
    settings = _private_settings()
    warn_if_console(settings)
    run_worker(settings)
    return 0


@_needs_schema  # the feed URLs (--urls, --renew) read the database
def cmd_rota(args: argparse.Namespace) -> int:
    from hotline import rotacli

    if args.rota_command == "check":
        from hotline.rotacheck import check

        return check(args.file, days=args.days)
    if args.rota_command == "ical":
        return rotacli.ical(
            _settings(),
            staff=args.staff,
            days=args.days,
            urls=args.urls,
            output=args.output,
            renew=args.renew,
        )
    return rotacli.who(_settings(), at=args.at, language=args.language)


@_needs_schema
def cmd_incidents(args: argparse.Namespace) -> int:
    from hotline.incidents import list_incidents

    return list_incidents(_settings(), status=args.status, as_json=args.json)


@_needs_schema
def cmd_incident(args: argparse.Namespace) -> int:
    from hotline.incidents import show_incident

    return show_incident(_settings(), args.number, as_json=args.json)


@_needs_schema
def cmd_report(args: argparse.Namespace) -> int:
    from hotline.report import run_report

    return run_report(_settings(), since=args.since, html=args.html, as_json=args.json)


def cmd_health(args: argparse.Namespace) -> int:
    from hotline.health import run_health

    _logging(logging.WARNING)
    return run_health(_settings(), as_json=args.json)


@_needs_schema
def cmd_purge(args: argparse.Namespace) -> int:
    from hotline.purger import run_purge

    _logging(logging.WARNING)
    return run_purge(_settings(), args.older_than)


@_needs_schema
def cmd_rekey(args: argparse.Namespace) -> int:
    from hotline.rekey import run_rekey

    _logging(logging.WARNING)
    return run_rekey(_settings())


def cmd_keygen(args: argparse.Namespace) -> int:
    from hotline.settings import new_key

    print(new_key())
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    from hotline import dbcli

    _logging(logging.WARNING)
    if args.db_command == "upgrade":
        return dbcli.upgrade(_settings())
    return dbcli.current(_settings())


def cmd_simulate(args: argparse.Namespace) -> int:
    if args.kind == "web":
        from hotline.simulate_web import simulate_web

        return simulate_web(url=args.url, text=" ".join(args.text), contact=args.contact)
    from hotline.simulate import simulate

    return simulate(
        _settings(),
        kind=args.kind,
        sender=args.sender,
        text=" ".join(args.text),
        url=args.url,
        digits=args.digits,
    )


@_needs_schema
def cmd_staff(args: argparse.Namespace) -> int:
    from hotline import staffcli

    _logging(logging.WARNING)
    if args.staff_command == "invite":
        return staffcli.invite(_settings(), args.id, sms=args.sms)
    if args.staff_command == "revoke":
        return staffcli.revoke(_settings(), args.id)
    return staffcli.listing(_settings(), as_json=args.json)


@_needs_schema
def cmd_audit(args: argparse.Namespace) -> int:
    from hotline import staffcli
    from hotline.report import parse_since
    from hotline.usage import UsageError

    _logging(logging.WARNING)
    try:
        since = parse_since(args.since)
    except UsageError as exc:
        print(f"hotline: {exc}", file=sys.stderr)
        return 2
    return staffcli.audit(_settings(), since=since, as_json=args.json)


@_needs_schema
def cmd_twilio(args: argparse.Namespace) -> int:
    _logging(logging.WARNING)
    if args.twilio_command == "configure":
        from hotline.twilioconfigure import configure

        return configure(_settings(), dry_run=args.dry_run, insecure=args.insecure)
    if args.twilio_command == "fallback":
        from hotline.fallbackflow import run_publish

        return run_publish(_settings())
    from hotline.backfiller import run_backfill

    return run_backfill(_settings(), args.since)


@_needs_schema
def cmd_backup(args: argparse.Namespace) -> int:
    from hotline.backup import run_backup

    _logging(logging.WARNING)
    return run_backup(_settings(), args.file, verify=args.verify)


def cmd_restore(args: argparse.Namespace) -> int:
    from hotline.backup import run_restore

    _logging(logging.WARNING)
    return run_restore(_settings(), args.file)


def cmd_watch(args: argparse.Namespace) -> int:
    from hotline.heartbeat import watch

    _logging(logging.WARNING)
    try:
        return watch(_settings(), args.url, every=args.every)
    except KeyboardInterrupt:
        return 0


def _days(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of days")
    return int(value)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hotline", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="web receiver, worker and sweeper on one machine")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=5000)
    run.set_defaults(func=cmd_run)

    serve = sub.add_parser("serve", help="the webhook receiver only (gunicorn, N processes)")
    # loopback unless told otherwise: the receiver sits behind nginx (deploy/nginx/hotline.conf),
    # which takes slow clients off gunicorn's threads and terminates TLS
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1, for nginx on this host)",
    )
    serve.add_argument("--port", type=int, default=5000)
    serve.add_argument("--workers", type=int, default=2, help="web processes, 4 threads each")
    serve.add_argument(
        "--console-only",
        action="store_true",
        help="serve only the staff console (/console), e.g. on a VPN or onion address",
    )
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="escalation worker with scheduler and sweeper")
    worker.set_defaults(func=cmd_worker)

    rota = sub.add_parser("rota", help="check the rota, or see who is on call")
    rota_sub = rota.add_subparsers(dest="rota_command", required=True)
    check = rota_sub.add_parser("check", help="validate a rota and show coverage gaps")
    check.add_argument("file", nargs="?", help="a config.yaml or a bare rota file")
    check.add_argument("--days", type=int, default=14)
    who = rota_sub.add_parser("who", help="who is on call, level by level")
    who.add_argument("--at", help="ISO-8601 instant (default: now)")
    who.add_argument("--language", help="put speakers of this language first")
    ical = rota_sub.add_parser("ical", help="the shifts as an iCalendar file, or the feed URLs")
    ical.add_argument("--staff", help="only this staff member's shifts")
    ical.add_argument("--days", type=_days, default=60, help="from now, this many days (60)")
    ical.add_argument(
        "--urls",
        action="store_true",
        help="print each staff member's feed URL (needs rota_feeds: true)",
    )
    ical.add_argument(
        "--renew",
        metavar="ID",
        help="give ID's feed a new URL and print it; the old one stops working at once",
    )
    ical.add_argument("-o", "--output", help="write to this file (default: standard output)")
    rota.set_defaults(func=cmd_rota)

    incidents = sub.add_parser("incidents", help="the incident log")
    incidents.add_argument("--status", choices=("open", "all"), default="open")
    incidents.add_argument("--json", action="store_true")
    incidents.set_defaults(func=cmd_incidents)

    incident = sub.add_parser("incident", help="one incident in full")
    incident.add_argument("number", type=int)
    incident.add_argument("--json", action="store_true")
    incident.set_defaults(func=cmd_incident)

    report = sub.add_parser(
        "report",
        help="the line at a glance: volumes, time to page and to "
        "ack, busiest hours, coverage, check-ins",
    )
    report.add_argument(
        "--since",
        default="30d",
        help="incidents opened this long ago or since (default 30d; 12h, 2w...)",
    )
    output = report.add_mutually_exclusive_group(required=True)
    output.add_argument(
        "--html", metavar="FILE", help="write one self-contained page with the charts (mode 0600)"
    )
    output.add_argument("--json", action="store_true", help="the same figures as JSON")
    report.set_defaults(func=cmd_report)

    simulate = sub.add_parser("simulate", help="send a signed Twilio webhook to a running hotline")
    kinds = simulate.add_subparsers(dest="kind", required=True)
    for kind, text_help in (("sms", "the message text"), ("call", "unused")):
        # one parser per kind, so the text may follow the options: simulate sms --from N TEXT
        one = kinds.add_parser(kind, help=f"a signed /twilio/{'sms' if kind == 'sms' else 'voice'}")
        one.add_argument(
            "--from",
            dest="sender",
            required=True,
            help="the sender's number: +E.164, national format (read with the "
            "rota's default_region), or whatsapp:+E.164",
        )
        one.add_argument("--url", default="http://127.0.0.1:5000")
        one.add_argument("--digits", default="", help="call: keys to press at each prompt")
        one.add_argument("text", nargs="*", help=text_help)
        one.set_defaults(func=cmd_simulate)
    web = kinds.add_parser("web", help="post the secure web form as a browser would")
    web.add_argument("--url", default="http://127.0.0.1:5000")
    web.add_argument("--contact", default="", help="the 'how to reach you safely' line")
    web.add_argument("text", nargs="+", help="the message")
    web.set_defaults(func=cmd_simulate)

    health = sub.add_parser("health", help="the full health report; exit 1 when not healthy")
    health.add_argument("--json", action="store_true")
    health.set_defaults(func=cmd_health)

    purge = sub.add_parser("purge", help="erase personal data of old resolved incidents")
    purge.add_argument(
        "--older-than",
        type=_days,
        metavar="DAYS",
        help="resolved more than DAYS ago (default: retention_days)",
    )
    purge.set_defaults(func=cmd_purge)

    db = sub.add_parser("db", help="the database schema (migrations)")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply pending migrations (safe while the old release runs)")
    db_sub.add_parser("current", help="the schema revision; exit 1 when it is behind")
    db.set_defaults(func=cmd_db)

    rekey = sub.add_parser("rekey", help="re-encrypt everything under the first secret key")
    rekey.set_defaults(func=cmd_rekey)
    staff = sub.add_parser("staff", help="who may sign in to the staff console (passkeys)")
    staff_sub = staff.add_subparsers(dest="staff_command", required=True)
    invite = staff_sub.add_parser("invite", help="a one-time link to enrol a passkey (24 h)")
    invite.add_argument("id", help="a staff id of the rota")
    invite.add_argument("--sms", action="store_true", help="text it to their rota phone")
    revoke = staff_sub.add_parser("revoke", help="remove their passkeys and end their sessions")
    revoke.add_argument("id")
    listed = staff_sub.add_parser("list", help="who can sign in, and when they last did")
    listed.add_argument("--json", action="store_true")
    staff.set_defaults(func=cmd_staff)

    audit = sub.add_parser("audit", help="the audit log: who did what, when (never content)")
    audit.add_argument("--since", default="7d", help="how far back, e.g. 12h, 7d (default 7d)")
    audit.add_argument("--json", action="store_true")
    audit.set_defaults(func=cmd_audit)

    twilio = sub.add_parser(
        "twilio", help="the hotline at Twilio: what reached it while we were down"
    )
    twilio_sub = twilio.add_subparsers(dest="twilio_command", required=True)
    backfill = twilio_sub.add_parser(
        "backfill", help="take in messages and calls Twilio got that we have not (by sid)"
    )
    backfill.add_argument("--since", default="2h", help="how far back, e.g. 2h, 1d (default 2h)")
    configure = twilio_sub.add_parser(
        "configure", help="point the number's URLs (and fallback URLs) at this hotline"
    )
    configure.add_argument("--dry-run", action="store_true", help="show what would change")
    configure.add_argument("--insecure", action="store_true", help="allow an http:// public URL")
    fallback = twilio_sub.add_parser(
        "fallback", help="the Studio Flow at Twilio that answers when our server does not"
    )
    fallback_sub = fallback.add_subparsers(dest="fallback_command", required=True)
    fallback_sub.add_parser("publish", help="make or update it for who is on call now")
    twilio.set_defaults(func=cmd_twilio)

    backup = sub.add_parser("backup", help="an encrypted snapshot of the database, taken live")
    backup.add_argument("file")
    backup.add_argument(
        "--verify", action="store_true", help="restore FILE into a scratch database, compare counts"
    )
    backup.set_defaults(func=cmd_backup)
    restore = sub.add_parser("restore", help="restore a backup into an empty database")
    restore.add_argument("file")
    restore.set_defaults(func=cmd_restore)

    watch = sub.add_parser(
        "watch", help="from a second host: text the coordinators when URL (/healthz) stops"
    )
    watch.add_argument(
        "url", help="the hotline's /healthz, e.g. https://hotline.example.org/healthz"
    )
    watch.add_argument("--every", type=float, default=60.0, help="seconds between checks (60)")
    watch.set_defaults(func=cmd_watch)

    keygen = sub.add_parser("keygen", help="print a new random master key for HOTLINE_SECRET_KEY")
    keygen.set_defaults(func=cmd_keygen)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from hotline.filesafety import private_umask

    args = build_parser().parse_args(argv)
    # before anything is created: the database, its WAL, the embedded Redis and its dump,
    # the console key, exported files; only this user may read them
    private_umask()
    return args.func(args) or 0


if __name__ == "__main__":
    raise SystemExit(main())
