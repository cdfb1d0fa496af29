from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from proxy.accounts import Account
from proxy.dialects import DIALECTS
from proxy.exchange import Exchange

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "rules" / "example.yaml"


def make_exchange(
    prompt: str,
    *,
    account: str = "a1",
    tier: str = "free",
    model: str = "o3",
    ip: str = "198.51.100.7",
    **body: object,
) -> Exchange:
    payload = {"model": model, "messages": [{"role": "user", "content": prompt}], **body}
    ex = Exchange(
        path="/v1/chat/completions",
        body=orjson.dumps(payload),
        dialect=DIALECTS["openai_chat"],
        client_ip=ip,
        headers={"User-Agent": "OpenAI/Python 1.50.0"},
    )
    ex.account = Account(id=account, tier=tier, org="org-" + account)
    ex.key_id = "k-" + account
    return ex


@pytest.fixture
def example_rules() -> Path:
    return EXAMPLE


@pytest.fixture
def new_exchange():
    return make_exchange
