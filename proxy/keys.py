"""API keys for distillguard accounts: generate one, and the digest line to paste into accounts.yaml.

Only the digest is stored; the key is shown once, to the operator, by ``distillguard keys new``.
"""

from __future__ import annotations

import secrets

from proxy.accounts import ACCOUNT_ID, key_digest

KEY_PREFIX = "dg-"
KEY_CHARS = 40  # url-safe base64 characters: 240 random bits


def new_key() -> str:
    """A fresh key: ``dg-`` followed by 40 url-safe random characters."""
    return KEY_PREFIX + secrets.token_urlsafe(KEY_CHARS * 3 // 4)


def digest(key: str) -> str:
    """``sha256:<64 hex>``, the form stored in the accounts file."""
    return key_digest(key)


def format_new_key(account_id: str) -> tuple[str, str]:
    """A new key for ``account_id`` and the text to print: the key (shown once) and the line to paste."""
    if not ACCOUNT_ID.fullmatch(account_id):
        raise ValueError(f"invalid account id {account_id!r}: letters, digits, '.', '_' or '-' (at most 64)")
    key = new_key()
    text = (
        f"New key for account '{account_id}' (shown once; give it to the client, it is not stored):\n"
        f"  {key}\n"
        f"Add its digest to that account's keys in the accounts file:\n"
        f'      - "{digest(key)}"\n'
    )
    return key, text
