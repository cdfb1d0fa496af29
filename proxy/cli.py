"""``distillguard`` command line: serve, check-config, keys, demo, and the policy author's toolkit."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from proxy import __version__

if TYPE_CHECKING:
    from proxy.config import Config

log = logging.getLogger("distillguard")
_reloads: set[asyncio.Task[None]] = set()


def _setup_logging(level: str = "info") -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _use_uvloop() -> str:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="distillguard",
        description="A defensive reverse proxy for model APIs.",
    )
    p.add_argument("--version", action="version", version=f"distillguard {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("serve", help="run the proxy", description="Run the proxy in front of one or more upstreams.")
    s.add_argument("--config", metavar="FILE", help="config file (YAML); flags override it")
    s.add_argument("--accounts", metavar="FILE", help="accounts file (YAML), hot-reloaded on change or SIGHUP")
    s.add_argument("--listen", metavar="HOST:PORT", help="address to listen on (default 127.0.0.1:8080)")
    s.add_argument("--upstream", metavar="URL", help="a single upstream for every path (replaces the file's)")
    s.add_argument("--allow-anonymous", action="store_true",
                   help="let requests without a key through as the 'anonymous' account")
    s.add_argument("--workers", type=int, default=1, metavar="N",
                   help="run N processes on one port (SO_REUSEPORT); N > 1 needs a redis state.url")
    s.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)  # set for each worker

    c = sub.add_parser("check-config", help="validate a config file and list every error",
                       description="Validate a config file; exit 0 when valid, 1 otherwise.")
    c.add_argument("file", metavar="FILE")
    c.add_argument("--accounts", metavar="FILE", help="also validate an accounts file")
    c.add_argument("--json", action="store_true", help="print problems as JSON")

    k = sub.add_parser("keys", help="manage API keys", description="Create API keys for accounts.")
    ksub = k.add_subparsers(dest="keys_command", metavar="ACTION")
    kn = ksub.add_parser("new", help="print a fresh key once, plus the line to paste into the accounts file")
    kn.add_argument("--account", required=True, metavar="ID")

    d = sub.add_parser("demo", help="run the built-in demo (fake model + proxy + SDK clients)",
                       description="Start a fake reasoning model and the proxy on loopback, drive a scripted "
                       "mix of requests through it with the official SDKs and print what happened.")
    d.add_argument("--verbose", action="store_true", help="show the proxy's logs")

    from proxy.cli_rules import add_subcommands as add_rules
    from proxy.cli_sim import add_subcommands as add_simulate

    add_rules(sub)
    add_simulate(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "serve":
        return cmd_serve(args)
    if args.command == "check-config":
        return cmd_check_config(args)
    if args.command == "keys":
        if args.keys_command != "new":
            parser.parse_args(["keys", "--help"])
            return 2
        return cmd_keys_new(args)
    if args.command == "demo":
        from proxy.demo import run_demo

        return run_demo(verbose=args.verbose)
    handler = getattr(args, "handler", None)
    if handler is not None:
        return int(handler(args))
    parser.print_help()
    return 2


def cmd_keys_new(args: argparse.Namespace) -> int:
    from proxy.keys import format_new_key

    _, text = format_new_key(args.account)
    print(text)
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    import orjson

    from proxy.accounts import load_accounts
    from proxy.config import ConfigError, load_config

    problems: list = []
    cfg = None
    try:
        cfg = load_config(args.file)
    except ConfigError as e:
        problems.extend(e.problems)
    accounts_file = args.accounts or (cfg.accounts_file if cfg is not None else None)
    if accounts_file:
        try:
            load_accounts(accounts_file)
        except ConfigError as e:
            problems.extend(e.problems)
    if args.json:
        print(orjson.dumps([p.as_dict() for p in problems], option=orjson.OPT_INDENT_2).decode())
    else:
        for p in problems:
            print(p.format())
        print(f"{args.file}: {'OK' if not problems else f'{len(problems)} problem(s)'}", file=sys.stderr)
    return 1 if problems else 0


def load_serve_config(args: argparse.Namespace) -> Config:
    from proxy.config import Config, load_config

    cfg = load_config(args.config) if args.config else Config.default()
    return cfg.with_overrides(
        listen=args.listen,
        upstream=args.upstream,
        accounts=args.accounts,
        allow_anonymous=True if args.allow_anonymous else None,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    from proxy.config import ConfigError

    try:
        cfg = load_serve_config(args)
    except ConfigError as e:
        for p in e.problems:
            print(p.format(), file=sys.stderr)
        return 1
    _setup_logging(cfg.logging.level)
    if not cfg.upstreams:
        print("distillguard: no upstream configured (give --upstream URL or a config file)", file=sys.stderr)
        return 1
    if args.workers != 1:
        from proxy.workers import check_workers, supervise

        problem = check_workers(args.workers, cfg)
        if problem is not None:
            print(f"distillguard: {problem}", file=sys.stderr)
            return 2
        log.info("distillguard %s starting %d workers on %s", __version__, args.workers, cfg.server.listen)
        return supervise(args.workers, _worker_args(args))
    loop_name = _use_uvloop()
    log.info("distillguard %s starting on %s (%s)", __version__, cfg.server.listen, loop_name)
    try:
        asyncio.run(serve(cfg, reuse_port=args.reuse_port))
    except KeyboardInterrupt:
        pass
    except ConfigError as e:  # the accounts file (or a section's own file) is invalid at start-up
        for p in e.problems:
            print(p.format(), file=sys.stderr)
        return 1
    except OSError as e:
        print(f"distillguard: cannot listen on {cfg.server.listen}: {e}", file=sys.stderr)
        return 1
    return 0


def _worker_args(args: argparse.Namespace) -> list[str]:
    """The ``serve`` arguments each worker re-parses (everything but ``--workers``)."""
    out = ["serve"]
    for flag, value in (("--config", args.config), ("--accounts", args.accounts), ("--listen", args.listen),
                        ("--upstream", args.upstream)):
        if value:
            out += [flag, value]
    if args.allow_anonymous:
        out.append("--allow-anonymous")
    return out


async def serve(cfg: Config, ready: asyncio.Event | None = None, *, reuse_port: bool = False) -> None:
    """Run until SIGTERM/SIGINT; SIGHUP reloads the accounts file (and rules, when configured)."""
    from proxy.accounts import AccountsWatcher
    from proxy.app import ProxyApp, Server

    watcher = AccountsWatcher(cfg.accounts_file) if cfg.accounts_file else None  # ConfigError: see cmd_serve
    proxy = ProxyApp(cfg, accounts=watcher)
    if watcher is None and not cfg.identity.allow_anonymous and not cfg.identity.account_header:
        log.warning("no accounts file and anonymous access is off: every request will get 401")
    if reuse_port:
        from proxy.workers import ReusePortServer

        server: Server = ReusePortServer(proxy)
    else:
        server = Server(proxy)
    await server.start()
    log.info("listening on %s", server.url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def _reload() -> None:
        log.info("SIGHUP: reloading")
        for target in [watcher, *proxy.filters]:
            fn = getattr(target, "reload", None)
            if fn is not None:
                task = loop.create_task(_run_reload(fn))
                _reloads.add(task)  # keep a reference until it is done
                task.add_done_callback(_reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, _reload)
    if ready is not None:
        ready.set()
    await stop.wait()
    log.info("shutting down: draining up to %.1fs", cfg.server.drain_timeout)
    await server.stop()
    log.info("stopped")


async def _run_reload(fn: Callable[[], Any]) -> None:
    try:
        result = fn()
        if asyncio.iscoroutine(result):
            await result
    except Exception:
        log.exception("reload failed")


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
