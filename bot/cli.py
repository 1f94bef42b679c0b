"""``python -m bot ...``: triage, train, duty, check, rules.

stdout carries only the command's results (JSON lines for ``triage``); every log line and
everything Rasa or TensorFlow print goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import sys
from pathlib import Path
from typing import IO, Iterator, List, Tuple

from bot.agencies import AgenciesFileError, Agency, load_deployment
from bot.department import DepartmentFileError, load_department
from bot.settings import PROJECT_ROOT, Settings, SettingsError

logger = logging.getLogger("bot")

# Longer messages are cut before triage: platforms cap DMs near this size anyway, and the
# classifier's cost grows with length.
MAX_TEXT_CHARS = 4000


def read_messages(stream: IO[str]) -> Iterator[Tuple[str | None, str | None]]:
    """Yield (text, error) per non-blank line; JSON objects give their "text" field."""
    for line in stream:
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        if line.lstrip().startswith("{"):
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                yield None, f"invalid JSON: {exc.msg}"
                continue
            text = data.get("text") if isinstance(data, dict) else None
            if not isinstance(text, str) or not text.strip():
                yield None, 'JSON line without a non-empty "text" string'
                continue
            yield text[:MAX_TEXT_CHARS], None
        else:
            yield line[:MAX_TEXT_CHARS], None


async def _monitoring(settings: Settings, mode: str) -> bool:
    if mode != "auto":
        return mode == "on"
    from redis.asyncio import Redis

    redis = Redis.from_url(
        settings.redis_url, decode_responses=True,
        socket_timeout=settings.redis_timeout, socket_connect_timeout=settings.redis_timeout,
    )
    try:
        from bot.presence import Presence

        return await Presence(redis).is_monitoring()
    except (OSError, Exception) as exc:  # noqa: BLE001 - any Redis failure means "nobody"
        logger.warning("Redis not reachable (%s); replying as if nobody is on duty", exc)
        return False
    finally:
        await redis.close(close_connection_pool=True)


async def _triage(args: argparse.Namespace, out: IO[str]) -> int:
    from bot.engine import Triager
    from bot.training import current_model

    settings = Settings.from_env()
    department = load_department(settings.department_file)
    model = Path(args.model) if args.model else current_model()
    triager = Triager.load(model, department)
    monitoring = await _monitoring(settings, args.monitoring)
    # Reading lines blocks, but this loop is the CLI's only task.
    stream = open(args.file, encoding="utf-8") if args.file else sys.stdin  # noqa: ASYNC230
    with stream:
        for text, error in read_messages(stream):
            if error:
                out.write(json.dumps({"text": None, "error": error}) + "\n")
            else:
                now = dt.datetime.now(dt.timezone.utc)
                result = await triager.triage(text, monitoring=monitoring, now=now)
                out.write(json.dumps(result.as_record(), ensure_ascii=False) + "\n")
            out.flush()
    return 0


async def _duty(args: argparse.Namespace, out: IO[str]) -> int:
    from redis.asyncio import Redis

    from bot.presence import Presence

    settings = Settings.from_env()
    scope = _agency(settings, args.agency).keys
    redis = Redis.from_url(settings.redis_url, decode_responses=True)
    presence = Presence(redis, settings.duty_ttl)
    try:
        if args.action == "on":
            await presence.set_on_duty(args.name, args.ttl, scope)
        elif args.action == "off":
            await presence.set_off_duty(args.name, scope)
        staff = await presence.on_duty(scope)
    finally:
        await redis.close(close_connection_pool=True)
    out.write(json.dumps({"on_duty": staff, "monitoring": bool(staff)}) + "\n")
    return 0


def _serve(args: argparse.Namespace, out: IO[str]) -> int:
    from bot import no_tensorflow

    no_tensorflow.block()  # before spaCy is imported (bot/no_tensorflow.py says why)
    from aiohttp import web

    from bot.app import create_app
    from bot.logs import AccessLogger, configure

    settings = Settings.from_env()
    configure("debug" if args.verbose else settings.log_level, settings.log_format)
    # create_app reads the department or agencies file: a bad one stops here, named.
    web.run_app(create_app(settings), host=settings.http_host, port=settings.http_port,
                access_log_class=AccessLogger,
                print=lambda text: print(text, file=sys.stderr))
    return 0


async def _staff(args: argparse.Namespace, out: IO[str]) -> int:
    import getpass

    from redis.asyncio import Redis

    from bot.console.auth import AuthError, StaffStore

    settings = Settings.from_env()
    scope = _agency(settings, args.agency).keys
    redis = Redis.from_url(settings.redis_url, decode_responses=True)
    try:
        store = StaffStore(redis, settings.session_ttl, scope)
        if args.action == "list":
            out.write("".join(f"{m['name']}\t{m['role']}\n" for m in await store.members()))
            return 0
        if args.action == "role":
            if args.role is None or not await store.set_role(args.name, args.role):
                print("error: give --role for an existing staff member", file=sys.stderr)
                return 2
            out.write(f"staff member {args.name} is now {args.role}\n")
            return 0
        if args.action == "remove":
            existed = await store.remove(args.name)
            out.write(f"staff member {args.name} {'removed' if existed else 'not found'}; "
                      "sessions ended\n")
            return 0 if existed else 1
        if args.action == "revoke":
            count = await store.revoke(args.name)
            out.write(f"{count} session(s) of {args.name} ended\n")
            return 0
        password = os.environ.get("BEACON_STAFF_PASSWORD")
        if password is None:
            password = getpass.getpass(f"password for {args.name}: ")
            if password != getpass.getpass("again: "):
                print("error: the passwords differ", file=sys.stderr)
                return 2
        try:
            await store.add(args.name, password, args.role)
        except AuthError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        out.write(f"staff member {args.name} saved ({await store.role(args.name)})\n")
        return 0
    finally:
        await redis.close(close_connection_pool=True)


def _train(args: argparse.Namespace, out: IO[str]) -> int:
    from bot.training import train

    out.write(str(train(force=args.force)) + "\n")
    return 0


def _check(args: argparse.Namespace, out: IO[str]) -> int:
    settings = Settings.from_env()
    if settings.agencies_file is not None and not args.file:
        for agency in load_deployment(settings).agencies:
            out.write(f"{agency.id}: OK ({agency.department.department.name}; "
                      f"{len(agency.accounts)} accounts)\n")
        return 0
    department = load_department(args.file or settings.department_file)
    out.write(f"{args.file or settings.department_file}: OK ({department.department.name})\n")
    return 0


def _agency(settings: Settings, agency_id: str | None) -> Agency:
    """The agency a staff or duty command is about: the only one, or --agency's."""
    deployment = load_deployment(settings)
    if deployment.single:
        return deployment.agencies[0]
    agency = deployment.get(agency_id or "")
    if agency is None:
        raise AgenciesFileError("give --agency, one of: "
                                + ", ".join(a.id for a in deployment.agencies))
    return agency


def _rules(args: argparse.Namespace, out: IO[str]) -> int:
    from bot.topics import ALL_INTENTS, FALLBACK_INTENT

    lines = [
        'version: "3.1"',
        "",
        "# Generated by `python -m bot rules`: every intent goes to the one triage action.",
        "rules:",
    ]
    for intent in (*ALL_INTENTS, FALLBACK_INTENT):
        lines += [
            f"  - rule: triage {intent}",
            "    steps:",
            f"      - intent: {intent}",
            "      - action: action_triage",
            "",
        ]
    path = PROJECT_ROOT / "data/rules/triage.yml"
    path.write_text("\n".join(lines), encoding="utf-8")
    out.write(f"{path}\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging (stderr)")
    sub = parser.add_subparsers(dest="command", required=True)

    triage = sub.add_parser("triage", help="triage messages, one per line, to JSON lines")
    triage.add_argument("--file", help="read messages from this file instead of stdin")
    triage.add_argument("--model", help="model archive (default: the one for the current data)")
    triage.add_argument(
        "--monitoring", choices=("auto", "on", "off"), default="auto",
        help="whether staff count as on duty (auto: ask Redis; off when unreachable)",
    )
    triage.set_defaults(run=_triage)

    train = sub.add_parser("train", help="train the model if data, domain or config changed")
    train.add_argument("--force", action="store_true", help="train even if up to date")
    train.set_defaults(run=_train)

    duty = sub.add_parser("duty", help="mark staff on or off duty, or show who is")
    duty.add_argument("action", choices=("on", "off", "status"))
    duty.add_argument("name", nargs="?", default="")
    duty.add_argument("--ttl", type=int, help="seconds until on-duty lapses without a heartbeat")
    duty.add_argument("--agency", help="the staff member's agency (several-agency deployments)")
    duty.set_defaults(run=_duty)

    check = sub.add_parser("check", help="validate the department file (or, with "
                                         "BEACON_AGENCIES_FILE, every agency's)")
    check.add_argument("--file", help="department file (default: BEACON_DEPARTMENT_FILE)")
    check.set_defaults(run=_check)

    serve = sub.add_parser("serve", help="run the gateway and staff console")
    serve.set_defaults(run=_serve)

    staff = sub.add_parser("staff", help="add a console user (password asked, or from "
                                         "BEACON_STAFF_PASSWORD), or list them")
    staff.add_argument("action", choices=("add", "list", "remove", "revoke", "role"))
    staff.add_argument("name", nargs="?", default="")
    staff.add_argument("--role", choices=("staff", "supervisor"),
                       help="staff work the queue; supervisors also see reports and manage "
                            "staff (add: default staff, or the account's present role)")
    staff.add_argument("--agency", help="the agency whose console the account signs in to "
                                        "(several-agency deployments)")
    staff.set_defaults(run=_staff)

    rules = sub.add_parser("rules", help="regenerate data/rules/triage.yml from bot/topics.py")
    rules.set_defaults(run=_rules)
    return parser


def main(argv: List[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in ("duty", "staff") and args.action in (
            "on", "off", "add", "remove", "revoke", "role") and not args.name:
        print(f"python -m bot {args.command}: a staff name is needed", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    out = sys.stdout
    try:
        # Libraries that print (Rasa, TensorFlow) must not reach stdout.
        with contextlib.redirect_stdout(sys.stderr):
            result = args.run(args, out)
            if asyncio.iscoroutine(result):
                result = asyncio.run(result)
            return result
    except (DepartmentFileError, AgenciesFileError, SettingsError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
