"""``distillguard rules check|test``, ``replay`` and ``explain``: the policy author's commands.

``add_subcommands(subparsers)`` registers them on the main parser; each sets ``handler`` to a function
``(args) -> exit code``. Exit codes: 0 success, 1 rule/test/input problems, 2 usage errors (argparse).
"""

from __future__ import annotations

import argparse
import sys

from proxy.policy import toolkit


def _emit(code_text: tuple[int, str]) -> int:
    code, text = code_text
    if text:
        print(text, file=sys.stdout if code == 0 else sys.stderr)
    return code


def cmd_rules_check(args: argparse.Namespace) -> int:
    return _emit(toolkit.check(args.paths, as_json=args.json))


def cmd_rules_test(args: argparse.Namespace) -> int:
    return _emit(toolkit.run_tests(args.paths))


def _readable(path: str) -> bool:
    try:
        with open(path, "rb"):
            return True
    except OSError as e:
        print(f"{path}: cannot read: {e.strerror or e}", file=sys.stderr)
        return False


def cmd_replay(args: argparse.Namespace) -> int:
    if not _readable(args.input):
        return 1
    try:
        return _emit(toolkit.replay(args.rules, args.input, args.output, shadow=args.shadow))
    except ValueError as e:  # a line that is not JSON
        print(f"{args.input}: {e}", file=sys.stderr)
        return 1


def cmd_explain(args: argparse.Namespace) -> int:
    if not args.request_id and not args.account:
        print("explain: give --request-id or --account", file=sys.stderr)
        return 2
    if not _readable(args.input):
        return 1
    return _emit(
        toolkit.explain(
            args.rules,
            args.input,
            request_id=args.request_id,
            account=args.account,
            as_json=args.json,
            limit=args.limit,
        )
    )


def add_subcommands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    r = subparsers.add_parser(
        "rules",
        help="check or test rule files",
        description="Validate rule files, or run the *.test.yaml cases beside them.",
    )
    rsub = r.add_subparsers(dest="rules_command", required=True)
    c = rsub.add_parser("check", help="validate rule files; exit 0 when valid, 1 with every error listed")
    c.add_argument("paths", nargs="+", help="rule files or directories (later files override earlier ones)")
    c.add_argument("--json", action="store_true", help="print the result as JSON (for CI)")
    c.set_defaults(handler=cmd_rules_check)
    t = rsub.add_parser("test", help="run the *.test.yaml cases beside rule files")
    t.add_argument("paths", nargs="+", help="rule files, test files or directories")
    t.set_defaults(handler=cmd_rules_test)

    p = subparsers.add_parser(
        "replay",
        help="evaluate rules offline over a traffic log (audit JSONL)",
        description="Evaluate rules on event time over an audit-log JSONL and print hits "
        "per rule and the accounts acted on.",
    )
    p.add_argument("--rules", nargs="+", required=True, help="rule files or directories")
    p.add_argument("--input", required=True, help="traffic JSONL in the audit-log format")
    p.add_argument("--output", help="write one decision per request to this JSONL file")
    p.add_argument("--shadow", action="store_true", help="treat every rule as shadow")
    p.set_defaults(handler=cmd_replay)

    e = subparsers.add_parser(
        "explain",
        help="show which conditions matched, with their values",
        description="Replay a traffic log and, for one request or one account, show each "
        "rule's clauses, their results and the values they read.",
    )
    e.add_argument("--rules", nargs="+", required=True, help="rule files or directories")
    e.add_argument("--input", required=True, help="traffic JSONL in the audit-log format")
    e.add_argument("--request-id", help="explain this request")
    e.add_argument("--account", help="explain this account's requests")
    e.add_argument("--limit", type=int, default=20, help="at most this many requests (default 20)")
    e.add_argument("--json", action="store_true", help="print JSON")
    e.set_defaults(handler=cmd_explain)
