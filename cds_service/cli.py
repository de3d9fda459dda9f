"""`cds-service`: run the service, or run one hook request through the pipeline.

    cds-service serve [--host H] [--port P] [--workers N]
    cds-service evaluate REQUEST.json|- [--service ID] [--now ISO-DATETIME] [--explain]
    cds-service fixtures load --fhir-server URL [--bearer TOKEN]
    cds-service feedback report [--json]
    cds-service dev [--port 8080] [--fhir-port 8081] [--require-fhir-token]
    cds-service knowledge check [FOLDER]
    cds-service knowledge show [FOLDER]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson

from .hooks.catalog import SERVICES, SERVICES_BY_ID
from .hooks.errors import InvalidRequest, operation_outcome
from .hooks.validation import parse_hook_request
from .pipeline import DataUnavailable, Engine, evaluate_hook
from .settings import Settings, SettingsError, check_region

EXIT_OK, EXIT_PROBLEMS, EXIT_INVALID, EXIT_UNAVAILABLE, EXIT_USAGE, EXIT_CONFIG = 0, 1, 2, 3, 64, 78
EXIT_PORT_BUSY = 75  # `dev`: a port is taken (sysexits EX_TEMPFAIL: free it, or choose another, and run again)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cds-service", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the service under gunicorn (production WSGI server)")
    serve.add_argument("--host", help="address to bind (CDS_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (CDS_PORT, default 8080)")
    serve.add_argument("--workers", type=int, help="worker processes (CDS_WORKERS, default 2)")

    evaluate = commands.add_parser("evaluate", help="run one CDS Hooks request through the pipeline and print the response")
    evaluate.add_argument("request", help="path to a hook request JSON file, or - for stdin")
    evaluate.add_argument("--service", help="service id (default: the service for the request's hook)")
    evaluate.add_argument("--now", type=_instant, help="evaluate as of this ISO date-time (default: now), for reproducible runs")
    evaluate.add_argument("--explain", action="store_true",
                          help="also validate the resources read and print the reasoning and every data note to stderr")

    fixtures = commands.add_parser("fixtures", help="the fixture patients of fhir_fixtures/")
    fixture_commands = fixtures.add_subparsers(dest="fixtures_command", required=True)
    load = fixture_commands.add_parser("load", help="upload them to a FHIR R4 server as one transaction (idempotent)")
    load.add_argument("--fhir-server", required=True, help="FHIR base URL, e.g. https://hapi.fhir.org/baseR4")
    load.add_argument("--bearer", help="access token for the server, if it needs one")
    load.add_argument("--as-of", type=_day, help="date the patients' stories are told as of (default: today)")
    listing = fixture_commands.add_parser("list", help="each scenario: its patient id and what its cards show")
    listing.add_argument("--as-of", type=_day, help="date the patients' stories are told as of (default: today)")
    demo = fixture_commands.add_parser("request", help="print a hook request for a scenario's patient, dated as of today")
    demo.add_argument("scenario", help="scenario name or patient id (`cds-service fixtures list`)")
    demo.add_argument("--hook", default="patient-view", help="patient-view (default), order-select or order-sign")
    demo.add_argument("--order", help="order hooks: the drafted medication as an EHR writes it (default: dupilumab)")
    demo.add_argument("--dose-mg", type=float, help="order hooks: the drafted dose in mg")
    demo.add_argument("--as-of", type=_day, help="date the request is made as of (default: today)")

    feedback = commands.add_parser("feedback", help="what clinicians did with the cards")
    feedback_commands = feedback.add_subparsers(dest="feedback_command", required=True)
    report = feedback_commands.add_parser("report", help="acceptance and override rates by card topic, with override reasons")
    report.add_argument("--json", action="store_true", help="print JSON instead of a table")

    dev = commands.add_parser(
        "dev", help="local SMART-enabled FHIR server with the fixtures + the service, and a sandbox link per patient",
        description="Exit codes: 0 stopped, 3 a server could not start, 64 a port number out of range, "
                    f"{EXIT_PORT_BUSY} a port is in use (nothing was started).")
    dev.add_argument("--port", type=int, default=8080, help="service port (default 8080)")
    dev.add_argument("--fhir-port", type=int, default=8081, help="FHIR server port (default 8081; 0: any free port)")
    dev.add_argument("--require-fhir-token", action="store_true",
                     help="FHIR reads need a token the FHIR server issued (the SMART app has one; the sandbox does not)")

    knowledge = commands.add_parser("knowledge", help="check or show the knowledge files, without starting the service")
    knowledge_commands = knowledge.add_subparsers(dest="knowledge_command", required=True)
    check = knowledge_commands.add_parser("check", help="check a folder of knowledge files: exit 0, or 1 with one line per problem")
    check.add_argument("folder", nargs="?", help="folder of knowledge files (default: the service's own)")
    show = knowledge_commands.add_parser("show", help="print the rules as a worksheet for a clinical reviewer (Markdown)")
    show.add_argument("folder", nargs="?", help="folder of knowledge files (default: the service's own)")

    args = parser.parse_args(argv)
    if args.command == "knowledge":
        return _knowledge(args)
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"cds-service: {error}", file=sys.stderr)
        return EXIT_USAGE
    from .logs import configure

    configure(settings.log_level, settings.log_format if args.command == "serve" else "text")
    if args.command in {"serve", "evaluate"} and not _knowledge_loads(settings):
        return EXIT_CONFIG
    if args.command == "serve":
        return _serve(settings, args)
    if args.command in {"fixtures", "dev"}:
        return _devtools(args)
    if args.command == "feedback":
        return _feedback_report(settings, args)
    return _evaluate(settings, args)


def _knowledge_loads(settings: Settings) -> bool:
    """Whether the knowledge base the service would use passes its checks; if not, each problem on a line."""
    from .knowledge import KnowledgeError, load_knowledge

    try:
        knowledge = load_knowledge(tuple(sorted(settings.score_codes.items())), folder=settings.knowledge_dir or None)
        check_region(settings.region, knowledge.regions)
    except SettingsError as error:
        print(f"cds-service: {error}", file=sys.stderr)
        return False
    except KnowledgeError as error:
        where = settings.knowledge_dir or "the packaged knowledge base"
        print(f"cds-service: {where} fails its checks ({len(error.problems)} problems); the service does not start:", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        return False
    return True


def _knowledge(args: argparse.Namespace) -> int:
    from .knowledge import KnowledgeError, check_knowledge, load_knowledge
    from .knowledge.show import knowledge_worksheet

    folder = args.folder
    if folder is not None and not Path(folder).is_dir():
        print(f"cds-service: {folder} is not a folder of knowledge files", file=sys.stderr)
        return EXIT_USAGE
    if args.knowledge_command == "check":
        problems = check_knowledge(folder)
        for problem in problems:
            print(problem)
        if not problems:
            print(f"knowledge files of {folder or 'the service'}: no problems", file=sys.stderr)
        return EXIT_PROBLEMS if problems else EXIT_OK
    try:
        sys.stdout.write(knowledge_worksheet(load_knowledge(folder=str(Path(folder).resolve()) if folder else None)))
    except KnowledgeError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        return EXIT_PROBLEMS
    return EXIT_OK


def _feedback_report(settings: Settings, args: argparse.Namespace) -> int:
    from .storage import StoreUnavailable, open_store

    try:
        rows = open_store(settings.database_url).feedback_report()
    except StoreUnavailable as error:
        print(f"cds-service: {error}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    percent = lambda rate: "-" if rate is None else f"{100 * rate:.0f}%"  # noqa: E731
    if args.json:
        _print([
            {"topic": r.topic, "cards_issued": r.cards_issued, "feedback": r.feedback, "accepted": r.accepted,
             "overridden": r.overridden, "acceptance_rate": r.acceptance_rate, "override_rate": r.override_rate,
             "override_reasons": [{"reason": reason, "count": count} for reason, count in r.override_reasons]}
            for r in rows
        ])
        return EXIT_OK
    print(f"{'topic':36} {'cards':>6} {'feedback':>8} {'accepted':>9} {'overridden':>10}")
    for r in rows:
        print(f"{r.topic:36} {r.cards_issued:>6} {r.feedback:>8} {percent(r.acceptance_rate):>9} {percent(r.override_rate):>10}")
        for reason, count in r.override_reasons:
            print(f"    override: {reason} ({count})")
    if not rows:
        print("(no cards issued yet)")
    return EXIT_OK


def _devtools(args: argparse.Namespace) -> int:
    from .demo_requests import DemoRequestError, scenario_request
    from .fixture_dates import service_today
    from .fixtures import FixtureError, PortBusy, describe_scenarios, load_fixtures, run_dev

    try:
        if args.command == "dev":
            if not (1 <= args.port <= 65535 and 0 <= args.fhir_port <= 65535):
                print("cds-service: --port must be 1 to 65535 and --fhir-port 0 to 65535", file=sys.stderr)
                return EXIT_USAGE
            return run_dev(args.port, args.fhir_port, require_fhir_token=args.require_fhir_token)
        today = getattr(args, "as_of", None) or service_today()
        if args.fixtures_command == "request":
            request = scenario_request(args.scenario, args.hook, args.order, args.dose_mg, today)
            print(json.dumps(request, indent=2))
            return EXIT_OK
        if args.fixtures_command == "list":
            from .knowledge import load_knowledge
            from .settings import Settings

            settings = Settings.from_env()
            topics = load_knowledge(folder=settings.knowledge_dir or None).cards.topics
            for patient, scenario, shows in describe_scenarios(topics, settings.region):
                print(f"{patient}\t{scenario}\t{shows}")
            return EXIT_OK
        for scenario, patient in load_fixtures(args.fhir_server, args.bearer, as_of=today):
            print(f"{patient}\t{scenario}")
        return EXIT_OK
    except DemoRequestError as error:
        print(f"cds-service: {error}", file=sys.stderr)
        return EXIT_USAGE
    except PortBusy as error:
        print(f"cds-service: {error}", file=sys.stderr)
        return EXIT_PORT_BUSY
    except FixtureError as error:
        print(f"cds-service: {error}", file=sys.stderr)
        return EXIT_UNAVAILABLE


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from .front_proxy import FrontProxyError, nginx_binary
    from .server import run_server
    from .storage import StoreUnavailable, open_store
    from .trust.issuers import IssuerConfigError, load_trusted_issuers

    # What the workers would each fail on, said once in one line before anything starts.
    try:
        if settings.auth_required:
            load_trusted_issuers(settings.trusted_issuers)
    except IssuerConfigError as error:
        print(f"cds-service: {error}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        open_store(settings.database_url).close()
    except StoreUnavailable as error:
        print(f"cds-service: {error}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    try:
        if settings.front_proxy == "nginx":
            nginx_binary()
    except FrontProxyError as error:
        print(f"cds-service: {error}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        run_server(
            settings,
            host=args.host or settings.host,
            port=args.port or settings.port,
            workers=args.workers or settings.workers,
        )
    except FrontProxyError as error:
        print(f"cds-service: {error}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    return EXIT_OK


def _evaluate(settings: Settings, args: argparse.Namespace) -> int:
    try:
        raw = sys.stdin.buffer.read() if args.request == "-" else Path(args.request).read_bytes()
    except OSError as error:
        print(f"cds-service: cannot read the request {args.request}: {error.strerror or type(error).__name__}"
              " (give a hook request JSON file, or - to read it from stdin)", file=sys.stderr)
        return EXIT_USAGE
    now = args.now or datetime.now(UTC)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        _print(operation_outcome(400, f"request is not valid JSON ({error.msg})"))
        return EXIT_INVALID
    service = _pick_service(body, args.service)
    if service is None:
        _print(operation_outcome(400, "no service for this request; name one with --service " + ", ".join(SERVICES_BY_ID)))
        return EXIT_INVALID
    if args.explain:
        settings = replace(settings, validate_resources=True)
    engine = Engine.from_settings(settings)
    try:
        request = parse_hook_request(body, service.hook)
        base_url = settings.public_base_url or f"http://{settings.host}:{settings.port}"
        outcome = evaluate_hook(request, service, engine, now, base_url=base_url)
    except InvalidRequest as error:
        _print(operation_outcome(400, "invalid request", error.problems))
        return EXIT_INVALID
    except DataUnavailable as error:
        _print(operation_outcome(412, "required FHIR data is not available: " + "; ".join(error.reasons.values())))
        return EXIT_UNAVAILABLE
    _print(outcome.response)
    if args.explain:
        reasoning = outcome.assessment.reasoning if outcome.assessment else ("no dupilumab order in focus",)
        for line in reasoning:
            print(f"reasoning: {line}", file=sys.stderr)
        for note in outcome.record.notes if outcome.record else ():
            print(f"data note: {note}", file=sys.stderr)
    return EXIT_OK


def _instant(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date-time: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date (YYYY-MM-DD): {text!r}") from None


def _pick_service(body: Any, service_id: str | None):
    if service_id:
        return SERVICES_BY_ID.get(service_id)
    hook = body.get("hook") if isinstance(body, dict) else None
    return next((s for s in SERVICES if s.hook == hook), None)


def _print(document: Any) -> None:
    sys.stdout.write(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
