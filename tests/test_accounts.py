from __future__ import annotations

import asyncio
import hmac
import logging
import os
from pathlib import Path

import pytest

from proxy import accounts as accounts_mod
from proxy.accounts import Account, AccountsError, AccountStore, AccountsWatcher, load_accounts
from proxy.config import ConfigError
from proxy.keys import KEY_PREFIX, digest, format_new_key, new_key

KEY_A = "dg-" + "a" * 40
KEY_B = "dg-" + "b" * 40


def accounts_yaml(*entries: tuple[str, str, list[str]]) -> str:
    lines = ["accounts:"]
    for acc_id, tier, keys in entries:
        lines += [f"  - id: {acc_id}", f"    tier: {tier}", "    keys:"]
        lines += [f'      - "{digest(k)}"' for k in keys] or ["      []"]
    return "\n".join(lines) + "\n"


def errors(text: str) -> list[str]:
    with pytest.raises(AccountsError) as e:
        AccountStore.from_yaml(text, "acc.yaml")
    return e.value.problems.lines()


def test_lookup_by_key_and_id() -> None:
    store = AccountStore.from_yaml(
        "accounts:\n"
        f"  - {{id: acme, tier: trusted, org: acme-inc, keys: ['{digest(KEY_A)}'], labels: {{team: r}}}}\n"
        f"  - {{id: bob, keys: ['{digest(KEY_B)}']}}\n"
    )
    acme = store.by_key(KEY_A)
    assert acme is not None
    assert (acme.id, acme.tier, acme.org, acme.labels) == ("acme", "trusted", "acme-inc", {"team": "r"})
    assert store.by_key(KEY_B) == store.by_id("bob")
    assert store.by_id("bob").tier == "standard"  # type: ignore[union-attr]
    assert store.by_key("dg-unknown") is None
    assert store.by_key("") is None
    assert store.by_id("nobody") is None
    assert store.lookup(KEY_A) is acme
    assert len(store) == 2 and [a.id for a in store] == ["acme", "bob"]


def test_lookup_confirms_with_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(accounts_mod.hmac, "compare_digest", spy)
    store = AccountStore([Account("a", keys=(digest(KEY_A),))])
    assert store.by_key(KEY_A) is not None
    assert calls == [(digest(KEY_A).encode(), digest(KEY_A).encode())]
    calls.clear()
    assert store.by_key(KEY_B) is None
    assert len(calls) == 1  # a miss does the same comparison work


def test_key_never_appears_in_errors() -> None:
    text = f"accounts:\n  - id: a\n    keys: ['{KEY_A}', 'sha256:XYZ']\n"
    lines = errors(text)
    assert lines == [
        "acc.yaml:3:12: account 'a': keys[0]: this looks like a key, not its digest: store only "
        "'sha256:<hex>' (`distillguard keys new` prints it); treat that key as leaked",
        "acc.yaml:3:59: account 'a': keys[1]: expected 'sha256:' followed by 64 lowercase hex digits",
    ]
    assert KEY_A not in "\n".join(lines)


INVALID = [
    ("accounts:\n  - id: a\n    tier: trustd\n",
     "acc.yaml:3:11: account 'a': tier: expected one of trusted, standard, restricted, got 'trustd'; "
     "did you mean 'trusted'?"),
    ("accounts:\n  - id: a\n    tier: yes\n",
     "acc.yaml:3:11: account 'a': tier: expected one of trusted, standard, restricted, got the boolean true "
     '(YAML 1.1 reads the unquoted yes as the boolean true; quote it: "yes")'),
    ("accounts:\n  - id: a\n    key: []\n",
     "acc.yaml:3:5: account 'a': key: unknown key; did you mean 'keys'?"),
    ("accounts:\n  - tier: trusted\n", ["acc.yaml:2:5: accounts[0].id: is required"]),
    ("accounts:\n  - id: 'a b'\n",
     "acc.yaml:2:9: accounts[0].id: expected an id of letters, digits, '.', '_' or '-' (at most 64), "
     "got 'a b'"),
    ("acounts: []\n", ["acc.yaml:1:1: accounts: is required",
                        "acc.yaml:1:1: acounts: unknown key; did you mean 'accounts'?"]),
    ("accounts:\n  - id: a\n  - id: a\n",
     "acc.yaml:3:9: account 'a': id: duplicate account id (first defined at line 2)"),
    ("accounts:\n  - id: a\n    id: b\n",
     "acc.yaml:3:5: accounts[0].id: duplicate key (first defined at line 2)"),
]


@pytest.mark.parametrize(("text", "expected"), INVALID)
def test_invalid_accounts(text: str, expected: str | list[str]) -> None:
    assert errors(text) == (expected if isinstance(expected, list) else [expected])


def test_duplicate_digest_across_accounts() -> None:
    text = accounts_yaml(("a", "standard", [KEY_A]), ("b", "trusted", [KEY_B, KEY_A]))
    assert errors(text) == ["acc.yaml:10:9: account 'b': keys[1]: key digest already used by account 'a'"]


def test_empty_file_is_an_error() -> None:
    assert errors("") == ["acc.yaml:1:1: accounts: is required"]
    assert len(AccountStore.from_yaml("accounts: []\n")) == 0


def test_keys() -> None:
    k = new_key()
    assert k.startswith(KEY_PREFIX) and len(k) == len(KEY_PREFIX) + 40
    assert new_key() != k
    assert digest("abc") == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    key, text = format_new_key("acme-research")
    assert key in text and f'- "{digest(key)}"' in text and "acme-research" in text
    store = AccountStore.from_yaml(f"accounts:\n  - id: acme-research\n    keys:\n{text.splitlines()[-1]}\n")
    assert store.by_key(key).id == "acme-research"  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        format_new_key("bad id")


# --------------------------------------------------------------------------- hot reload


def write(path: Path, text: str) -> None:
    """Replace the file and bump its mtime so the change is seen even within one clock tick."""
    path.write_text(text)
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_watcher_swaps_and_keeps_last_good(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "accounts.yaml"
    write(path, accounts_yaml(("a", "standard", [KEY_A])))
    w = AccountsWatcher(path, interval=0.01)
    first = w.store
    assert w.check() is False and w.store is first  # unchanged file: nothing to do

    write(path, accounts_yaml(("a", "standard", [KEY_A]), ("b", "trusted", [KEY_B])))
    assert w.check() is True
    assert w.store.by_key(KEY_B).id == "b"  # type: ignore[union-attr]
    assert (w.reloads_ok, w.reloads_failed) == (1, 0)

    good = w.store
    with caplog.at_level(logging.ERROR, logger="distillguard.accounts"):
        write(path, "accounts:\n  - id: a\n    tier: bogus\n")
        assert w.check() is False
    assert w.store is good and w.store.by_key(KEY_B) is not None
    assert (w.reloads_ok, w.reloads_failed) == (1, 1)
    assert w.last_problems == [
        f"{path}:3:11: account 'a': tier: expected one of trusted, standard, restricted, got 'bogus'"
    ]
    assert "accounts reload failed" in caplog.text and KEY_A not in caplog.text

    path.unlink()
    assert w.check() is False and w.store is good
    assert w.reloads_failed == 2

    write(path, accounts_yaml(("c", "restricted", [KEY_A])))
    assert w.reload() is True  # SIGHUP path: reload regardless of mtime
    assert w.store.by_key(KEY_A).id == "c"  # type: ignore[union-attr]
    assert w.store.by_key(KEY_B) is None
    assert w.last_problems == []


async def test_watcher_task_polls(tmp_path: Path) -> None:
    path = tmp_path / "accounts.yaml"
    write(path, accounts_yaml(("a", "standard", [KEY_A])))
    w = AccountsWatcher(path, interval=0.01)
    task = await w.start()
    assert await w.start() is task
    write(path, accounts_yaml(("b", "standard", [KEY_A])))
    for _ in range(200):
        if w.reloads_ok:
            break
        await asyncio.sleep(0.01)
    await w.stop()
    assert task.done()
    assert w.store.by_key(KEY_A).id == "b"  # type: ignore[union-attr]
    assert await w.reload_async() is True


def test_watcher_initial_load_errors(tmp_path: Path) -> None:
    path = tmp_path / "accounts.yaml"
    path.write_text("accounts: [1]\n")
    with pytest.raises(AccountsError):
        AccountsWatcher(path)
    with pytest.raises(ConfigError) as e:  # one except covers config and accounts files
        load_accounts(path)
    assert [p.format() for p in e.value.problems] == [
        f"{path}:1:12: accounts[0]: expected a mapping, got the number 1"
    ]
