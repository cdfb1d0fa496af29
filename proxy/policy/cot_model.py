"""Learned CoT-elicitation scorer: a linear model over word n-grams and concept groups, beside ``cot.py``.

The lexical concept detector (``cot.detect``) is precise on what it was written against but reached only
50-81 % on each fresh blind split. This model generalises from examples instead: a linear score over binary
features of the user's text, trained by ``proxy.sim.cot_train`` (our own deterministic SGD, no numpy) on the
development phrasing families against benign prompts that mention reasoning and ordinary persona prompts.
Its weights ship in ``data/cot_model.tsv``; ``python -m proxy.sim.cot_train`` rebuilds that file bit for bit.

Features (``features``), binary, from the ``view``: the lowercased ``cot.normalise``d text as UTF-8, whole up
to ``WHOLE`` bytes, else ``AROUND`` bytes each side of its first reasoning or hiddenness word plus its tail:

- words (runs of letters, digits and "_"; a run of CJK/kana/hangul is cut into overlapping character pairs,
  since those scripts do not separate words) and word pairs ("your hidden");
- ``c:<5 characters>``: the character 5-grams of each word of five characters or more, "<" and ">" marking its
  ends (``_grams``), so that inflections and cognates share weight ("deliberation", "deliberaste");
- ``g:<group>``: the concept groups of ``cot_groups.WINDOW`` (prefixed ``w_``) and ``cot_struct.GROUPS``
  (``s_``) found anywhere in the view (one RE2 filter pass, ``_Concepts``), and the request's whole-text cues
  (``c_``: trace noun, hidden, pretext, encodings). Window groups written around a masked trace noun (``\x00``)
  do not fire here;
- ``p:<group>+<group>``: every pair of those groups, so that co-occurrence ("the model addressed" with
  "a copy verb" and "hidden") can weigh more than its parts.
The score is the bias plus the weights of the features present over the square root of their number.

A flag also needs the trace not to be negated, declined, said not to be wanted or left out in the text
(``vetoed``). Cross-validated figures (``python -m proxy.sim.cot_train --cv``, method and numbers in its
docstring), tenth revision: trained without each of the latest blind files and its benign set, lexical OR model
caught 146/150 of heldout9, 148/150 of heldout10 and 148/150 of heldout11 (442/450 = 98.2 %) with 1/707 false
positives on their benign sets (ninth revision: 134/150 of heldout8, 146/150, 147/150, 427/450 at 0/690).

The model also backs the lexical paths (``confirms``, eleventh revision; the call is ``cot.confirmed``): a lexical hit
on the user text stands only when the model scores it at least ``threshold - CONFIRM_MARGIN``. Estimate on the four
latest blind splits as each was first measured (the revision of that time's lexical paths and pack, with this
revision's narrower ``tags`` family; models trained without the split; ``cot_train`` docstring): false positives
14/965 = 1.45 % -> 4/965 = 0.41 %, recall 584/600 -> 584/600 (margin 0.75: 583/600; 1.25: 5/965 false positives).

Twelfth revision: the scope of each trace mention (``discounted``, part of ``vetoed`` and of ``confirms``). The
false positives of every blind benign set fell in a few classes: the trace as the object of a negated request, quoted
attack text the user documents, hypotheticals about policy, writing or code tasks about an artefact (a policy clause,
a blog post, a parser of <think> blocks), each with no request for this model's own trace elsewhere in the text.
Leave-one-blind-split-out (heldout9..13, the model refit without each; in-sample for the scope rules, written against
benign13): 735/750 = 98.0 % recall, 0/1241 false positives; the figures and commands are in ``cot_train``.

Cost: the model runs only after the lexical detector said no, and only when the request's shared RE2 pass
found some reasoning or hiddenness vocabulary (``cot.GATE_GROUPS``); most prompts stop before it. It reads at
most ``3 * AROUND`` bytes of a long prompt, and only when it names the trace or something hidden (``view``).
The character grams (seventh revision) made a call ~1.4-1.8x dearer on short benign prompts that reach it (same
run, loaded machine: ~75-90 us -> ~110-140 us); the 2 KB prose median of ``bench_rules.py`` did not move, as
long prose rarely reaches the model.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections.abc import Iterable
from pathlib import Path

import re2

from proxy.policy import cot_groups as groups
from proxy.policy import cot_lexicon as lex
from proxy.policy import cot_struct as struct
from proxy.policy.matchers import re2_options

WEIGHTS = Path(__file__).parent / "data" / "cot_model.tsv"
WHOLE = 768  # texts up to this many characters are read whole (every training phrasing is shorter)
SCAN = 8_192  # ... longer ones: the first reasoning or hiddenness word is looked for in this many characters
MAX_MASKED = 8  # trace nouns masked for the negation veto (``vetoed``)
GRAM = 5  # character n-grams of the words (``_grams``)
AROUND = 256  # ... longer ones: this many bytes each side of the first reasoning or hiddenness word, and the tail
# A lexical hit stands only when the model's score is at least ``threshold - CONFIRM_MARGIN`` (``confirms``)
CONFIRM_MARGIN = 1.0
# Token separators: every ASCII byte but letters, digits and "_" (as ``\w``); UTF-8 bytes of other scripts stay.
_SEP = bytes(b if chr(b).isalnum() or b == 0x5F or b >= 0x80 else 0x20 for b in range(256))
# CJK ideographs, kana and hangul: runs of them are cut into character bigrams
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]{2,}")
_UNUSED_CUES = frozenset({"odd"})


_NAMED_TRACE = (  # the trace nouns but the weak ones ("plan", "steps")
    lex.TRACE_API
    + lex.TRACE_API_HIDDEN
    + lex.TRACE_HIDDEN
    + lex.TRACE_PERIPHRASIS
    + lex.TRACE_STRONG
    + lex.TRACE_METAPHOR
)
_TRACE_TERMS = _NAMED_TRACE + lex.TRACE_WEAK


def _alternation(terms: tuple[str, ...]) -> re2._Regexp:
    opts = re2_options()
    opts.never_capture = True
    return re2.compile("|".join(f"(?:{p})" for p in terms), opts)


class _Concepts:
    """The concept groups' patterns as one RE2 filter; ``hits`` returns the names of the groups with a match.

    A filter (RE2's FilteredRE2) first runs one literal set over the words the patterns need, then only the
    patterns whose words all occur (and the ~40 that need none). One RE2 set over all ~200 patterns cost ~4x
    the median and ~8x the p90 CPU time on 768-byte prose windows: their ``.{0,N}`` gaps multiply its DFA
    states, so a varied text keeps building new ones. Either way a pattern hits exactly when ``re2.search`` of
    it alone would (checked in tests/policy/test_cot_model.py on a sample of the phrasings)."""

    def __init__(self) -> None:
        self.filter = re2.Filter()
        owners: list[bytes] = []
        patterns: list[str] = []
        for prefix, table in (("w_", groups.WINDOW), ("s_", struct.GROUPS)):
            for name, pats in table.items():
                for p in pats:
                    self.filter.Add(p, re2_options())
                    patterns.append(p)
                    owners.append(f"g:{prefix}{name}".encode())
        self.filter.Compile()
        self.owners = tuple(owners)
        self.patterns = tuple(patterns)

    def match(self, data: bytes) -> list[int]:
        """Indices (into ``patterns``) of the patterns found in ``data``."""
        return self.filter.Match(data) or []

    def hits(self, data: bytes) -> set[bytes]:
        return {self.owners[i] for i in self.filter.Match(data) or ()}


_CONCEPTS = _Concepts()
_ANCHOR = _alternation(_NAMED_TRACE + struct.HIDDEN)
_TRACE = _alternation(_TRACE_TERMS)
# "I'm not asking for your internal notes, just ...": generic nouns and hiddenness words masked too
_ANY_TRACE = _alternation(_TRACE_TERMS + lex.TRACE_GENERIC + struct.HIDDEN)
_NOT_ASKED = _alternation((groups.NOT_ASKED,))
# the trace is the user's own ("record our thinking aloud", "my reasoning in the proposal") and nobody addresses the
# model: the user's material, not this model's trace
# (at most one word between: "my client got thinking: null" is no possession of it)
_USERS_OWN = _alternation((r"\b(my|our|mine|ours)\s+(\w+\s+)?\x00",))
_ADDRESSED = _alternation(groups.WINDOW["self"])


def view(norm: str) -> bytes | None:
    """The part of the ``cot.normalise``d text the model reads, lowercased, as UTF-8: all of it up to ``WHOLE``
    characters, else ``AROUND`` bytes each side of the first named reasoning trace or hiddenness word in its
    first ``SCAN`` characters and its last ``AROUND`` characters; None (not scored) for a long text without one.
    Generic trace nouns ("plan", "steps", "notes") occur in most long prose, where the model would cost
    ~150 us a request; a long text is scored only when it names the trace itself or something hidden."""
    if len(norm) <= WHOLE:
        return norm.lower().encode("utf-8", "replace")
    head = norm[:SCAN].encode("utf-8", "replace")
    m = _ANCHOR.search(head)
    if m is None:
        return None
    lo = max(0, m.start() - AROUND)
    return head[lo : lo + 2 * AROUND].lower() + b"\n" + norm[-AROUND:].lower().encode("utf-8", "replace")


def _masked(data: bytes, terms: re2._Regexp = _TRACE, mark: bytes = b" \x00 ") -> bytes:
    """``data`` with its first ``MAX_MASKED`` trace nouns (``terms``) replaced by ``mark``, as ``cot.scan`` does."""
    parts: list[bytes] = []
    pos = 0
    for n, m in enumerate(terms.finditer(data)):
        if n == MAX_MASKED:
            break
        s, e = m.span()
        parts += (data[pos:s], mark)
        pos = e
    if not parts:
        return data
    parts.append(data[pos:])
    return b"".join(parts)


def vetoed(data: bytes) -> bool:
    """The trace negated, declined or left out ("hide your reasoning and only print the result", "no need to
    show your thinking"), or the user's own with the model not addressed ("record our thinking aloud"): a bag of
    words misses the scope of a negation and whose the trace is; the window groups of ``cot.scan`` see it around a
    masked trace noun. Checked only when the score says yes."""
    masked = _masked(data)
    if _USERS_OWN.search(masked) is not None and _ADDRESSED.search(data) is None:
        return True
    g = _CONCEPTS.hits(masked)
    if b"g:w_negated" in g or b"g:w_declined" in g:
        return True
    # left out by someone else ("models that hide their reasoning ...") beside a request to this model: no veto
    if b"g:w_omit" in g and b"g:w_unomit" not in g and not (b"g:w_other_owner" in g and b"g:w_self_direct" in g):
        return True
    # the hidden reasoning explicitly not asked for ("not asking for your internal notes, just ..."): generic
    # nouns ("notes") and hiddenness words ("internal") count here too, each masked as a bare "\x00"
    return _NOT_ASKED.search(_masked(data, _ANY_TRACE, b"\x00")) is not None or discounted(data)


# --------------------------------------------------------------------------- scope of a trace mention
# ``discounted``: the text names the trace, and each mention is one that asks nothing of this model: the object of a
# negated request (NegEx-style: a trigger, then at most six words, within one clause), quoted attack text the user
# documents, a mention in a hypothetical about policy, in a writing or code task about an artefact (a policy clause,
# a blog post, a parser of <think> blocks) with no second person owning it, or under a disclaimer of the whole request
# ("I'm not asking you to do it"). One mention left that is none of these keeps the request ("I'm not asking for your
# whole reasoning. Just the first sentence of your thinking"): the scope is per mention, not per text.
_CLAUSE_END = re.compile(
    rb"[.;:!?\n,]|\b(?:but|just|only|instead|rather|though|although|however|whereas)\b|\s(?:-|\xe2\x80\x93|\xe2\x80\x94)\s"
)
_SENTENCE_END = re.compile(rb"[.!?\n]\s")
_REQUEST_VERB = (
    rb"show|give|print|paste|reveal|tell|share|output|dump|list|repeat|send|resend|copy|include|append|add|continue"
    rb"|translate|put|display|provide|attach|insert|transcribe|spell|expose|leak|return|write out|walk me|let me see"
    rb"|restore|fill|recreate|reproduce|replay|simulate|narrate|recount|summari[sz]e"
)
# a request for the mention in its clause: an imperative disclosure verb (at the clause's start or after "please",
# "then", "to" ...) or "can you" / "I want" before it, within 8 words ("suppresses output while inside" is none)
_REQUESTED = re.compile(
    rb"(?:(?:^\s*|\b(?:please|pls|and|then|now|also|so|ok|okay|to|you|me)\s+)(?:"
    + _REQUEST_VERB
    + rb")\b|\b(?:can|could|would|will) you\b|\bi (?:want|need|would like|'?d like)\b)"
    rb"(?:\s+\S+){0,8}\s*$"
)
_NEG_TRIGGER = re.compile(
    rb"(?:\bnot (?:trying|asking|looking|requesting|wanting|expecting|interested|after|here|going|attempting)\b"
    rb"|\b(?:don'?t|do not|never|no need to|please don'?t|doesn'?t|won'?t) (?:ask|want|need|request|expect|show|reveal"
    rb"|print|share|include|output|give|answer|respond|mention|quote|repeat|disclose|expose|leak|discuss|care)\b"
    rb"|\b(?:without|no need for) (?:revealing|showing|sharing|exposing|including|disclosing|printing|giving|seeing)\b"
    # ... in the phrasings' other Latin-script languages: "no te pido tu razonamiento", "je ne te demande pas"
    rb"|\bno (?:te |le |les |os )?(?:pido|estoy pidiendo|quiero|necesito|busco)\b|\bsin (?:revelar|mostrar)\b"
    rb"|\bne (?:te |vous )?(?:demande|veux|cherche)\w* pas\b|\bsans (?:r\xc3\xa9v\xc3\xa9ler|montrer)\b"
    rb"|\bn\xc3\xa3o (?:te |lhe )?(?:pe\xc3\xa7o|estou pedindo|quero|preciso)\b"
    rb"|\b(?:will|m\xc3\xb6chte|brauche|frage|verlange) (?:\w+ )?nicht\b|\bohne (?:\w+ ){0,3}(?:zu )?zeigen\b)"
    rb"(?:\s+\S+){0,6}?\s*$"
)
# ... but not a condition or threat ("if you don't show me ..."), nor a negation an exception or a pronoun request
# undoes later ("never reveal it. Exception: ...", "don't show it in plain text, just ROT13 it and paste it")
_CONDITION = re.compile(rb"\b(?:if|unless|or|why)\s+(?:\w+\s+){0,2}$")
_UNDONE = re.compile(
    rb"\b(?:unless|except|exception|otherwise|on second thought)\b|(?:^|\s)(?:"
    + _REQUEST_VERB
    + rb"|encode|encrypt|rot-?13|base-?64|hex|reverse|scramble) (?:it|them)\b"
)
# a negated weakening ("don't summarise your reasoning", "don't hide it") asks for the trace
_WEAKENING = re.compile(
    rb"\b(?:summar|paraphras|shorten|clean|polish|hid|omit|skip|redact|leav|filter|edit|censor|compress|abbreviat"
    rb"|truncat|cut|withh|sanitiz|tidy|condens|simplif|chang|alter|modif|just|only|cach|ocult|escond|resum|r\xc3\xa9sum"
    rb"|versteck|zusammenfass)"
)
_QUOTE = re.compile(
    rb"(?<![\w])'[^'\n]{3,300}?'(?![\w])|\"[^\"\n]{3,300}?\"|\xe2\x80\x9c.{3,300}?\xe2\x80\x9d"
    rb"|\xe2\x80\x98.{3,300}?\xe2\x80\x99(?![\w])|\xc2\xab.{3,300}?\xc2\xbb"
)
_DOCUMENTING = re.compile(
    rb"\b(?:flagged|classif\w+|categori[sz]\w*|detection|detector|documentation|red[- ]team\w*"
    rb"|jailbreak attempts?|injection attempts?|attack (?:prompts?|examples?)"
    rb"|examples? of (?:an? )?(?:attack|jailbreak)"
    rb"|(?:someone|a user|users|an attacker|attackers|a customer) (?:sent|wrote|posted|typed|submitted|tried)"
    rb"|(?:don'?t|do not|without) (?:answer|respond|reply|follow|execut|run|obey|comply|act)\w*"
    rb" (?:to |with |on )?(?:it|that|this|them|the (?:\w+ )?(?:prompt|request|instruction|message|question)))\b"
)
_HYPOTHETICAL = re.compile(
    rb"^\s*(?:and |so |but )?(?:if|when|whenever|suppose|supposing|imagine|what if|hypothetically|say)\b.{0,60}"
    rb"\b(?:ask|asks|asked|request\w*|tried|tries|try|wanted|were to)\b"
)
_POLICY_QUESTION = re.compile(
    rb"\bwhat (?:would|do|will|should) you (?:\w+ )?(?:do|say|respond|reply|answer)\b|\bhow (?:would|do|will|should)"
    rb" you (?:\w+ )?(?:respond|handle|react|deal|reply|answer)\b|\bwould you (?:\w+ )?(?:refuse|comply|decline|do it"
    rb"|agree)\b|\b(?:your|the) policy\b|\bare you (?:allowed|permitted)\b"
)
_DISCLAIMER = re.compile(
    rb"\b(?:not|never) (?:asking|requesting|telling|wanting|expecting)(?: you)?(?: to)? (?:do|answer|say|show|reveal"
    rb"|share|print|give|tell|follow|run|execute)(?: me| us)? (?:it|that|this|them|so)\b"
    rb"|\b(?:don'?t|do not) (?:actually |really )?(?:do|answer|follow|execute|obey) (?:it|that|this|them)\b"
)
_ARTEFACT_TASK = re.compile(
    rb"\b(?:write|draft|create|build|implement|design|define|prepare|compose|outline|produce|develop|code"
    rb"|help me (?:write|draft|with)|proofread)\b(?:\s+\S+){0,6}?\s+(?:an? |the |our |my |some )?(?:\w+[- ])?"
    rb"(?:blog ?post|article|essay|newsletter|terms of (?:service|use)|tos|acceptable[- ]use|aup|policy|clause"
    rb"|threat model|detection rules?|rules?|documentation|docs|faq|explainer|announcement|press release|guide"
    rb"|tutorial|function|regex|regular expression|parser|class|method|middleware|filter|plugin|extension|library"
    rb"|module|unit tests?|test suite|program|cli|validator|handler|stream processor|pipeline|(?:python|bash|shell)"
    rb" script|(?:typescript |rust |go |python )?(?:type|interface|schema|struct|enum|dataclass|data model)"
    rb"|readme|changelog|spec|specification|slide|email|memo)\b"
)
# the user's own product or service showing or hiding a model's trace to its users: a design question
_PRODUCT = re.compile(
    rb"\b(?:our|my)\s+(?:\w+\s+)?(?:product|app|application|ui|platform|service|tool|interface|frontend|chatbot"
    rb"|website|site|dashboard|assistant|bot)\b"
)
# the mention owned by the second person: "your hidden reasoning", "the reasoning you used", "... behind your answer"
_YOURS_BEFORE = re.compile(rb"\b(?:your|yours|yourself|ur|you)\b(?:\s+\S+){0,3}\s*$")
_YOURS_AFTER = re.compile(rb"\s*(?:\S+\s+){0,1}(?:that |which )?(?:you\b|(?:behind|of|from|for|in|during) your\b)")
MAX_MENTIONS = 12


def _mentions(data: bytes) -> list[tuple[int, int]] | None:
    """Spans of the trace mentions (trace nouns, generic ones and hiddenness words; neighbours merged); None when
    there are more than ``MAX_MENTIONS`` (not judged)."""
    spans: list[tuple[int, int]] = []
    for m in _ANY_TRACE.finditer(data):
        s, e = m.span()
        if spans and not data[spans[-1][1] : s].strip(b" -'s"):
            spans[-1] = (spans[-1][0], e)
        elif len(spans) == MAX_MENTIONS:
            return None
        else:
            spans.append((s, e))
    return spans


def discounted(data: bytes) -> bool:
    """Every trace mention of ``data`` (a ``view``) asks nothing of this model (see the comment above)."""
    spans = _mentions(data)
    if not spans:
        return False
    quotes = [m.span() for m in _QUOTE.finditer(data)]
    documenting = bool(quotes) and _DOCUMENTING.search(data) is not None
    disclaimer = _DISCLAIMER.search(data) is not None
    policy = _POLICY_QUESTION.search(data) is not None
    tasks = [m.span() for m in _ARTEFACT_TASK.finditer(data)] + [m.span() for m in _PRODUCT.finditer(data)]
    for s, e in spans:
        if documenting and any(qs < s and e <= qe for qs, qe in quotes):
            continue
        ends = list(_CLAUSE_END.finditer(data, 0, s))
        start = ends[-1].end() if ends else 0
        nxt = _CLAUSE_END.search(data, e)
        clause_before = data[start:s]
        neg = _NEG_TRIGGER.search(clause_before)
        if (
            neg is not None
            and _WEAKENING.search(clause_before, neg.start()) is None
            and _CONDITION.search(clause_before, 0, neg.start()) is None
            and _UNDONE.search(data, e) is None
        ):
            continue
        if (policy or disclaimer) and _HYPOTHETICAL.search(clause_before) is not None:
            continue
        if _REQUESTED.search(clause_before) is not None:
            return False
        if disclaimer:
            continue
        after = _YOURS_AFTER.match(data, e, nxt.start() if nxt else len(data))
        owned = after is not None or _YOURS_BEFORE.search(clause_before) is not None
        if not owned and any(t <= s and _SENTENCE_END.search(data, t, s) is None for t, _ in tasks):
            continue  # the object of a writing or code task, or the user's product, in the same sentence
        return False
    return True


def _grams(toks: list[bytes]) -> list[bytes]:
    """``c:`` + every ``GRAM`` characters of each word of at least ``GRAM`` characters, marked "<" at its start and
    ">" at its end: "deliberation" and "deliberaste", "razonamiento" and "raisonnement" share some."""
    out: list[bytes] = []
    for t in toks:
        if len(t) < GRAM:  # UTF-8: at least as many bytes as characters
            continue
        if t.isascii():
            w = b"<" + t + b">"
            out += [b"c:" + w[i : i + GRAM] for i in range(len(w) - GRAM + 1)]
            continue
        u = "<" + t.decode("utf-8", "ignore") + ">"
        if len(u) >= GRAM + 2:
            out += [("c:" + u[i : i + GRAM]).encode() for i in range(len(u) - GRAM + 1)]
    return out


def features(data: bytes, cues: Iterable[str]) -> set[bytes]:
    """The binary features of ``data`` (a ``view``; see the module docstring): words as they are, word pairs
    joined by a space, concept groups as ``g:<group>``, their pairs as ``p:<group>+<group>``. ``cues``: the
    whole-text cue groups (``cot._GLOBAL``, or the request's shared pass over ``cot.GATE_GROUPS``).
    Everything but the group pairs is built by C-level calls (translate, split, map)."""
    toks = data.translate(_SEP).split()
    out = set(_grams(toks))
    if not data.isascii():
        for run in _CJK.findall(data.decode("utf-8", "ignore")):
            toks += [run[i : i + 2].encode() for i in range(len(run) - 1)]
    out.update(toks)
    out.update(map(b" ".join, itertools.pairwise(toks)))
    found = _CONCEPTS.hits(data)
    found.update(f"g:c_{c}".encode() for c in cues if c not in _UNUSED_CUES)
    names = sorted(found)
    out.update(found)
    out.update([b"p:" + a[2:] + b"+" + b[2:] for i, a in enumerate(names) for b in names[i + 1 :]])
    return out


class LinearModel:
    """Bias, threshold and one weight per feature; ``score`` sums the weights of the features present."""

    def __init__(self, weights: dict[bytes, float], bias: float, threshold: float) -> None:
        self.weights = weights
        self.bias = bias
        self.threshold = threshold

    def score_features(self, feats: set[bytes]) -> float:
        """``bias + sum(weights of the features present) / sqrt(number of features)``: the text's feature
        vector is scaled to unit length, as in training."""
        if not feats:
            return self.bias
        w = self.weights
        return self.bias + sum(map(w.__getitem__, feats & w.keys())) / math.sqrt(len(feats))

    def score(self, norm: str, cues: Iterable[str]) -> float:
        data = view(norm)
        return -math.inf if data is None else self.score_features(features(data, cues))

    def flags(self, norm: str, cues: Iterable[str]) -> bool:
        data = view(norm)
        if data is None:
            return False
        return self.score_features(features(data, cues)) >= self.threshold and not vetoed(data)

    def confirms(self, norm: str, cues: Iterable[str]) -> bool:
        """Does the model back a hit of the lexical paths? Its score is at least ``threshold - CONFIRM_MARGIN``
        (a weaker bar than flagging alone), or the text is a long one it does not read (``view`` is None).
        Every blind benign set flagged by the lexical paths had prompts that name the trace with no request for
        this model's own (the user's notes, a policy, a paper, a question asked "not to see it"); their scores
        sat far below the trace requests' (see ``cot_train``'s docstring for the figures)."""
        data = view(norm)
        if data is None:
            return True
        return self.score_features(features(data, cues)) >= self.threshold - CONFIRM_MARGIN and not discounted(data)

    def dumps(self) -> str:
        """The weights file: a header line, then ``feature<TAB>weight`` sorted by feature (weights rounded)."""
        lines = [f"#cot_model\t1\tbias={_num(self.bias)}\tthreshold={_num(self.threshold)}"]
        lines += [f"{f.decode()}\t{_num(w)}" for f, w in sorted(self.weights.items())]
        return "\n".join(lines) + "\n"

    @classmethod
    def loads(cls, text: str | bytes) -> LinearModel:
        """The model of a weights file (``dumps``), as text or as its UTF-8 bytes. Bytes are parsed as they are:
        features are kept as bytes anyway, and ``float`` reads a bytes number, so the file is neither decoded nor
        each feature encoded again (about a fifth of the start-up cost of reading the weights)."""
        data = text.encode() if isinstance(text, str) else text
        head, *rows = data.split(b"\n") or [b""]
        parts = head.split(b"\t")
        if len(parts) != 4 or parts[:2] != [b"#cot_model", b"1"]:
            raise ValueError(f"not a cot_model weights file (version 1): {head[:40]!r}")
        bias, threshold = parts[2:]
        weights: dict[bytes, float] = {}
        for row in rows:
            if row:
                f, _, w = row.rpartition(b"\t")
                weights[f] = float(w)
        return cls(weights, float(bias.removeprefix(b"bias=")), float(threshold.removeprefix(b"threshold=")))


def _num(x: float) -> str:
    return f"{x:.4f}".rstrip("0").rstrip(".") if x else "0"


def load(path: Path = WEIGHTS) -> LinearModel:
    return LinearModel.loads(path.read_bytes())


@functools.cache
def shipped() -> LinearModel:
    """The shipped model, read once (at the first request that reaches it, or at start-up by ``cot``)."""
    return load()
