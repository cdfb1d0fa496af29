"""The ``state:`` config section: defaults, every key, and strict errors with file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

import proxy.sections  # noqa: F401  (registers every section)
from proxy.config import ConfigError, load_config
from proxy.state import MemoryBackend
from proxy.state.config import StateSpec, backend_from_config, shape_state, state_spec
from proxy.state.faults import FaultTolerantBackend

BASE = "upstreams:\n  - name: up\n    url: http://127.0.0.1:9\n"


def _load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    p = tmp_path / "c.yaml"
    p.write_text(BASE + text)
    return load_config(p)


def test_defaults_are_memory(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "")
    assert state_spec(cfg) == StateSpec()
    assert isinstance(backend_from_config(cfg), MemoryBackend)
    assert shape_state(cfg)["fail_open"] is True


async def test_every_key(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "state:\n  url: redis://:pw@127.0.0.1:6390/2\n  namespace: eu-1\n"
                          "  on_failure: closed\n  timeout: 50ms\n  clock: server\n  connections: 2\n"
                          "  breaker: {failures: 5, open_for: 2s}\n")
    spec = state_spec(cfg)
    assert spec == StateSpec("redis://:pw@127.0.0.1:6390/2", "eu-1", "closed", 0.05, "server", 2, 5, 2.0)
    opts = shape_state(cfg)
    b = opts["backend"]
    assert isinstance(b, FaultTolerantBackend) and opts["fail_open"] is False
    assert b.timeout == 0.05 and b.breaker.threshold == 5 and b.breaker.open_for == 2.0
    assert "pw" not in b.describe
    await b.close()


@pytest.mark.parametrize(("text", "message"), [
    ("state:\n  url: redis+cluster://h:7000\n", "c.yaml:5:8: state.url: Redis Cluster is not supported yet"),
    ("state:\n  url: redis+sentinel://h:26379/m\n", "state.url: Redis Sentinel is not supported yet"),
    ("state:\n  url: mongodb://h\n", "c.yaml:5:8: state.url: expected a memory://, redis://"),
    ("state:\n  on_failure: maybe\n", "state.on_failure"),
    ("state:\n  timeout: 5\n", "state.timeout: expected a duration like '30s'"),
    ("state:\n  namespace: 'a{b}'\n", "state.namespace: expected a name"),
    ("state:\n  breaker: {failurs: 3}\n", "state.breaker.failurs: unknown key; did you mean 'failures'?"),
    ("state:\n  urll: redis://h\n", "state.urll: unknown key; did you mean 'url'?"),
])
def test_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        _load(tmp_path, text)
    out = "\n".join(p.format() for p in e.value.problems)
    assert message in out, out
