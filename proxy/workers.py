"""``distillguard serve --workers N``: N processes on one port, sharing rate-limit state through Redis.

The parent is a small supervisor: it starts N ``python -m proxy serve ... --reuse-port`` children
(the same arguments, re-parsed by each child, so nothing has to be pickled), each of which binds the
port with ``SO_REUSEPORT`` and lets the kernel spread connections across them. The parent forwards
SIGTERM/SIGINT (graceful drain) and SIGHUP (reload) to every child and restarts a child that dies,
backing off if children keep crashing at start-up. State must be shared (``state.url`` a redis URL):
with ``memory://`` each worker would enforce its own copy of every limit, so N > 1 is refused.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from proxy.app import Server, install_fast_path

log = logging.getLogger("distillguard.workers")


def check_workers(n: int, cfg: Any) -> str | None:
    """Why ``n`` workers cannot run with ``cfg``, or None."""
    from proxy.state.config import state_spec

    if n < 1:
        return "--workers must be at least 1"
    if n == 1:
        return None
    spec = state_spec(cfg)
    if not spec.shared:
        return (f"--workers {n} needs shared state: with state.url {spec.url} every worker would keep its "
                "own copy of every limit (N times the configured rate). Set `state: {url: "
                "redis://HOST:6379/0}` in the config file, or run one worker per process manager slot.")
    if cfg.server.listen_port == 0:
        return f"--workers {n} needs a fixed port (--listen HOST:PORT with PORT > 0)"
    return None


class ReusePortServer(Server):
    """``Server`` bound with ``SO_REUSEPORT``: several processes listen on the same port."""

    async def start(self) -> None:
        app = self._make_app()
        self.runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self.runner.setup()
        install_fast_path(self.runner, self.proxy)
        self.site = web.TCPSite(self.runner, self.host, self.port, reuse_address=True, reuse_port=True)
        await self.site.start()

    def _make_app(self) -> web.Application:
        from proxy.app import make_web_app

        return make_web_app(self.proxy)


def supervise(n: int, child_args: Sequence[str], *, python: str = sys.executable) -> int:
    """Run ``n`` children ``python -m proxy <child_args> --reuse-port`` until SIGTERM/SIGINT."""
    argv = [python, "-m", "proxy", *child_args, "--reuse-port"]
    children: dict[int, subprocess.Popen[bytes]] = {}
    started: dict[int, float] = {}
    stopping = False

    def spawn(i: int) -> None:
        children[i] = subprocess.Popen(argv)
        started[i] = time.monotonic()
        log.info("worker %d started (pid %d)", i, children[i].pid)

    def forward(sig: int, _frame: Any = None) -> None:
        nonlocal stopping
        if sig in (signal.SIGTERM, signal.SIGINT):
            stopping = True
        for p in children.values():
            if p.poll() is None:
                p.send_signal(sig)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    for i in range(n):
        spawn(i)
    quick_deaths = 0
    status = 0
    while True:
        time.sleep(0.2)
        if stopping:
            break
        for i, p in list(children.items()):
            rc = p.poll()
            if rc is None:
                continue
            lived = time.monotonic() - started[i]
            log.error("worker %d (pid %d) exited with %s after %.1fs; restarting", i, p.pid, rc, lived)
            quick_deaths = quick_deaths + 1 if lived < 2.0 else 0
            if quick_deaths >= 3 * n:
                log.error("workers keep dying at start-up; giving up")
                stopping, status = True, 1
                forward(signal.SIGTERM)
                break
            time.sleep(min(5.0, 0.2 * quick_deaths))
            spawn(i)
    for p in children.values():
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
    return status
