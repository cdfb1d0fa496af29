from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest

from proxy import config as config_mod
from proxy.config import (
    SECTIONS,
    Config,
    ConfigError,
    config_from_dict,
    config_from_flags,
    load_config,
    register_section,
)
from proxy.dialects import DIALECTS
from proxy.yamlspec import At, Fields, Problems

ROOT = Path(__file__).resolve().parent.parent
ENV = {"OPENAI_API_KEY": "sk-test", "ANTHROPIC_API_KEY": "ak-test", "GEMINI_API_KEY": "gk-test"}

UPSTREAM = "upstreams:\n  - name: u\n    url: https://api.example.com\n"


def load_text(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Config:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return load_config(path, env=env if env is not None else {})


def problems_of(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as e:
        load_text(tmp_path, text, env)
    prefix = str(tmp_path / "c.yaml")
    return [line.replace(prefix, "c.yaml") for line in e.value.problems.lines()]


def test_example_config_loads_clean() -> None:
    cfg = load_config(ROOT / "config.example.yaml", env=ENV)
    assert [u.name for u in cfg.upstreams] == ["openai", "anthropic", "gemini"]
    assert cfg.upstream("openai").api_key == "sk-test"
    assert cfg.upstream("anthropic").headers == {"anthropic-version": "2023-06-01"}
    assert cfg.server.listen == "127.0.0.1:8080"
    assert cfg.server.max_body_size == 10 * 1024 * 1024
    assert cfg.logging.access_log == "-"


def test_example_accounts_file_loads() -> None:
    from proxy.accounts import AccountStore

    assert len(AccountStore.from_file(ROOT / "accounts.example.yaml")) == 2


def test_defaults(tmp_path: Path) -> None:
    cfg = load_text(tmp_path, UPSTREAM)
    assert cfg.server.drain_timeout == 30.0
    assert cfg.server.max_header_size == 16 * 1024
    (up,) = cfg.upstreams
    assert (up.prefix, up.strip_prefix, up.dialect, up.api_key) == ("/", False, None, None)
    assert up.max_connections == 1000
    assert (up.timeouts.connect, up.timeouts.first_byte, up.timeouts.idle) == (10.0, 300.0, 120.0)
    assert cfg.identity.anonymous_tier == "standard" and cfg.identity.key_query_param == "key"
    assert cfg.metrics.path == "/metrics" and cfg.metrics.enabled


INVALID = [
    # (snippet after a valid upstream list, expected problem)
    ("server:\n  listen: 8080\n",
     "c.yaml:5:11: server.listen: expected 'host:port' like '127.0.0.1:8080', got the number 8080"),
    ("server:\n  listen: '::1:8080'\n",
     "c.yaml:5:11: server.listen: put an IPv6 address in brackets, like '[::1]:8080', got '::1:8080'"),
    ("server:\n  listen: 'localhost:99999'\n",
     "c.yaml:5:11: server.listen: expected 'host:port' like '127.0.0.1:8080', got 'localhost:99999'"),
    ("server:\n  drain_timeout: 1:30\n",
     "c.yaml:5:18: server.drain_timeout: YAML 1.1 reads the unquoted 1:30 as the base-60 number 90; "
     "write a duration with units, like '1m30s'"),
    ("server:\n  max_body_size: 10 megs\n",
     "c.yaml:5:18: server.max_body_size: expected a size like '10MiB' or '512KB', got '10 megs'"),
    ("servr: {}\n", "c.yaml:4:1: servr: unknown key; did you mean 'server'?"),
    ("identity:\n  allow_anonymous: no\n",
     "c.yaml:5:20: identity.allow_anonymous: write true or false, not no (YAML 1.1 reads no as false)"),
    ("identity:\n  anonymous_tier: trustd\n",
     "c.yaml:5:19: identity.anonymous_tier: expected one of trusted, standard, restricted, got 'trustd'; "
     "did you mean 'trusted'?"),
    ("identity:\n  trusted_proxies: [10.0.0.1/8]\n",
     "c.yaml:5:21: identity.trusted_proxies[0]: expected an IP network like '10.0.0.0/8', got '10.0.0.1/8' "
     "(10.0.0.1/8 has host bits set)"),
    ("logging:\n  level: verbose\n",
     "c.yaml:5:10: logging.level: expected one of debug, info, warning, error, got 'verbose'"),
    ("metrics:\n  path: metrics\n",
     "c.yaml:5:9: metrics.path: expected a path starting with '/', got 'metrics'"),
    ("accounts_file: nope.yaml\n", "c.yaml:4:16: accounts_file: file not found: {dir}/nope.yaml"),
]


@pytest.mark.parametrize(("snippet", "expected"), INVALID)
def test_invalid_snippets(tmp_path: Path, snippet: str, expected: str) -> None:
    assert problems_of(tmp_path, UPSTREAM + snippet) == [expected.format(dir=tmp_path)]


UPSTREAM_INVALID = [
    ("    url: ftp://x\n",
     "c.yaml:3:10: upstreams[0].url: expected an http or https URL like 'https://api.example.com', got 'ftp://x'"),
    ("    url: https://x\n    prefix: v1\n",
     "c.yaml:4:13: upstreams[0].prefix: expected a path starting with '/', got 'v1'"),
    ("    url: https://x\n    dialect: openai\n",
     "c.yaml:4:14: upstreams[0].dialect: expected one of openai_chat, openai_responses, anthropic_messages, "
     "gemini, got 'openai'; did you mean 'openai_chat'?"),
    ("    url: https://x\n    auth: off\n",
     "c.yaml:4:11: upstreams[0].auth: expected one of bearer, x-api-key, x-goog-api-key, none, "
     'got the boolean false (YAML 1.1 reads the unquoted off as the boolean false; quote it: "off")'),
    ("    url: https://x\n    timeouts: {connect: 10}\n",
     "c.yaml:4:25: upstreams[0].timeouts.connect: expected a duration like '30s', got the number 10 "
     "(add a unit: ms, s, m, h, d)"),
    ("    url: https://x\n    timeouts: {frist_byte: 1s}\n",
     "c.yaml:4:16: upstreams[0].timeouts.frist_byte: unknown key; did you mean 'first_byte'?"),
    ("    url: https://x\n    api_key: a\n    api_key_env: B\n",
     "c.yaml:4:14: upstreams[0].api_key: set api_key or api_key_env, not both"),
    ("    url: https://x\n    api_key_env: DG_MISSING\n",
     "c.yaml:4:18: upstreams[0].api_key_env: environment variable DG_MISSING is not set "
     "(set it, or add api_key_optional: true)"),
    ("    url: https://x\n    headers: {'bad header': x}\n",
     "c.yaml:4:15: upstreams[0].headers.bad header: not a valid HTTP header name"),
    ("    url: https://x\n    max_connections: 0\n",
     "c.yaml:4:22: upstreams[0].max_connections: must be at least 1, got 0"),
    ("    ulr: https://x\n",
     "c.yaml:2:5: upstreams[0].url: is required"),
]


@pytest.mark.parametrize(("body", "expected"), UPSTREAM_INVALID)
def test_invalid_upstreams(tmp_path: Path, body: str, expected: str) -> None:
    lines = problems_of(tmp_path, "upstreams:\n  - name: u\n" + body)
    assert expected in lines
    if "ulr" not in body:
        assert lines == [expected]


def test_all_errors_collected_at_once(tmp_path: Path) -> None:
    text = (
        "server:\n"
        "  listen: 0.0.0.0:80\n"
        "  drain_timeout: 30\n"
        "upstreams:\n"
        "  - name: a\n"
        "    url: https://a\n"
        "  - name: a\n"
        "    url: https://b\n"
        "    prefix: /b\n"
        "  - name: c\n"
        "    url: https://c\n"
        "    prefix: /\n"
        "identity: {allow_anonymous: yes}\n"
        "server: {}\n"
    )
    assert problems_of(tmp_path, text) == [
        "c.yaml:3:18: server.drain_timeout: expected a duration like '30s', got the number 30 "
        "(add a unit: ms, s, m, h, d)",
        "c.yaml:7:11: upstreams[1].name: duplicate upstream name (first defined at line 5)",
        "c.yaml:12:13: upstreams[2].prefix: prefix / is already routed to upstream 'a'",
        "c.yaml:13:29: identity.allow_anonymous: write true or false, not yes (YAML 1.1 reads yes as true)",
        "c.yaml:14:1: server: duplicate key (first defined at line 1)",
    ]


def test_problems_as_json(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load_text(tmp_path, UPSTREAM + "metric: {}\n")
    assert e.value.problems.as_json() == [{
        "file": str(tmp_path / "c.yaml"), "line": 4, "col": 1, "field": "metric",
        "message": "unknown key; did you mean 'metrics'?",
    }]


def test_upstreams_required_for_files(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "server: {}\n") == ["c.yaml:1:1: upstreams: is required"]
    assert problems_of(tmp_path, "upstreams: []\n") == [
        "c.yaml:1:12: upstreams: at least one upstream is required"
    ]


def test_syntax_error(tmp_path: Path) -> None:
    (line,) = problems_of(tmp_path, "server: [\n")
    assert line.startswith("c.yaml:2:1: invalid YAML:")


def test_env_credential(tmp_path: Path) -> None:
    text = "upstreams:\n  - {name: a, url: 'https://a', api_key_env: A_KEY}\n"
    assert load_text(tmp_path, text, {"A_KEY": "secret"}).upstreams[0].api_key == "secret"
    optional = text.replace("A_KEY}", "A_KEY, api_key_optional: true}")
    assert load_text(tmp_path, optional, {}).upstreams[0].api_key is None
    literal = "upstreams:\n  - {name: a, url: 'https://a', api_key: lit}\n"
    up = load_text(tmp_path, literal).upstreams[0]
    assert up.api_key == "lit" and "lit" not in repr(up)


def test_longest_prefix_routing(tmp_path: Path) -> None:
    cfg = load_text(tmp_path, (
        "upstreams:\n"
        "  - {name: root, url: 'https://root/v1'}\n"
        "  - {name: ant, url: 'https://ant', prefix: /anthropic/, strip_prefix: true}\n"
        "  - {name: antb, url: 'https://antb', prefix: /anthropic/beta}\n"
    ))
    route = cfg.route

    def where(path: str) -> tuple[str, str] | None:
        r = route(path)
        return (r[0].name, r[1]) if r else None

    assert where("/chat/completions") == ("root", "/chat/completions")
    assert where("/anthropic/v1/messages") == ("ant", "/v1/messages")
    assert where("/anthropic") == ("ant", "/")
    assert where("/anthropicx/v1") == ("root", "/anthropicx/v1")
    assert where("/anthropic/beta/x") == ("antb", "/anthropic/beta/x")
    assert cfg.upstream("root").target("/chat/completions", "a=1") == "https://root/v1/chat/completions?a=1"
    only = config_from_dict({"upstreams": [{"name": "a", "url": "https://a", "prefix": "/a"}]})
    assert only.route("/b") is None


def test_auth_by_dialect() -> None:
    cfg = config_from_flags(upstream="https://x")
    up = cfg.upstreams[0]
    assert up.auth_scheme("anthropic_messages") == "x-api-key"
    assert up.auth_scheme("gemini") == "x-goog-api-key"
    assert up.auth_scheme(None) == "bearer"
    assert config_mod.DIALECT_NAMES == tuple(DIALECTS)


def test_default_and_anonymous_flag() -> None:
    cfg = Config.default().with_overrides(allow_anonymous=True, upstream="http://127.0.0.1:9")
    assert cfg.identity.allow_anonymous and cfg.upstreams[0].url == "http://127.0.0.1:9"
    assert Config.default().upstreams == () and not Config.default().identity.allow_anonymous


def test_config_from_flags_alone() -> None:
    cfg = config_from_flags(listen="[::1]:9000", upstream="https://api.openai.com/v1/", accounts="acc.yaml")
    assert (cfg.server.listen_host, cfg.server.listen_port, cfg.server.listen) == ("::1", 9000, "[::1]:9000")
    (up,) = cfg.upstreams
    assert (up.name, up.url, up.prefix) == ("default", "https://api.openai.com/v1", "/")
    assert cfg.accounts_file == Path("acc.yaml")
    assert cfg.route("/chat/completions") == (up, "/chat/completions")
    with pytest.raises(ConfigError) as e:
        cfg.with_overrides(listen="nope", upstream="file:///x")
    assert e.value.problems.lines() == [
        "<flags>: --listen: expected 'host:port' like '127.0.0.1:8080', got 'nope'",
        "<flags>: --upstream: expected an http or https URL like 'https://api.example.com', got 'file:///x'",
    ]


def test_config_from_dict_reports_without_lines() -> None:
    with pytest.raises(ConfigError) as e:
        config_from_dict({"server": {"listen": "x"}, "identity": {"trusted_proxies": ["10.0.0.0/8", "x"]}})
    assert e.value.problems.lines() == [
        "<flags>: server.listen: expected 'host:port' like '127.0.0.1:8080', got 'x'",
        "<flags>: identity.trusted_proxies[1]: expected an IP network like '10.0.0.0/8', got 'x' "
        "('x' does not appear to be an IPv4 or IPv6 network)",
    ]
    cfg = config_from_dict({"identity": {"trusted_proxies": ["10.0.0.0/8"], "key_query_param": None}})
    assert cfg.identity.trusted_proxies == (ipaddress.ip_network("10.0.0.0/8"),)
    assert cfg.identity.key_query_param is None


def test_accounts_file_relative_to_config(tmp_path: Path) -> None:
    (tmp_path / "acc.yaml").write_text("accounts: []\n")
    cfg = load_text(tmp_path, UPSTREAM + "accounts_file: acc.yaml\n")
    assert cfg.accounts_file == tmp_path / "acc.yaml"


def test_access_log_off(tmp_path: Path) -> None:
    assert load_text(tmp_path, UPSTREAM + "logging: {access_log: off}\n").logging.access_log is None
    cfg = load_text(tmp_path, UPSTREAM + "logging: {access_log: logs/access.log}\n")
    assert cfg.logging.access_log == str(tmp_path / "logs/access.log")


@pytest.fixture
def limits_section() -> Any:
    def parse(value: Any, at: At, problems: Problems) -> dict[str, Any]:
        f = Fields.of(value, at, problems)
        out = {"rpm": f.integer("rpm", 60, min=1)}
        f.done()
        return out

    register_section("limits_test", parse)
    yield
    del SECTIONS["limits_test"]


def test_registered_section(tmp_path: Path, limits_section: Any) -> None:
    assert load_text(tmp_path, UPSTREAM).sections["limits_test"] == {"rpm": 60}
    assert load_text(tmp_path, UPSTREAM + "limits_test: {rpm: 5}\n").sections["limits_test"] == {"rpm": 5}
    assert problems_of(tmp_path, UPSTREAM + "limits_test: {rpn: 5}\n") == [
        "c.yaml:4:15: limits_test.rpn: unknown key; did you mean 'rpm'?"
    ]
    with pytest.raises(ValueError):
        register_section("server", lambda v, at, p: None)


def test_unregistered_section_is_unknown(tmp_path: Path) -> None:
    assert problems_of(tmp_path, UPSTREAM + "no_such_section: {}\n") == [
        "c.yaml:4:1: no_such_section: unknown key"
    ]
