"""The template skeleton and its fingerprints against their plain definitions, on random text."""

from __future__ import annotations

import hashlib
import random

from proxy.exchange import Message, RequestView
from proxy.policy import signals as S


def plain_skeleton(view: RequestView, last_user: str) -> bytes:
    """The definition: fold case, URLs and addresses to <u>, digit runs to 0, whitespace runs to one space."""
    head, tail = S._cut_head(last_user), ""
    if len(last_user) > S.TEMPLATE_HEAD:
        tail = last_user[-S.TEMPLATE_TAIL :]
        tail = tail[tail.find(" ") + 1 :]
    text = "\x00".join((S._cut_head(view.system), head, tail)).lower()
    if "://" in text or "@" in text:
        text = " ".join(["<u>" if ("://" in w or "@" in w) else w for w in text.split()])
    b = text.encode("utf-8", "replace").translate(S._SKELETON_TABLE)
    while b.find(b"00") >= 0:
        b = b.replace(b"00", b"0")
    return b" ".join(b.split())


def test_skeleton_matches_its_definition_on_random_text() -> None:
    rnd = random.Random(11)
    odd = [*"aBZ c\t\n\r\x0b\x0c 0123 99 HTTPS://X.y @ éÉ漢İ\u2028\x1c\x1f\x85\xa0  ", "\ud800"]
    ascii_ = [chr(i) for i in range(128)]
    for _ in range(3000):
        pool = odd if rnd.random() < 0.5 else ascii_
        user = "".join(rnd.choice(pool) for _ in range(rnd.choice([0, 1, 5, 50, 300, 700])))
        system = "".join(rnd.choice(pool) for _ in range(rnd.choice([0, 3, 40, 300])))
        view = RequestView(model="m", system=system, messages=[Message("user", user)])
        assert S.template_skeleton(view, user) == plain_skeleton(view, user)


def test_fingerprints_are_the_template_and_prefix_hashes() -> None:
    rnd = random.Random(12)
    for _ in range(3000):
        parts = [bytes(rnd.choice(b"ab \x000") for _ in range(rnd.choice([0, 1, 10, 64, 65, 300]))) for _ in range(3)]
        sk = b"\x00".join(parts[: rnd.choice([1, 2, 3])])
        if not sk:
            continue
        template, prefix = S.fingerprints(sk)
        assert template == hashlib.blake2b(sk, digest_size=8).hexdigest() == S.template_hash(sk)
        assert prefix == S.prefix_hash(sk)
    view = RequestView(model="m", system="Be brief.", messages=[Message("user", "Summarise ticket 4411 for me")])
    a = S.compute_features(view, S.RequestMeta(account_id="a"), 0.0)
    b = S.compute_features(view, S.RequestMeta(account_id="b"), 0.0)
    assert a["signals.template"] is b["signals.template"]  # one string for every account sending it
