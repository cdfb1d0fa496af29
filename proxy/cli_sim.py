"""``distillguard simulate``: seeded campaign traffic through the default rule pack, with a report.

Registered by ``add_subcommands(subparsers)`` (called from ``proxy.cli``). Examples::

    distillguard simulate --seed 7 --accounts 1000 --days 7                 # replay (engine on event time)
    distillguard simulate --through proxy --accounts 150 --days 1           # the real proxy + fake model
    distillguard simulate --mix chat=0.7 automation=0.2 hydra=0.1 --json
    distillguard simulate --phrasings                                       # CoT phrasing eval only
    distillguard simulate --export traffic.jsonl --days 1                   # for `distillguard replay`
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson

DEFAULT_RULES = Path(__file__).resolve().parent.parent / "rules" / "default"


def parse_mix(items: list[str] | None) -> dict[str, float] | None:
    """``["chat=0.6", "hydra=0.1,batch=0.3"]`` -> weights (only the personas named)."""
    if not items:
        return None
    from proxy.sim.personas import PERSONAS

    out: dict[str, float] = {}
    for item in items:
        for part in item.split(","):
            if not part.strip():
                continue
            name, sep, w = part.partition("=")
            name = name.strip()
            if not sep or name not in PERSONAS:
                raise argparse.ArgumentTypeError(
                    f"--mix expects persona=weight with persona one of {', '.join(PERSONAS)}; got {part!r}"
                )
            try:
                out[name] = float(w)
            except ValueError:
                raise argparse.ArgumentTypeError(f"--mix weight for {name} is not a number: {w!r}") from None
            if out[name] < 0:
                raise argparse.ArgumentTypeError(f"--mix weight for {name} is negative")
    if not any(v > 0 for v in out.values()):
        raise argparse.ArgumentTypeError("--mix needs at least one positive weight")
    return out


def export_jsonl(path: str, seed: int, accounts: int, days: float, mix: dict[str, float] | None) -> int:
    """Write the traffic as replay input (compact ``request`` records; features are recomputed)."""
    from proxy.sim.traffic import generate, make_accounts

    accts = make_accounts(seed, accounts, mix)
    by_id = {a.id: a for a in accts}
    n = 0
    with open(path, "wb") as f:
        for ev in generate(seed, accts, days):
            a = by_id[ev.account]
            n += 1
            f.write(
                orjson.dumps(
                    {
                        "ts": ev.ts,
                        "request_id": f"sim-{n}",
                        "account": {"id": a.id, "tier": a.tier, "org": a.org},
                        "ip": a.ip,
                        "user_agent": a.user_agent,
                        "persona": a.persona,
                        "request": ev.request,
                    },
                    option=orjson.OPT_APPEND_NEWLINE,
                )
            )
    return n


def cmd_simulate(args: argparse.Namespace) -> int:
    from proxy.sim.phrasings import evaluate, format_eval
    from proxy.sim.report import TARGETS, format_report

    try:
        mix = parse_mix(args.mix)
    except argparse.ArgumentTypeError as e:
        print(f"distillguard simulate: {e}", file=sys.stderr)
        return 2
    rules = args.rules or [str(DEFAULT_RULES)]
    accounts = max(1, round(args.accounts * args.scale))
    if args.export:
        n = export_jsonl(args.export, args.seed, accounts, args.days, mix)
        print(f"wrote {n} requests to {args.export}")
        return 0
    out: dict[str, Any] = {}
    if not args.no_phrasings:
        ph = evaluate(rules)
        held = ph["heldout"]
        # The false-positive target is read on the blind benign set when it is there (the detector was
        # tuned on the development one).
        benign = ph.get("benign_heldout") or ph["benign"]
        targets: dict[str, Any] = {
            "cot_benign_fp": {
                "value": round(benign["rate"], 4),
                "target": "<= 0.01",
                "met": benign["rate"] <= TARGETS["cot_benign_fp_max"],
                "set": "heldout" if "benign_heldout" in ph else "dev",
            },
        }
        if not held.missing:
            targets["cot_heldout_caught"] = {
                "value": round(held.rate, 4),
                "target": ">= 0.90",
                "met": held.rate >= TARGETS["cot_heldout_caught"],
            }
        out["phrasings"] = {
            "dev": {"caught": ph["dev"].caught, "total": ph["dev"].total, "rate": round(ph["dev"].rate, 4)},
            "heldout": {
                "measured": not held.missing,
                "caught": held.caught,
                "total": held.total,
                "rate": round(held.rate, 4),
                "per_family": {k: list(v) for k, v in held.per_family.items()},
            },
            "benign": {k: v for k, v in ph["benign"].items() if k != "hits"},
            "benign_heldout": {k: v for k, v in ph.get("benign_heldout", {}).items() if k != "hits"},
            "targets": targets,
        }
        if not args.json:
            print("CoT-elicitation phrasings (rule cot-elicit-request, one request each on a fresh engine):")
            print(format_eval(ph))
            for name, t in out["phrasings"]["targets"].items():
                note = "  (development set, tuned on: the blind set is not present)" if t.get("set") == "dev" else ""
                print(f"  {'MET ' if t['met'] else 'MISS'} {name:<24} {t['value']!s:<10} target {t['target']}{note}")
            print()
    if not args.phrasings:
        if args.through == "proxy":
            import asyncio

            from proxy.sim.runner_proxy import run_through_proxy

            try:
                import uvloop

                runner: Any = uvloop.run
            except ImportError:  # pragma: no cover
                runner = asyncio.run
            summary = runner(
                run_through_proxy(
                    seed=args.seed,
                    accounts=accounts,
                    days=args.days,
                    mix=mix,
                    rules=rules,
                    max_requests=args.max_requests,
                )
            )
        else:
            from proxy.sim.runner_replay import run_replay

            summary = run_replay(seed=args.seed, accounts=accounts, days=args.days, mix=mix, rules=rules)
        out["simulation"] = summary
        if not args.json:
            print(format_report(summary))
    if args.json:
        print(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
    met = [t["met"] for t in out.get("simulation", {}).get("targets", {}).values()]
    met += [t["met"] for t in out.get("phrasings", {}).get("targets", {}).values()]
    return 0 if all(met) or not args.strict else 1


def add_subcommands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = subparsers.add_parser(
        "simulate",
        help="simulate distillation campaigns and benign traffic against a rule pack",
        description="Generate seeded, reproducible event-time traffic from benign and attacker personas, "
        "run it through the rule engine (replay, long horizons) or the real proxy against the fake model, "
        "and report per persona: accounts acted on, requests and time to first action, reasoning tokens "
        "delivered before and after, benign accounts impacted, added latency; plus the CoT phrasing "
        "evaluation.",
    )
    s.add_argument("--seed", type=int, default=7, help="random seed (default 7); same seed, same traffic")
    s.add_argument("--accounts", type=int, default=1000, help="accounts in the population (default 1000)")
    s.add_argument("--scale", type=float, default=1.0, help="multiply --accounts by this factor")
    s.add_argument("--days", type=float, default=7.0, help="simulated days (default 7)")
    s.add_argument(
        "--mix",
        nargs="+",
        metavar="PERSONA=WEIGHT",
        help="persona weights (only those named); default: the built-in mix",
    )
    s.add_argument(
        "--through",
        choices=("replay", "proxy"),
        default="replay",
        help="replay: the engine directly on event time (default); proxy: the real proxy + fake model",
    )
    s.add_argument("--rules", nargs="+", help=f"rule files or directories (default {DEFAULT_RULES})")
    s.add_argument("--max-requests", type=int, help="proxy mode: stop after this many requests")
    s.add_argument("--phrasings", action="store_true", help="only the CoT phrasing evaluation")
    s.add_argument("--no-phrasings", action="store_true", help="skip the CoT phrasing evaluation")
    s.add_argument("--export", metavar="FILE", help="write the traffic as replay JSONL and exit")
    s.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    s.add_argument("--json", action="store_true", help="print the report as JSON")
    s.set_defaults(handler=cmd_simulate)


def main(argv: list[str] | None = None) -> int:
    """``python -m proxy.cli_sim ...``: the same command without going through ``proxy.cli``."""
    p = argparse.ArgumentParser(prog="distillguard")
    add_subcommands(p.add_subparsers(dest="command", required=True))
    args = p.parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    raise SystemExit(main())
