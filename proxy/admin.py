"""Token-protected admin API for the rules engine (off unless a token is configured).

Routes (all JSON, all need ``Authorization: Bearer <token>``; 401 otherwise):

- ``GET  {prefix}/rules``                       rule set version, files, per-rule hits/shadow hits/errors
- ``POST {prefix}/rules/reload``                recompile and swap (200), or 422 with every problem
- ``GET  {prefix}/state/{scope}/{value}``       scores, active actions, window values (scope: account, ...)
- ``POST {prefix}/state/{scope}/{value}/pardon`` lift actions, forget ban history and score

Register with ``add_admin_routes(app.router, judge, token)`` *before* the proxy's catch-all route.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from proxy.filters.judge import JudgeFilter
from proxy.policy.spec import SCOPES

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(obj: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(obj), status=status, content_type="application/json")


def add_admin_routes(
    router: web.UrlDispatcher, judge: JudgeFilter, token: str, prefix: str = "/admin"
) -> None:
    if not token:
        raise ValueError("the admin API needs a non-empty token")
    expected = f"Bearer {token}".encode()

    def guarded(fn: Handler) -> Handler:
        async def run(request: web.Request) -> web.StreamResponse:
            got = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(got, expected):
                return _json({"error": "unauthenticated"}, 401)
            return await fn(request)

        return run

    async def rules(_: web.Request) -> web.StreamResponse:
        return _json(judge.status())

    async def reload(_: web.Request) -> web.StreamResponse:
        problems = await judge.reload()
        if problems:
            return _json({"ok": False, "version": judge.engine.ruleset.version,
                          "problems": [p.as_dict() for p in problems]}, 422)
        return _json({"ok": True, "version": judge.engine.ruleset.version})

    def scope_of(request: web.Request) -> tuple[str, str] | web.Response:
        scope = request.match_info["scope"]
        if scope not in SCOPES:
            return _json({"error": f"unknown scope {scope!r}; one of {', '.join(SCOPES)}"}, 404)
        return scope, request.match_info["value"]

    async def state(request: web.Request) -> web.StreamResponse:
        sv = scope_of(request)
        if isinstance(sv, web.Response):
            return sv
        return _json(await judge.engine.astate_of(sv[0], sv[1], judge.clock.now()))

    async def pardon(request: web.Request) -> web.StreamResponse:
        sv = scope_of(request)
        if isinstance(sv, web.Response):
            return sv
        return _json({"lifted": await judge.engine.apardon(sv[0], sv[1], judge.clock.now())})

    router.add_get(f"{prefix}/rules", guarded(rules))
    router.add_post(f"{prefix}/rules/reload", guarded(reload))
    router.add_get(f"{prefix}/state/{{scope}}/{{value}}", guarded(state))
    router.add_post(f"{prefix}/state/{{scope}}/{{value}}/pardon", guarded(pardon))
