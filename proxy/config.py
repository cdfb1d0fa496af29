"""The proxy's configuration: strict YAML -> frozen specs, every problem reported at once.

``load_config(path)`` reads a file; ``config_from_dict`` builds from plain values (flags, tests);
``Config.with_overrides`` applies CLI flags. Other modules add top-level sections (``redaction``,
``limits``, ``rules``, ...) by registering a parser in ``SECTIONS``; its result lands in
``Config.sections[name]``. A top-level key that is neither built in nor registered is an error.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from proxy.yamlspec import (
    At,
    Fields,
    Invalid,
    Mark,
    Problems,
    ProblemsError,
    describe,
    load_yaml_file,
    locate,
    to_cidr,
    to_url,
)

TIERS = ("trusted", "standard", "restricted")
DEFAULT_TIER = "standard"
DIALECT_NAMES = ("openai_chat", "openai_responses", "anthropic_messages", "gemini")
AUTH_SCHEMES = ("bearer", "x-api-key", "x-goog-api-key", "none")
# How each API expects its key when ``auth`` is left null.
DIALECT_AUTH = {
    "openai_chat": "bearer",
    "openai_responses": "bearer",
    "anthropic_messages": "x-api-key",
    "gemini": "x-goog-api-key",
}
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("json", "text")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_HEADER = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_ENV_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PATH = re.compile(r"/[^\s?#]*")

SectionParser = Callable[[Any, At, Problems], Any]
# name -> parser(value, at, problems). Called with value None when the section is absent, so the
# parser returns its defaults. Register at import time of the owning module, before loading.
SECTIONS: dict[str, SectionParser] = {}
BUILTIN_SECTIONS = ("server", "upstreams", "accounts_file", "identity", "logging", "metrics")


def register_section(name: str, parser: SectionParser) -> None:
    if name in BUILTIN_SECTIONS or SECTIONS.get(name, parser) is not parser:
        raise ValueError(f"config section {name!r} is already defined")
    SECTIONS[name] = parser


class ConfigError(ProblemsError):
    """The configuration is invalid; ``problems`` lists every error (``problems.as_json()`` for CI)."""

    def __init__(self, problems: Problems) -> None:
        super().__init__(problems, "invalid configuration")


# --------------------------------------------------------------------------- specs


@dataclass(frozen=True, slots=True)
class ServerSpec:
    listen_host: str = "127.0.0.1"
    listen_port: int = 8080
    max_body_size: int = 10 * 1024 * 1024
    max_header_size: int = 16 * 1024
    drain_timeout: float = 30.0
    read_timeout: float = 60.0  # for the whole request body to arrive (slow clients)
    request_id_header: str = "x-request-id"

    @property
    def listen(self) -> str:
        host = f"[{self.listen_host}]" if ":" in self.listen_host else self.listen_host
        return f"{host}:{self.listen_port}"


@dataclass(frozen=True, slots=True)
class TimeoutsSpec:
    """Seconds: to connect, to the first response byte, and between bytes of a response."""

    connect: float = 10.0
    first_byte: float = 300.0
    idle: float = 120.0


@dataclass(frozen=True, slots=True)
class UpstreamSpec:
    """One upstream API. ``prefix`` is normalised (no trailing slash except ``/``); ``url`` has none."""

    name: str
    url: str
    prefix: str = "/"
    strip_prefix: bool = False
    dialect: str | None = None
    api_key: str | None = field(default=None, repr=False)  # resolved from the literal or the environment
    auth: str | None = None  # None: chosen by dialect (see ``auth_scheme``)
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    timeouts: TimeoutsSpec = TimeoutsSpec()
    max_connections: int = 1000
    api_key_env: str | None = None  # where the key came from, for messages

    def auth_scheme(self, dialect: str | None) -> str:
        """How to send ``api_key`` for a request in ``dialect``: bearer, x-api-key, x-goog-api-key or none."""
        if self.auth is not None:
            return self.auth
        return DIALECT_AUTH.get(self.dialect or dialect or "", "bearer")

    def target(self, upstream_path: str, query: str = "") -> str:
        """The full upstream URL: base URL (which may carry a path such as /v1) + upstream path."""
        return self.url + upstream_path + (f"?{query}" if query else "")


@dataclass(frozen=True, slots=True)
class IdentitySpec:
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    account_header: str | None = None
    allow_anonymous: bool = False
    anonymous_tier: str = DEFAULT_TIER
    key_query_param: str | None = "key"  # None: keys in the query string are not read


@dataclass(frozen=True, slots=True)
class LoggingSpec:
    level: str = "info"
    access_log: str | None = "-"  # "-" stdout, a file path, or None (off)
    format: str = "json"


@dataclass(frozen=True, slots=True)
class MetricsSpec:
    enabled: bool = True
    path: str = "/metrics"


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration. ``sections`` holds the results of registered section parsers."""

    server: ServerSpec = ServerSpec()
    upstreams: tuple[UpstreamSpec, ...] = ()
    accounts_file: Path | None = None
    identity: IdentitySpec = IdentitySpec()
    logging: LoggingSpec = LoggingSpec()
    metrics: MetricsSpec = MetricsSpec()
    source: str = "<defaults>"
    sections: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    _routes: tuple[UpstreamSpec, ...] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.upstreams, key=lambda u: len(u.prefix), reverse=True))
        object.__setattr__(self, "_routes", ordered)

    def route(self, path: str) -> tuple[UpstreamSpec, str] | None:
        """The upstream with the longest prefix matching ``path`` on a segment boundary, and the path to
        send it (prefix removed when ``strip_prefix``); ``None`` when nothing matches."""
        for up in self._routes:
            p = up.prefix
            if p == "/" or path == p or path.startswith(p + "/"):
                if up.strip_prefix and p != "/":
                    return up, path[len(p):] or "/"
                return up, path
        return None

    @classmethod
    def default(cls) -> Config:
        """Every default and no upstream: the base for a run configured by flags alone."""
        return config_from_dict({})

    def upstream(self, name: str) -> UpstreamSpec | None:
        return next((u for u in self.upstreams if u.name == name), None)

    def with_overrides(
        self,
        *,
        listen: str | None = None,
        upstream: str | None = None,
        accounts: str | Path | None = None,
        allow_anonymous: bool | None = None,
    ) -> Config:
        """Apply CLI flags: ``--listen host:port``, ``--upstream URL`` (replaces all upstreams with one on
        prefix ``/``), ``--accounts PATH``, ``--allow-anonymous``. ``None`` leaves a setting as it is.
        Raises ``ConfigError`` on a bad flag value."""
        problems = Problems()
        flags = Mark("<flags>")
        cfg = self
        if listen is not None:
            try:
                host, port = to_listen(listen)
                cfg = replace(cfg, server=replace(cfg.server, listen_host=host, listen_port=port))
            except Invalid as e:
                problems.add(flags, "--listen", str(e))
        if upstream is not None:
            try:
                cfg = replace(cfg, upstreams=(UpstreamSpec(name="default", url=to_url(upstream)),))
            except Invalid as e:
                problems.add(flags, "--upstream", str(e))
        if accounts is not None:
            cfg = replace(cfg, accounts_file=Path(accounts))
        if allow_anonymous is not None:
            cfg = replace(cfg, identity=replace(cfg.identity, allow_anonymous=allow_anonymous))
        if problems:
            raise ConfigError(problems)
        return cfg


# --------------------------------------------------------------------------- converters


def to_listen(v: Any, raw: str | None = None) -> tuple[str, int]:
    """``"host:port"``; IPv6 hosts in brackets (``"[::1]:8080"``). Port 0 asks the OS for a free one."""
    if not isinstance(v, str):
        hint = f" (YAML 1.1 reads the unquoted {raw} as a number; quote it)" if raw and ":" in raw else ""
        raise Invalid(f"expected 'host:port' like '127.0.0.1:8080', got {describe(v)}{hint}")
    host, sep, port = v.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError as e:
            raise Invalid(f"invalid IPv6 address in '{v}'") from e
    elif ":" in host:
        raise Invalid(f"put an IPv6 address in brackets, like '[::1]:8080', got '{v}'")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise Invalid(f"expected 'host:port' like '127.0.0.1:8080', got '{v}'")
    return host, int(port)


def to_access_log(v: Any, raw: str | None = None) -> str | None:
    """``"-"`` (stdout), a path, or ``off``; the unquoted ``off`` that YAML reads as false is meant."""
    if v is False or v == "off":
        return None
    if isinstance(v, str) and v:
        return v
    raise Invalid(f"expected '-', a file path or off, got {describe(v)}")


# --------------------------------------------------------------------------- parsing


def load_config(
    path: str | Path, *, env: Mapping[str, str] | None = None, require_upstream: bool = True
) -> Config:
    """Read, validate and build the config at ``path``; raises ``ConfigError`` listing every problem."""
    problems = Problems()
    data = load_yaml_file(path, problems)
    if problems and data is None:
        raise ConfigError(problems)
    at = At(Mark(str(path), 1, 1), base_dir=Path(path).parent)
    return _build(data, at, problems, env, require_upstream)


def config_from_dict(
    data: Mapping[str, Any] | None = None,
    source: str = "<flags>",
    *,
    env: Mapping[str, str] | None = None,
    require_upstream: bool = False,
) -> Config:
    """Build from plain values (no file). Relative paths stay relative to the working directory."""
    return _build(locate(dict(data or {}), source), At(Mark(source)), Problems(), env, require_upstream)


def config_from_flags(
    *, listen: str | None = None, upstream: str | None = None, accounts: str | Path | None = None
) -> Config:
    """A config from CLI flags alone: defaults plus the overrides."""
    return config_from_dict({}).with_overrides(listen=listen, upstream=upstream, accounts=accounts)


def _build(
    data: Any, at: At, problems: Problems, env: Mapping[str, str] | None, require_upstream: bool
) -> Config:
    import proxy.sections  # noqa: F401  (registers the optional sections: limits, redaction, rules, ...)

    env = os.environ if env is None else env
    top = Fields.of(data, at, problems)
    server = _server(top.map("server"))
    upstreams = _upstreams(top, env, require_upstream)
    accounts_file = _accounts_file(top)
    identity = _identity(top.map("identity"))
    logging_ = _logging(top.map("logging"))
    metrics = _metrics(top.map("metrics"))
    sections = {}
    for name, parser in SECTIONS.items():
        sections[name] = parser(top.raw(name), top.child(name), problems)
    top.done(also_known=BUILTIN_SECTIONS)
    if problems:
        raise ConfigError(problems)
    return Config(server, upstreams, accounts_file, identity, logging_, metrics, at.mark.file,
                  MappingProxyType(sections))


def _server(f: Fields) -> ServerSpec:
    d = ServerSpec()
    listen = f.get("listen", to_listen, (d.listen_host, d.listen_port))
    spec = ServerSpec(
        listen_host=listen[0],
        listen_port=listen[1],
        max_body_size=f.size("max_body_size", d.max_body_size, min=1),
        max_header_size=f.size("max_header_size", d.max_header_size, min=1024),
        drain_timeout=f.duration("drain_timeout", d.drain_timeout),
        read_timeout=f.duration("read_timeout", d.read_timeout),
        request_id_header=f.string("request_id_header", d.request_id_header, pattern=_HEADER,
                                   what="an HTTP header name").lower(),
    )
    f.done()
    return spec


def _upstreams(top: Fields, env: Mapping[str, str], require: bool) -> tuple[UpstreamSpec, ...]:
    items = top.maps("upstreams", required=require)
    given = top.raw("upstreams")
    if require and isinstance(given, list) and not given:
        top.report("upstreams", "at least one upstream is required")
    out: list[UpstreamSpec] = []
    names: dict[str, int] = {}
    prefixes: dict[str, str] = {}
    for f in items:
        up = _upstream(f, env)
        name = f.data.get("name")
        if isinstance(name, str):
            if name in names:
                f.report("name", f"duplicate upstream name (first defined at line {names[name]})")
                continue
            names[name] = f.data.value_mark("name").line
        if up is None:
            continue
        if up.prefix in prefixes:
            f.report("prefix", f"prefix {up.prefix} is already routed to upstream '{prefixes[up.prefix]}'")
            continue
        prefixes[up.prefix] = up.name
        out.append(up)
    return tuple(out)


def _upstream(f: Fields, env: Mapping[str, str]) -> UpstreamSpec | None:
    name = f.string("name", required=True, pattern=_NAME,
                    what="a name of letters, digits, '.', '_' or '-' (at most 64)")
    url = f.url("url", required=True)
    prefix = f.string("prefix", "/", pattern=_PATH, what="a path starting with '/'")
    strip_prefix = f.boolean("strip_prefix", False)
    dialect = f.enum("dialect", DIALECT_NAMES)
    auth = f.enum("auth", AUTH_SCHEMES)
    headers = f.str_map("headers")
    for h in headers:
        if not _HEADER.fullmatch(h):
            f.problems.add(f.data["headers"].key_mark(h), f"{f.field('headers')}.{h}",
                           "not a valid HTTP header name", context=f.at.context)
    max_connections = f.integer("max_connections", 1000, min=1)
    tf = f.map("timeouts")
    d = TimeoutsSpec()
    timeouts = TimeoutsSpec(
        connect=tf.duration("connect", d.connect, min=0.001),
        first_byte=tf.duration("first_byte", d.first_byte, min=0.001),
        idle=tf.duration("idle", d.idle, min=0.001),
    )
    tf.done()
    api_key = f.string("api_key")
    api_key_env = f.string("api_key_env", pattern=_ENV_VAR, what="an environment variable name")
    optional = f.boolean("api_key_optional", False)
    if api_key is not None and api_key_env is not None:
        f.report("api_key", "set api_key or api_key_env, not both")
    elif api_key_env is not None:
        api_key = env.get(api_key_env) or None
        if api_key is None and not optional:
            f.report("api_key_env", f"environment variable {api_key_env} is not set "
                                    "(set it, or add api_key_optional: true)")
    f.done()
    if name is None or url is None:
        return None
    if prefix != "/":
        prefix = prefix.rstrip("/") or "/"
    return UpstreamSpec(name, url, prefix, strip_prefix, dialect, api_key, auth, MappingProxyType(headers),
                        timeouts, max_connections, api_key_env)


def _accounts_file(top: Fields) -> Path | None:
    name = top.string("accounts_file")
    if name is None:
        return None
    path = Path(name)
    if top.at.base_dir is not None and not path.is_absolute():
        path = top.at.base_dir / path
    if top.at.base_dir is not None and not path.is_file():
        top.report("accounts_file", f"file not found: {path}")
    return path


def _identity(f: Fields) -> IdentitySpec:
    d = IdentitySpec()
    spec = IdentitySpec(
        trusted_proxies=f.list_of("trusted_proxies", to_cidr),
        account_header=f.string("account_header", pattern=_HEADER, what="an HTTP header name"),
        allow_anonymous=f.boolean("allow_anonymous", d.allow_anonymous),
        anonymous_tier=f.enum("anonymous_tier", TIERS, d.anonymous_tier),
        key_query_param=f.string("key_query_param", d.key_query_param, nullable=True),
    )
    f.done()
    return spec


def _logging(f: Fields) -> LoggingSpec:
    d = LoggingSpec()
    access_log = f.get("access_log", to_access_log, d.access_log, nullable=True)
    if access_log not in (None, "-") and f.at.base_dir is not None and not Path(access_log).is_absolute():
        access_log = str(f.at.base_dir / access_log)
    spec = LoggingSpec(
        level=f.enum("level", LOG_LEVELS, d.level),
        access_log=access_log,
        format=f.enum("format", LOG_FORMATS, d.format),
    )
    f.done()
    return spec


def _metrics(f: Fields) -> MetricsSpec:
    d = MetricsSpec()
    spec = MetricsSpec(
        enabled=f.boolean("enabled", d.enabled),
        path=f.string("path", d.path, pattern=_PATH, what="a path starting with '/'"),
    )
    f.done()
    return spec
