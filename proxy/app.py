"""The aiohttp application: routing, body intake, the filter chain, operations endpoints, lifecycle."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable
from typing import Any

from aiohttp import web

from proxy import errors
from proxy.accesslog import AccessLog
from proxy.clock import SYSTEM_CLOCK, Clock
from proxy.config import Config
from proxy.dialects import detect
from proxy.errors import ProxyError
from proxy.exchange import Exchange
from proxy.forward import Relay, Upstreams, read_body_usage, send_reply
from proxy.metrics import ProxyMetrics
from proxy.pipeline import Chain

log = logging.getLogger("distillguard.app")

APP_KEY: web.AppKey[ProxyApp] = web.AppKey("distillguard", object)  # type: ignore[arg-type]


class ProxyApp:
    """Everything one proxy process holds: config, accounts, filters, upstream pools, metrics."""

    def __init__(
        self,
        config: Config,
        *,
        filters: list[Any] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        accounts: Any = None,
        tune_gc: bool = True,
    ) -> None:
        self.config = config
        self.tune_gc = tune_gc
        self.clock = clock
        self.metrics = ProxyMetrics()
        self.accounts_watcher = accounts
        if accounts is not None:
            self.metrics.accounts_reloads = lambda: (accounts.reloads_ok, accounts.reloads_failed)
        self.filters = filters if filters is not None else build_filters(self)
        for f in self.filters:
            families = getattr(f, "metric_families", None)
            if families is not None:
                self.metrics.add_source(families)
        self.chain = Chain(self.filters)
        # Hooks with a synchronous first step (see ``handle``), by the hook the chain holds.
        self._request_now: dict[Any, Any] = {}
        self._done_now: dict[Any, Any] = {}
        for f in self.filters:
            now = getattr(f, "on_request_now", None)
            if now is not None:
                self._request_now[f.on_request] = now
            now = getattr(f, "on_done_now", None)
            if now is not None:
                self._done_now[f.on_done] = now
        self.upstreams = Upstreams(config.upstreams)
        self.rid_header = config.server.request_id_header
        self.relay = Relay(self.upstreams, self.chain, clock.mono, self.rid_header)
        self.access_log = AccessLog(config.logging.access_log or "off")
        self.in_flight = 0
        self.draining = False
        self._idle = asyncio.Event()  # used only while draining
        self.max_body = config.server.max_body_size
        self.read_timeout = config.server.read_timeout
        self._routes: dict[str, tuple[Any, str, Any]] = {}
        self._routes_of = config

    # -- accounts -------------------------------------------------------------------------------

    def current_accounts(self) -> Any:
        w = self.accounts_watcher
        return w.store if w is not None else None

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.upstreams.start()
        await self.access_log.start()
        if self.accounts_watcher is not None and hasattr(self.accounts_watcher, "start"):
            await self.accounts_watcher.start()
        await self.chain.start()
        self.relay.start()
        if self.tune_gc:
            tune_gc()

    async def stop(self) -> None:
        self.relay.stop()
        await self.chain.stop()
        if self.accounts_watcher is not None and hasattr(self.accounts_watcher, "stop"):
            await self.accounts_watcher.stop()
        await self.access_log.stop()
        await self.upstreams.stop()

    async def drain(self, timeout: float) -> bool:
        """Stop taking new work and wait for in-flight requests (streams included) to finish."""
        self.draining = True
        self.metrics.draining.set(1)
        if self.in_flight == 0:
            return True
        self._idle.clear()  # set again by the last request to finish
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
            return True
        except TimeoutError:
            log.warning("drain deadline reached with %d request(s) in flight", self.in_flight)
            return False

    # -- request handling ---------------------------------------------------------------------------

    def _route(self, path: str) -> tuple[Any, str, Any] | None:
        """Route, upstream path and dialect (for POST) of a path, cached: a handful of paths carry nearly
        all the traffic."""
        if self._routes_of is not self.config:  # (the config object was replaced: start afresh)
            self._routes_of = self.config
            self._routes.clear()
        hit = self._routes.get(path)
        if hit is not None:
            return hit
        routed = self.config.route(path)
        if routed is None:
            return None
        route, upstream_path = routed
        hit = (route, upstream_path, detect("POST", upstream_path, route.dialect))
        if len(self._routes) < 1024:  # paths are client-chosen: bound the cache
            self._routes[path] = hit
        return hit

    async def handle(self, request: web.Request) -> web.StreamResponse:
        clock = self.clock
        peer = request.remote or ""
        ex = Exchange(
            method=request.method,
            path=request.path,
            query=request.query_string,
            headers=request.headers,
            client_ip=peer,
            started=clock.now(),
        )
        ex.t0 = clock.mono()
        self.in_flight += 1
        self.metrics.in_flight += 1
        resp: web.StreamResponse | None = None
        try:
            routed = self._route(ex.path)
            if routed is None:
                missing = ex.error(errors.NOT_FOUND, f"No upstream is configured for {ex.path}")
                resp = await send_reply(ex, request, missing, self.chain, self.rid_header)
            else:
                ex.route, ex.upstream_path, dialect = routed
                ex.dialect = dialect if ex.method == "POST" else detect(ex.method, ex.upstream_path,
                                                                         ex.route.dialect)
                try:
                    if self.draining:
                        raise ProxyError(errors.SHUTTING_DOWN, "The proxy is shutting down; retry shortly.")
                    content = request.content
                    if content.is_eof():
                        # The whole body came with the headers (the usual case; an empty body reads as
                        # b""): no waiting, no timer, no coroutine.
                        body = content.read_nowait()
                        if len(body) > self.max_body:
                            raise ProxyError(errors.BODY_TOO_LARGE,
                                             f"The request body exceeds the limit of {self.max_body} bytes.")
                    else:
                        body = await self._read_body(request)
                    ex.body = body
                    ex.bytes_in = len(body)
                    reply = None
                    nows = self._request_now  # (the chain's lists are read per request: tests insert hooks)
                    for hook in self.chain.request:  # (Chain.run_request, inlined: one coroutine less)
                        now = nows.get(hook)
                        if now is None:
                            reply = await hook(ex)
                        else:
                            # A filter's synchronous first step: None when it decided without waiting
                            # and has nothing to answer, else the awaitable that finishes the hook.
                            pending = now(ex)
                            if pending is None:
                                continue
                            reply = await pending
                        if reply is not None:
                            break
                    if reply is not None:
                        resp = await send_reply(ex, request, reply, self.chain, self.rid_header)
                    else:
                        # Awaited from here, not through a helper coroutine: one frame less per open stream.
                        resp = await self.relay(ex, request)
                except ProxyError as e:
                    reply = ex.error(e.code, e.message, headers=e.headers)
                    resp = await send_reply(ex, request, reply, self.chain, self.rid_header)
        except asyncio.CancelledError:
            ex.client_gone = True
            raise
        finally:
            ex.t_end = clock.mono()
            try:
                if self.chain.done:
                    pending = self._run_done(ex)  # (usually synchronous: no coroutine)
                    if pending is not None:
                        await pending
                if resp is not None and not resp.prepared:
                    # A buffered body or a local reply: send it now, after on_done (which may free a
                    # slot the client's next request needs) and before the metrics and the log line,
                    # which the client need not wait for.
                    try:
                        await resp.prepare(request)
                        await resp.write_eof()
                    except ConnectionError:
                        ex.client_gone = True
            finally:
                self._record(ex)
                self.in_flight -= 1
                self.metrics.in_flight -= 1
                if self.in_flight == 0 and self.draining:
                    self._idle.set()
        assert resp is not None  # every path that gets here without an exception set it
        return resp

    def _run_done(self, ex: Exchange) -> Awaitable[None] | None:
        """``Chain.run_done``, after the usage of a buffered body the relay left unread (``ex.usage_body``:
        the hooks reconcile with it), with each hook's synchronous first step (``on_done_now``): None when
        every hook finished without waiting, else the awaitable that runs the rest."""
        if ex.usage_body is not None:
            # (a body the dialect cannot read must not skip the hooks: leases)
            try:
                read_body_usage(ex)
            except Exception:
                log.exception("reading the response usage failed", extra={"request_id": ex.request_id})
        nows = self._done_now
        for i, hook in enumerate(self.chain.done):
            now = nows.get(hook)
            if now is None:
                return self._run_done_from(ex, i, None)
            try:
                pending = now(ex)
            except Exception:
                log.exception("on_done hook failed", extra={"request_id": ex.request_id})
                continue
            if pending is not None:
                return self._run_done_from(ex, i, pending)
        return None

    async def _run_done_from(self, ex: Exchange, i: int, pending: Awaitable[None] | None) -> None:
        """The rest of ``_run_done`` from hook ``i`` (``pending``: that hook's awaitable, already begun)."""
        hooks = self.chain.done
        nows = self._done_now
        for hook in hooks[i:]:
            try:
                if pending is None:
                    now = nows.get(hook)
                    pending = hook(ex) if now is None else now(ex)
                if pending is not None:
                    await pending
            except Exception:
                log.exception("on_done hook failed", extra={"request_id": ex.request_id})
            pending = None

    async def _read_body(self, request: web.Request) -> bytes:
        limit = self.max_body
        content = request.content
        if content.is_eof():
            # The whole body came with the headers (the usual case; an empty body reads as b""): no
            # waiting, no timer.
            body = content.read_nowait()
            if len(body) > limit:
                raise ProxyError(errors.BODY_TOO_LARGE, f"The request body exceeds the limit of {limit} bytes.")
            return body
        declared = request.content_length
        if declared is not None and declared > limit:
            raise ProxyError(errors.BODY_TOO_LARGE, f"The request body exceeds the limit of {limit} bytes.")
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.read_timeout):
                async for chunk in content.iter_any():
                    size += len(chunk)
                    if size > limit:
                        raise ProxyError(
                            errors.BODY_TOO_LARGE, f"The request body exceeds the limit of {limit} bytes."
                        )
                    chunks.append(chunk)
        except TimeoutError as e:
            raise ProxyError(errors.INVALID_REQUEST, "The request body did not arrive in time.") from e
        return b"".join(chunks)

    def _record(self, ex: Exchange) -> None:
        if ex.usage_body is not None:
            read_body_usage(ex)
        m = self.metrics
        route = ex.route.name if ex.route is not None else "-"
        status = ex.status or (499 if ex.client_gone else 0)
        ex.status = status
        account = ex.account
        key = (ex.dialect.name if ex.dialect is not None else "-", route, status,
               account.tier if account is not None else "none")
        requests = m.requests
        requests[key] = requests.get(key, 0) + 1
        if ex.error_code:
            m.count_error(ex.error_code)
        t_up = ex.t_upstream
        if t_up:
            rm = m.routes.get(route) or m.route(route)
            t0 = ex.t0
            rm.observe(ex.t_first_byte - t0 if ex.t_first_byte else None, t_up - t0 - ex.waited,
                       ex.t_headers - t_up if ex.t_headers else None, ex.events_out)
        m.bytes_in += ex.bytes_in
        m.bytes_out += ex.bytes_out
        self.access_log.write(ex)

    # -- operations endpoints -------------------------------------------------------------------------

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        problems: list[str] = []
        if self.draining:
            problems.append("draining")
        results = await asyncio.gather(*(self.upstreams.probe(n) for n in self.upstreams.specs))
        for name, ok in zip(self.upstreams.specs, results, strict=True):
            if not ok:
                problems.append(f"upstream {name} unreachable")
        if problems:
            return web.json_response({"status": "not ready", "problems": problems}, status=503)
        return web.json_response({"status": "ready"})

    async def metrics_endpoint(self, request: web.Request) -> web.Response:
        if self.accounts_watcher is not None:
            store = self.current_accounts()
            if store is not None:
                self.metrics.accounts_loaded.set(len(store))
        body, ctype = self.metrics.render()
        return web.Response(body=body, headers={"Content-Type": ctype})


# Collect the youngest generation every 20 000 net allocations instead of 700. The relay makes no
# cyclic garbage per request (checked with gc.DEBUG_SAVEALL under load); what triggers collections
# is the churn of live in-flight objects, and each collection walks all of them: at 700 that was
# ~15 µs of CPU per request, a twentieth of the proxy's whole cost.
GC_THRESHOLD0 = 20_000


def tune_gc() -> None:
    """Garbage-collector settings for a long-running proxy process: collect what start-up left, then
    freeze the survivors (modules, config, compiled rules) so full collections skip them, and collect
    young objects less often."""
    gc.collect()
    gc.freeze()
    g0, g1, g2 = gc.get_threshold()
    gc.set_threshold(max(GC_THRESHOLD0, g0), g1, g2)


def build_filters(app: ProxyApp) -> list[Any]:
    """The chain, in request order: identify -> validate -> judge -> shape -> harden -> redact.

    Each optional stage is present only when configured, so an unconfigured feature costs nothing
    per request or per stream event.
    """
    from proxy.filters.identify import IdentifyFilter
    from proxy.filters.validate import ValidateFilter

    cfg = app.config
    filters: list[Any] = [IdentifyFilter(cfg.identity, app.current_accounts), ValidateFilter()]
    judge = None
    rules = cfg.sections.get("rules")
    if rules is not None:
        from proxy.policy.settings import build_judge

        judge = build_judge(rules, clock=app.clock)
        if judge is not None:
            from proxy.policy.store_faults import rule_store_from_config

            # state: redis://... -> rule windows, scores and actions shared by every replica
            store = rule_store_from_config(cfg, judge.engine.ruleset, registry=app.metrics.registry,
                                           clock=app.clock)
            if store is not None:
                from proxy.policy.clusters_shared import SharedTemplateClusters

                judge.engine.use_store(store)
                judge.clusters = SharedTemplateClusters(store)  # template cluster ids fleet-wide too
            filters.append(judge)
    limits = cfg.sections.get("limits")
    if limits:
        from proxy.filters.shape import ShapeFilter
        from proxy.state.config import shape_state

        shape = ShapeFilter.from_config(
            limits, registry=app.metrics.registry, clock=app.clock,
            **shape_state(cfg, registry=app.metrics.registry, clock=app.clock),
        )
        filters.append(shape)
        if judge is not None:
            # rules and limits on the same Redis: one script call per request from the first request on
            judge.couple(shape.shaper)
    from proxy.redact import build_redaction_filters

    has_rules = any(getattr(f, "name", "") == "judge" for f in filters)
    filters += build_redaction_filters(cfg, clock=app.clock, rules=has_rules)
    return filters


def make_web_app(proxy: ProxyApp) -> web.Application:
    server = proxy.config.server
    app = web.Application(client_max_size=server.max_body_size + 1, handler_args={
        "max_field_size": server.max_header_size,
        "max_line_size": server.max_header_size,
        # aiohttp closes a connection that has not completed a request's headers this long after it
        # opened or after its previous response (slowloris); the body then has ``read_timeout`` too.
        "keepalive_timeout": server.read_timeout,
    })
    app[APP_KEY] = proxy
    metrics_path = proxy.config.metrics.path if proxy.config.metrics.enabled else None
    app.router.add_get("/healthz", proxy.healthz)
    _add_admin(app, proxy)
    app.router.add_get("/readyz", proxy.readyz)
    if metrics_path:
        app.router.add_get(metrics_path, proxy.metrics_endpoint)
    app.router.add_route("*", "/{tail:.*}", proxy.handle)

    async def on_startup(_: web.Application) -> None:
        await proxy.start()

    async def on_cleanup(_: web.Application) -> None:
        await proxy.stop()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app


def _add_admin(app: web.Application, proxy: ProxyApp) -> None:
    """The admin API (rules, account state, pardon, reload): only with rules and a token configured."""
    rules = proxy.config.sections.get("rules")
    judge = next((f for f in proxy.filters if getattr(f, "name", "") == "judge"), None)
    if rules is None or judge is None:
        return
    token = rules.admin_token()
    if not token:
        return
    from proxy.admin import add_admin_routes

    add_admin_routes(app.router, judge, token, prefix=rules.admin_prefix)


def install_fast_path(runner: web.AppRunner, proxy: ProxyApp) -> None:
    """Send proxied requests straight to ``proxy.handle``, past the application's router.

    Call after ``runner.setup()`` and before a site starts (each connection copies the server's
    handler when it opens). aiohttp's dispatch (router walk, match info, middleware check, a
    ``getpid`` system call for the loop) costs about as much as a filter; only the proxy's catch-all
    route needs none of it. Paths of the other routes (operations endpoints, admin API) and requests
    that ask for ``100-continue`` still go through the router, so they behave exactly as before.
    """
    server = runner.server
    if server is None:
        raise RuntimeError("install_fast_path: call runner.setup() first")
    app = runner.app
    exact: set[str] = set()
    prefixes: list[str] = []
    for resource in app.router.resources():
        if any(route.handler == proxy.handle for route in resource):
            continue  # the catch-all
        canonical = resource.canonical
        head, brace, _ = canonical.partition("{")
        if brace:
            prefixes.append(head)
        else:
            exact.add(canonical)
    starts = tuple(prefixes)
    routed = server.request_handler
    handle = proxy.handle

    def dispatch(request: web.BaseRequest) -> Awaitable[web.StreamResponse]:
        # A plain function returning the coroutine: no extra frame per request or per open stream.
        path = request.path
        if path in exact or (starts and path.startswith(starts)) or "Expect" in request.headers:
            return routed(request)
        return handle(request)  # type: ignore[arg-type]

    server.request_handler = dispatch


class Server:
    """Runs a ``ProxyApp`` on a socket: start, graceful stop (drain, then close)."""

    def __init__(self, proxy: ProxyApp, host: str | None = None, port: int | None = None) -> None:
        self.proxy = proxy
        self.host = host if host is not None else proxy.config.server.listen_host
        self.port = port if port is not None else proxy.config.server.listen_port
        self.runner: web.AppRunner | None = None
        self.site: web.TCPSite | None = None

    async def start(self) -> None:
        app = make_web_app(self.proxy)
        self.runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self.runner.setup()
        install_fast_path(self.runner, self.proxy)
        self.site = web.TCPSite(self.runner, self.host, self.port, reuse_address=True)
        await self.site.start()
        sockets = self.runner.addresses
        if sockets and self.port == 0:
            self.port = sockets[0][1]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def stop(self, drain_timeout: float | None = None) -> None:
        """Stop accepting, let in-flight requests finish up to the deadline, then close everything."""
        if self.runner is None:
            return
        deadline = self.proxy.config.server.drain_timeout if drain_timeout is None else drain_timeout
        t0 = time.monotonic()
        # Close the listening sockets first so no new connection lands here; open ones finish.
        for site in list(self.runner.sites):
            await site.stop()
        await self.proxy.drain(deadline)
        remaining = max(0.1, deadline - (time.monotonic() - t0))
        self.runner._shutdown_timeout = remaining  # the deadline left for keep-alive connections
        await self.runner.cleanup()
        self.runner = None

