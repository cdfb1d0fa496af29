"""Per-request features, computed once and cheaply, that rule conditions read.

``SCHEMA`` declares every feature a condition may name, with its CEL type; ``compute_features`` fills a
flat dict with all of them (conditions never see Python objects, only this dict). The costly parts are
linear RE2 passes over the prompt (CoT phrase families and rule matchers) and one hash over a masked,
bounded template skeleton (its near-duplicate clustering runs after the request: ``clusters.py``);
nothing here grows with history. Per-account timing (inter-arrival
regularity, active hours) comes from window aggregates (``interarrival``, ``distinct`` of
``signals.hour``), not from here.
"""

from __future__ import annotations

import hashlib
import ipaddress
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from proxy.exchange import Message, RequestView
from proxy.policy import celcode
from proxy.policy import cot as cot_detector
from proxy.policy.cel import BOOL, DOUBLE, INT, LIST_STRING, STRING
from proxy.policy.clusters import TemplateClusters
from proxy.policy.matchers import CompiledMatchers
from proxy.policy.signal_patterns import (  # noqa: F401  (tables re-exported from here)
    _COT,
    _DATASET_OWN,
    _NOUN,
    _SCRIPTS,
    _SKELETON_TABLE,
    _SKELETON_TABLE_ASCII,
    _STOPWORDS,
    _TAGS_OWN,
    _UPPER,
    BUILTIN_GROUPS,
    COT_FAMILIES,
    DATASET_OWN,
    GRADER_PATTERNS,
    LAST_USER_KEY,
    PREFIX_CHARS,
    SKELETON_KEY,
    TAGS_OWN_ARTEFACT,
    TEMPLATE_HEAD,
    TEMPLATE_TAIL,
)

_TRACE_GROUP = cot_detector.TRACE_GROUP
_ODD_GROUP = cot_detector.ODD_GROUP
_COT_NAMES = frozenset(_COT.names)

SCHEMA: dict[str, str] = {
    "request.model": STRING,
    "request.stream": BOOL,
    "request.max_tokens": INT,
    "request.n": INT,
    "request.logprobs": BOOL,
    "request.top_logprobs": INT,
    "request.logit_bias": BOOL,
    "request.reasoning": BOOL,
    "request.reasoning_budget": INT,
    "request.reasoning_effort": STRING,
    "request.reasoning_display": STRING,
    "request.tools": INT,
    "request.messages": INT,
    "request.assistant_turns": INT,
    "request.assistant_reasoning": BOOL,
    "request.prompt_chars": INT,
    "request.path": STRING,
    "account.id": STRING,
    "account.tier": STRING,
    "account.org": STRING,
    "account.key": STRING,
    "client.ip": STRING,
    "client.ip_prefix": STRING,
    "client.user_agent": STRING,
    "client.ua_family": STRING,
    "signals.cot_score": INT,
    "signals.cot_families": LIST_STRING,
    "signals.cot_request": BOOL,
    "signals.cot_obfuscated": BOOL,
    "signals.grader": BOOL,
    "signals.template": STRING,
    "signals.template_cluster": STRING,
    "signals.prefix": STRING,
    "signals.prefix_net": STRING,
    "signals.lang": STRING,
    "signals.hour": INT,
    "signals.weekday": INT,
    "response.status": INT,
    "response.input_tokens": INT,
    "response.output_tokens": INT,
    "response.reasoning_tokens": INT,
    "response.error": STRING,
    "global": STRING,
}
RESPONSE_DEFAULTS: dict[str, Any] = {
    "response.status": 0,
    "response.input_tokens": 0,
    "response.output_tokens": 0,
    "response.reasoning_tokens": 0,
    "response.error": "",
}

# Every feature ``compute_features`` sets, in the order it sets them (``global`` and the response defaults are
# constant; ``None`` marks what each request sets): its output starts as a copy of this.
_SET = [k for k in SCHEMA if k not in RESPONSE_DEFAULTS and k not in ("signals.lang", "global")]
_SET.insert(_SET.index("signals.prefix_net") + 1, SKELETON_KEY)
_FEATURES: dict[str, Any] = {**dict.fromkeys(_SET, None), "global": "*", **RESPONSE_DEFAULTS}
del _SET


@dataclass(slots=True)
class RequestMeta:
    """Who sent the request and how (the parts of an Exchange that are not the body)."""

    account_id: str = ""
    tier: str = ""
    org: str = ""
    key_id: str = ""
    ip: str = ""
    user_agent: str = ""
    path: str = ""


def ua_family(ua: str) -> str:
    u = ua.lower()
    if not u:
        return "none"
    for needle, fam in (
        ("openai/python", "openai-sdk"),
        ("openai/js", "openai-sdk"),
        ("openai", "openai-sdk"),
        ("anthropic", "anthropic-sdk"),
        ("google-genai", "genai-sdk"),
        ("curl/", "curl"),
        ("python-requests", "python-http"),
        ("python-httpx", "python-http"),
        ("aiohttp", "python-http"),
        ("go-http-client", "go-http"),
        ("node-fetch", "node-http"),
        ("mozilla/", "browser"),
    ):
        if needle in u:
            return fam
    return "other"


def ip_prefix(ip: str) -> str:
    """/24 for IPv4, /48 for IPv6: the unit campaigns rotate inside."""
    if not ip:
        return ""
    if ":" not in ip:
        head, _, _ = ip.rpartition(".")
        return f"{head}.0/24" if head else ip
    try:
        net = ipaddress.ip_network(f"{ip}/48", strict=False)
    except ValueError:
        return ip
    return str(net)


# Per-process memos of ``ua_family`` and ``ip_prefix``: clients repeat their user agent and address, so
# most requests find the answer here. Bounded: cleared when full.
MEMO_SIZE = 4096
_NO_FAMILIES: frozenset[str] = frozenset()
_BLAKE2B_8 = hashlib.blake2b(digest_size=8)
_intern = sys.intern
_UA_FAMILY: dict[str, str] = {}
_IP_PREFIX: dict[str, str] = {}
# Recent template hashes, interned once: keeping them alive here stops every request from adding (and, when no
# state keeps it, removing) an entry in the interpreter's interned-string table, whose periodic resizes made
# memory per account depend on how many requests a process had served.
_HASHES: dict[str, str] = {}


def _memo(cache: dict[str, str], fn: Callable[[str], str], key: str) -> str:
    val = cache.get(key)
    if val is None:
        if len(cache) >= MEMO_SIZE:
            cache.clear()
        val = cache[key] = fn(key)
    return val


def _cut_head(text: str) -> str:
    if len(text) <= TEMPLATE_HEAD:
        return text
    head = text[:TEMPLATE_HEAD]
    cut = head.rfind(" ")
    return head[:cut] if cut > 0 else head


def template_skeleton(view: RequestView, last_user: str) -> bytes:
    """Masked head and tail of the system prompt and the last user turn.

    Digits runs become 0, URLs and e-mail addresses <u>, whitespace runs one space, case folds: what stays
    is the fixed wording a bulk harvester reuses around its variable payload. A few C passes over at
    most ~600 characters: this runs on every request. (Substring tests run on ``str`` or through
    ``bytes.find``: ``x in some_bytes`` goes through the buffer protocol and costs several times more.)
    Windows end and start at whitespace, so a digit run that changes length moves whole words across a
    window's edge, never a fragment of one; a last turn that fits in the head has no separate tail.
    """
    system = view.system
    if len(system) > TEMPLATE_HEAD:
        system = _cut_head(system)
    if len(last_user) > TEMPLATE_HEAD:  # ``_cut_head`` and the tail, inlined, one copy each: every request
        cut = last_user.rfind(" ", 0, TEMPLATE_HEAD)
        start = len(last_user) - TEMPLATE_TAIL  # the tail, from its first space on
        space = last_user.find(" ", start)
        head, tail = last_user[: cut if cut > 0 else TEMPLATE_HEAD], last_user[space + 1 if space >= 0 else start :]
        text = f"{system}\x00{head}\x00{tail}"
    else:
        text = f"{system}\x00{last_user}\x00"
    if "://" in text or "@" in text:
        text = " ".join(["<u>" if ("://" in w or "@" in w) else w for w in text.lower().split()])
    if text.isascii():  # the common case: case folding is a byte mapping, done in the same translate
        b = text.encode("ascii").translate(_SKELETON_TABLE_ASCII)
    else:
        b = text.lower().encode("utf-8", "replace").translate(_SKELETON_TABLE)
    while b.find(b"00") >= 0:
        b = b.replace(b"00", b"0")
    # ASCII whitespace is all spaces now: collapsing the runs and stripping the ends is what
    # ``b" ".join(b.split())`` does, without a bytes object per word.
    while b.find(b"  ") >= 0:
        b = b.replace(b"  ", b" ")
    return b.strip(b" ")


def template_hash(skeleton: bytes) -> str:
    return hashlib.blake2b(skeleton, digest_size=8).hexdigest()


def prefix_hash(skeleton: bytes) -> str:
    """Fingerprint of the system prompt plus the first ``PREFIX_CHARS`` of the last user turn's skeleton:
    the instruction a harvester puts before a short variable payload (which defeats ``template``)."""
    sep = skeleton.find(b"\x00")
    end = skeleton.find(b"\x00", sep + 1) if sep >= 0 else -1
    cut = skeleton[: min(end, sep + 1 + PREFIX_CHARS)] if end >= 0 else skeleton[: PREFIX_CHARS]
    return hashlib.blake2b(cut, digest_size=8).hexdigest()


def fingerprints(skeleton: bytes) -> tuple[str, str]:
    """``(template_hash(skeleton), prefix_hash(skeleton))`` in one pass: the prefix is the skeleton's start,
    so the template's hash continues the prefix's hash state over the rest. Interned: many accounts send
    one template, and window state keeps one string for all of them."""
    sep = skeleton.find(b"\x00")
    end = skeleton.find(b"\x00", sep + 1) if sep >= 0 else -1
    if end >= 0:
        cut = sep + 1 + PREFIX_CHARS
        if end < cut:
            cut = end
    else:
        cut = PREFIX_CHARS  # (a slice past the end is the whole skeleton)
    h = _BLAKE2B_8.copy()  # (a copy of an empty state: no keyword parsing per request)
    h.update(skeleton[:cut])
    prefix = h.hexdigest()
    h.update(skeleton[cut:])
    return _memo(_HASHES, _intern, h.hexdigest()), _memo(_HASHES, _intern, prefix)


def prefix_net(prefix: str, ip_pfx: str) -> str:
    """``signals.prefix`` scoped to the client's /24 (/48): one instruction prefix sent from one network.
    A cluster key for "many accounts, same template, same address range" (S1 + S10) that a common prompt
    sent by unrelated users on different networks does not share. Both parts are already fingerprints,
    so the key is their concatenation (no second hash on the request path)."""
    return f"{prefix}@{ip_pfx}" if prefix else ""


def guess_language(text: str) -> str:
    """Script first (non-Latin), else the most frequent stop words; 'und' when unsure."""
    sample = text[:200]
    if not sample:
        return ""
    if not sample.isascii():
        scripts = _SCRIPTS.hits(sample)
        for lang in _SCRIPTS.names:
            if scripts[lang]:
                return lang
    words = set(sample.lower().split())
    best, best_n = "und", 1
    for lang, stop in _STOPWORDS:
        n = len(words & stop)
        if n > best_n:
            best, best_n = lang, n
    return best


def compute_features(
    view: RequestView,
    meta: RequestMeta,
    now: float,
    matchers: CompiledMatchers | None = None,
    *,
    lazy: bool = False,
    eager: frozenset[str] = frozenset(),
    clusters: TemplateClusters | None = None,
) -> dict[str, Any]:
    """Every feature in ``SCHEMA`` for one request (response.* at their defaults).

    With ``lazy`` the features in ``LAZY_FEATURES`` (``signals.lang``) are left out and computed when a
    condition first reads them (``celcode`` reads them through ``_lazy``), except those in ``eager``
    (rule keys and action targets, which the engine looks up directly); ``complete_features`` fills the
    rest for the audit record. ``signals.template_cluster`` reads the cluster known now from ``clusters``
    (the template itself without one); the masked skeleton is kept under ``SKELETON_KEY`` so the judge can
    cluster the template after the request.
    """
    msgs = view.messages
    system = view.system
    # One pass over the turns (the usual request has a system turn and one user turn).
    users: list[str] = []
    n_assistant = 0
    assistant_reasoning = False
    for m in msgs:
        role = m.role
        if role == "user":
            users.append(m.text)
        elif role == "assistant":
            n_assistant += 1
            if m.has_reasoning:
                assistant_reasoning = True
    last_user = users[-1] if users else ""
    user_text = users[0] if len(users) == 1 else "\n".join(users)
    prompt = "\n".join([system, *users]) if system else user_text
    # The prompt is encoded once (a 100 KB prompt costs ~70 us per copy): the user turns' UTF-8, which the concept
    # detector reads when the shared pass found something, is its tail after the system prompt and a newline.
    prompt_bytes = prompt.encode()
    spans = None  # trace nouns in the user turns (``cot.user_spans``), when the search over the prompt gives them
    if matchers is not None and matchers.by_source:
        # One RE2 pass per text: the built-in phrase families share the prompt's set with rule matchers.
        extra: dict[str, Any] = {}
        cot = matchers.run(
            {"prompt": prompt_bytes, "last_user": last_user, "system": system, "user_agent": meta.user_agent},
            extra,
        )
        if _TRACE_GROUP not in matchers.builtin:
            # The trace group, answered by the search for trace nouns the concept detector reads (``compiler``).
            found = cot_detector.prompt_spans(prompt_bytes)
            if found:
                cot[_TRACE_GROUP] = 1  # (readers look at whether a gate group matched, not how many patterns)
                start = (len(system) if system.isascii() else len(system.encode())) + 1 if system else 0
                spans = cot_detector.user_spans(found, start)
    else:
        extra = {}
        cot = _COT.hits(prompt)
    # ``cot`` holds only the groups that matched (most prompts: none).
    families = [f for f in COT_FAMILIES if cot.get(f)] if cot else []
    # Concept detector (proxy/policy/cot.py): user turns in full; the system prompt only with an extraction
    # verb, since operators' system prompts legitimately say "use your scratchpad before answering".
    user_bytes = None
    if cot:  # (an empty gate: ``families`` answers at once)
        skip = len(system) if system.isascii() else len(system.encode())
        user_bytes = prompt_bytes[skip + 1 :] if system else prompt_bytes
    # ``cot:odd`` answered by the prompt's set and not found: the user text needs no normalising.
    answered = matchers.builtin if matchers is not None and matchers.by_source else _COT_NAMES
    plain = _ODD_GROUP in answered and not cot.get(_ODD_GROUP)
    concept = cot_detector.families(user_text, system, cot, user_bytes, spans, plain)
    if "tags" in families and not concept and _TAGS_OWN.hits(prompt).get("own"):
        families.remove("tags")
    if "dataset" in families and not concept and _DATASET_OWN.hits(prompt).get("own"):
        families.remove("dataset")
    display = view.reasoning_display
    reasoning = bool(
        view.reasoning_enabled
        or view.reasoning_budget
        or view.reasoning_effort
        or (display and display not in ("omitted", "none"))
    )
    day = int(now // 86400)
    skeleton = template_skeleton(view, last_user) if (last_user or system) else b""
    template, prefix = fingerprints(skeleton) if skeleton else ("", "")
    ip, ua = meta.ip, meta.user_agent
    ipp = _IP_PREFIX.get(ip)
    if ipp is None:
        ipp = _memo(_IP_PREFIX, ip_prefix, ip)
    uaf = _UA_FAMILY.get(ua)
    if uaf is None:
        uaf = _memo(_UA_FAMILY, ua_family, ua)
    # A copy of ``_FEATURES`` (all keys, in this order) then one store per key: about half the cost of
    # a 48-key dict display, which grows its table several times (every request).
    f = _FEATURES.copy()
    f["request.model"] = view.model
    f["request.stream"] = view.stream
    f["request.max_tokens"] = view.max_tokens or 0
    f["request.n"] = view.n or 1
    f["request.logprobs"] = view.logprobs
    f["request.top_logprobs"] = view.top_logprobs or 0
    f["request.logit_bias"] = view.logit_bias
    f["request.reasoning"] = reasoning
    f["request.reasoning_budget"] = view.reasoning_budget or 0
    f["request.reasoning_effort"] = view.reasoning_effort or ""
    f["request.reasoning_display"] = display or ""
    f["request.tools"] = view.tools
    f["request.messages"] = len(msgs)
    f["request.assistant_turns"] = n_assistant
    f["request.assistant_reasoning"] = assistant_reasoning
    f["request.prompt_chars"] = len(prompt)
    f["request.path"] = meta.path
    f["account.id"] = meta.account_id
    f["account.tier"] = meta.tier
    f["account.org"] = meta.org
    f["account.key"] = meta.key_id
    f["client.ip"] = ip
    f["client.ip_prefix"] = ipp
    f["client.user_agent"] = ua[:256]
    f["client.ua_family"] = uaf
    f["signals.cot_score"] = len(families)
    f["signals.cot_families"] = frozenset(families) if families else _NO_FAMILIES
    f["signals.cot_request"] = cot_detector.HIT in concept
    f["signals.cot_obfuscated"] = cot_detector.OBFUSCATED in concept
    f["signals.grader"] = bool(cot.get("grader"))
    f["signals.template"] = template
    f["signals.template_cluster"] = clusters.cluster_of(template) if clusters is not None else template
    f["signals.prefix"] = prefix
    f["signals.prefix_net"] = f"{prefix}@{ipp}" if prefix else ""  # ``prefix_net``, inlined
    f[SKELETON_KEY] = skeleton
    f["signals.hour"] = int(now // 3600) % 24
    f["signals.weekday"] = (day + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0 as in time.gmtime
    if extra:
        f.update(extra)
    if lazy:
        f[LAST_USER_KEY] = last_user
        if "signals.lang" in eager:
            f["signals.lang"] = guess_language(last_user)
    else:
        f["signals.lang"] = guess_language(last_user)
    return f


def _lazy_lang(f: dict[str, Any]) -> str:
    lang = f["signals.lang"] = guess_language(f.get(LAST_USER_KEY, ""))
    return lang


LAZY_FEATURES: dict[str, Callable[[dict[str, Any]], Any]] = {"signals.lang": _lazy_lang}
celcode.LAZY.update(LAZY_FEATURES)


def complete_features(f: dict[str, Any]) -> dict[str, Any]:
    """Compute the lazy features a request's conditions did not read (audit record, explain)."""
    for name, fill in LAZY_FEATURES.items():
        if name not in f:
            fill(f)
    return f


# --------------------------------------------------------------------------- records (tests, replay)


def view_from_record(req: dict[str, Any]) -> RequestView:
    """A RequestView from the compact request form used by test files and audit logs with prompts."""
    msgs = [
        Message(
            role=str(m.get("role", "user")),
            text=str(m.get("text", m.get("content", ""))),
            has_reasoning=bool(m.get("has_reasoning", False)),
        )
        for m in req.get("messages", [])
    ]
    if "prompt" in req:
        msgs.append(Message("user", str(req["prompt"])))
    return RequestView(
        model=str(req.get("model", "")),
        stream=bool(req.get("stream", False)),
        messages=msgs,
        system=str(req.get("system", "")),
        tools=int(req.get("tools", 0)),
        max_tokens=req.get("max_tokens"),
        n=int(req.get("n", 1)),
        logprobs=bool(req.get("logprobs", False)),
        top_logprobs=int(req.get("top_logprobs", 0)),
        logit_bias=bool(req.get("logit_bias", False)),
        reasoning_enabled=req.get("reasoning"),
        reasoning_budget=req.get("reasoning_budget"),
        reasoning_effort=req.get("reasoning_effort"),
        reasoning_display=req.get("reasoning_display"),
    )


def features_to_json(f: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe copy (sets become sorted lists)."""
    return {k: (sorted(v) if isinstance(v, frozenset) else v) for k, v in f.items()}


def features_from_json(d: dict[str, Any]) -> dict[str, Any]:
    out = {k: (frozenset(v) if isinstance(v, list) else v) for k, v in d.items()}
    for k, t in SCHEMA.items():
        if k not in out:
            out[k] = {INT: 0, DOUBLE: 0.0, BOOL: False, STRING: "", LIST_STRING: frozenset()}[t]
    return out
