"""Accounts: who a presented API key belongs to, loaded strictly from YAML and hot-reloaded.

The accounts file holds only sha256 digests of keys (``distillguard keys new`` prints one). A lookup
hashes the presented key, finds the digest and confirms it with ``hmac.compare_digest``. Keys are never
logged and never echoed in error messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from proxy.config import DEFAULT_TIER, TIERS, ConfigError
from proxy.yamlspec import (
    At,
    Fields,
    Invalid,
    Mark,
    Problems,
    ProblemsError,
    YList,
    load_yaml_file,
    parse_yaml,
)

log = logging.getLogger("distillguard.accounts")

ACCOUNT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


class AccountsError(ConfigError):
    """The accounts file is invalid; ``problems`` lists every error (a ``ConfigError``, so one
    ``except`` covers both files)."""

    def __init__(self, problems: Problems) -> None:
        ProblemsError.__init__(self, problems, "invalid accounts file")


@dataclass(frozen=True, slots=True)
class Account:
    """One client account. ``keys`` are ``sha256:<hex>`` digests, never the keys themselves."""

    id: str
    tier: str = DEFAULT_TIER
    org: str | None = None
    keys: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False, compare=False)


def key_digest(key: str) -> str:
    """``sha256:<64 hex>`` of a presented key (UTF-8)."""
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def to_key_digest(v: Any, raw: str | None = None) -> str:
    """Converter for a stored key digest. Never echoes the value: it might be a pasted key."""
    if isinstance(v, str) and _DIGEST.fullmatch(v):
        return v
    if isinstance(v, str) and v.startswith("dg-"):
        raise Invalid("this looks like a key, not its digest: store only 'sha256:<hex>' "
                      "(`distillguard keys new` prints it); treat that key as leaked")
    raise Invalid("expected 'sha256:' followed by 64 lowercase hex digits")


class AccountStore:
    """An immutable set of accounts indexed by id and by key digest. Swap whole stores, never edit one."""

    __slots__ = ("_by_digest", "_by_id", "source")

    def __init__(self, accounts: Iterable[Account] = (), source: str = "<memory>") -> None:
        self.source = source
        self._by_id: dict[str, Account] = {}
        self._by_digest: dict[str, tuple[bytes, Account]] = {}
        for a in accounts:
            if a.id in self._by_id:
                raise ValueError(f"duplicate account id {a.id!r}")
            self._by_id[a.id] = a
            for d in a.keys:
                if d in self._by_digest:
                    raise ValueError(f"key digest used by two accounts: {a.id!r}")
                self._by_digest[d] = (d.encode(), a)

    # -- loading --------------------------------------------------------------------------------

    @classmethod
    def from_file(cls, path: str | Path) -> AccountStore:
        problems = Problems()
        data = load_yaml_file(path, problems)
        return cls._build(data, str(path), problems)

    @classmethod
    def from_yaml(cls, text: str | bytes, source: str = "<accounts>") -> AccountStore:
        problems = Problems()
        return cls._build(parse_yaml(text, source, problems), source, problems)

    @classmethod
    def _build(cls, data: Any, source: str, problems: Problems) -> AccountStore:
        if data is None and problems:
            raise AccountsError(problems)
        accounts = parse_accounts(data, At(Mark(source, 1, 1)), problems)
        if problems:
            raise AccountsError(problems)
        return cls(accounts, source)

    # -- lookups --------------------------------------------------------------------------------

    def by_key(self, presented_key: str) -> Account | None:
        """The account owning ``presented_key``, or ``None``. The key is hashed first, so the index
        lookup only ever sees a digest, and the match is confirmed in constant time."""
        d = key_digest(presented_key)
        hit = self._by_digest.get(d)
        if hit is None:
            hmac.compare_digest(d.encode(), d.encode())  # same work on a miss as on a hit
            return None
        stored, account = hit
        return account if hmac.compare_digest(stored, d.encode()) else None

    lookup = by_key

    def by_digest(self, d: str) -> Account | None:
        """The account owning a key whose ``key_digest`` the caller already computed."""
        hit = self._by_digest.get(d)
        if hit is None:
            return None
        stored, account = hit
        return account if hmac.compare_digest(stored, d.encode()) else None

    def by_id(self, account_id: str) -> Account | None:
        return self._by_id.get(account_id)

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Account]:
        return iter(self._by_id.values())


def load_accounts(path: str | Path) -> AccountStore:
    """Load an accounts file; raises ``AccountsError`` (a ``ConfigError``) listing every problem."""
    return AccountStore.from_file(path)


def parse_accounts(data: Any, at: At, problems: Problems) -> list[Account]:
    """Read ``{accounts: [...]}``; duplicate ids and key digests across accounts are problems."""
    top = Fields.of(data, at, problems)
    accounts: list[Account] = []
    ids: dict[str, int] = {}
    digests: dict[str, str] = {}
    for f in top.maps("accounts", required=True):
        acc_id = f.string("id", required=True, pattern=ACCOUNT_ID,
                          what="an id of letters, digits, '.', '_' or '-' (at most 64)")
        if acc_id is not None:
            f = f.with_context(f"account '{acc_id}'")
        tier = f.enum("tier", TIERS, DEFAULT_TIER)
        org = f.string("org")
        keys = f.list_of("keys", to_key_digest)
        labels = f.str_map("labels")
        f.done()
        if acc_id is None:
            continue
        if acc_id in ids:
            f.report("id", f"duplicate account id (first defined at line {ids[acc_id]})")
            continue
        ids[acc_id] = f.data.value_mark("id").line
        clean = []
        for i, d in enumerate(keys):
            if d in digests:
                owner = digests[d]
                where = "this account" if owner == acc_id else f"account '{owner}'"
                problems.add(_item_mark(f, "keys", i), f"{f.field('keys')}[{i}]",
                             f"key digest already used by {where}", context=f.at.context)
                continue
            digests[d] = acc_id
            clean.append(d)
        accounts.append(Account(acc_id, tier, org, tuple(clean), MappingProxyType(labels)))
    top.done()
    return accounts


def _item_mark(f: Fields, key: str, i: int) -> Mark:
    seq = f.data.get(key)
    return seq.item_mark(i) if isinstance(seq, YList) else f.data.value_mark(key)


# --------------------------------------------------------------------------- hot reload


class AccountsWatcher:
    """Keeps ``store`` in step with the accounts file.

    ``check()`` reloads when the file's mtime, size or inode changed; ``run()`` calls it every
    ``interval`` seconds (started with ``start()``); the app calls ``reload()`` on SIGHUP. A reload
    builds a whole new store and swaps it in one assignment; on error the last good store stays and
    the problems are logged. ``reloads_ok``/``reloads_failed`` are plain counters for metrics.
    """

    def __init__(self, path: str | Path, store: AccountStore | None = None, *, interval: float = 5.0) -> None:
        self.path = Path(path)
        self.interval = interval
        self.reloads_ok = 0
        self.reloads_failed = 0
        self.last_problems: list[str] = []
        self._task: asyncio.Task[None] | None = None
        self._signature = self._stat()
        self.store = store if store is not None else AccountStore.from_file(self.path)

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def check(self) -> bool:
        """Reload if the file changed since the last look. True when a new store was swapped in."""
        sig = self._stat()
        if sig == self._signature:
            return False
        self._signature = sig
        return self.reload()

    def reload(self) -> bool:
        """Load the file now; swap on success, keep the last good store on error."""
        self._signature = self._stat()
        try:
            store = AccountStore.from_file(self.path)
        except AccountsError as e:
            self.reloads_failed += 1
            self.last_problems = e.problems.lines()
            log.error("accounts reload failed, keeping the previous %d accounts:\n%s",
                      len(self.store), "\n".join(self.last_problems))
            return False
        self.store = store
        self.reloads_ok += 1
        self.last_problems = []
        log.info("accounts reloaded: %d accounts from %s", len(store), self.path)
        return True

    async def reload_async(self) -> bool:
        """``reload()`` off the event loop (for the SIGHUP handler)."""
        return await asyncio.to_thread(self.reload)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await asyncio.to_thread(self.check)
            except Exception:  # the watcher must outlive any surprise; the last good store stays
                log.exception("accounts watcher check failed")

    async def start(self) -> asyncio.Task[None]:
        """Start polling in a background task (a reference is kept); a no-op if already running."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self.run(), name="accounts-watcher")
        return self._task

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
