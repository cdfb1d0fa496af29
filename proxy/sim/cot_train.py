"""Train the learned CoT-elicitation model (``proxy/policy/cot_model.py``) and cross-validate it.

    python -m proxy.sim.cot_train            # retrain; writes proxy/policy/data/cot_model.tsv
    python -m proxy.sim.cot_train --check    # retrain in memory; exit 1 unless it equals the shipped file
    python -m proxy.sim.cot_train --cv       # grouped cross-validation report (a few minutes)

Data: every family of the development split (``phrasings.SPLITS["dev"]``) is positive; negatives are the
development benign prompts that mention reasoning (``phrasings.BENIGN["dev"]``) and ordinary prompts of the
simulator's benign personas (``sim_negatives``). Classes are weighted to the same total.

Training is our own code, deterministic to the bit: averaged SGD on the modified Huber loss (no exp/log,
only IEEE +, *, /, sqrt, so every platform gives the same floats), examples visited in an order drawn from
``random.Random(SEED)``, feature vectors scaled to unit length, features seen in fewer than ``MIN_DF``
training prompts dropped. The threshold is chosen on out-of-fold scores (``INNER`` folds over the training
data, grouped by family / template): the lowest score that flags at most ``MAX_FP`` of the benign prompts
that mention reasoning.

Cross-validation (``--cv``; 2026-11-27, the shipped configuration): each test fold's model and threshold come
from its training folds only. "lexical" is ``cot.detect`` (tuned on all of these files, so optimistic except on
heldout7, which it never saw); "model" is the learned model alone; the shipped rule is lexical OR model.

- leave-families-out, 10 folds over the 258 development families (benign grouped by prompt or template):
  lexical 1291/1367 = 94.4 %, model 1208/1367 = 88.4 %, lexical OR model 1332/1367 = 97.4 %; false positives
  on unseen benign prompts that mention reasoning 1/1885, 8/1885, 9/1885 = 0.48 %.
- leave-one-blind-file-out (each former blind split and its benign set as the test fold): heldout7+benign7
  lexical 121/150 = 80.7 % (FP 1/211), model 124/150 = 82.7 % (FP 1/211), lexical OR model 139/150 = 92.7 %
  (FP 2/211 = 0.95 %); all seven files 762/825, 714/825, 795/825 = 96.4 % (FP 1, 3, 4 of 1016).
- the model on word n-grams only (no concept groups) reached 56.3 % leave-families-out and 46.7 % on heldout7
  (lexical OR model 87.3 %): the concept groups carry most of what transfers. Masking trace nouns for the
  concept features (as ``cot.scan`` does) scored 135/150 on heldout7 instead of 139/150, so it is used only in
  the negation veto (``cot_model.vetoed``).
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from proxy.policy import cot
from proxy.policy.cot_model import WEIGHTS, LinearModel, features, vetoed, view
from proxy.sim import personas as P
from proxy.sim.phrasings import BENIGN, DATA, SPLITS

SEED = 7
EPOCHS = 12
ETA = 0.2
MIN_DF = 2
INNER = 5
MAX_FP = 0.005


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    label: int  # +1 elicitation, -1 benign
    group: str  # CV unit: "pos:<file>:<family>", "ben:<file>:<item or template>", "sim:<template>"
    source: str  # data file stem ("sim" for persona prompts)
    feats: frozenset[bytes]
    vetoed: bool  # ``cot_model.vetoed``: the model never flags it

    @property
    def reasoning_benign(self) -> bool:
        """A benign prompt that mentions reasoning (the false-positive target is measured on these)."""
        return self.label < 0 and self.source != "sim"


def example(text: str, label: int, group: str, source: str) -> Example:
    norm = cot.normalise(text)
    cues = cot._GLOBAL.hits(norm.encode("utf-8", "replace"))
    data = view(norm) or b""  # every training text is short enough to be read whole
    return Example(text, label, group, source, frozenset(features(data, cues)), vetoed(data))


def positives(files: Sequence[str] = SPLITS["dev"]) -> list[Example]:
    out: list[Example] = []
    for name in files:
        doc = yaml.safe_load((DATA / f"{name}.yaml").read_text(encoding="utf-8"))
        out += [example(str(p), 1, f"pos:{name}:{fam}", name) for fam, ps in doc["families"].items() for p in ps]
    return out


def benign(files: Sequence[str] = BENIGN["dev"]) -> list[Example]:
    """As ``phrasings.load_benign``, with a CV group per handwritten prompt and per template."""
    out: list[Example] = []
    for name in files:
        doc = yaml.safe_load((DATA / f"{name}.yaml").read_text(encoding="utf-8"))
        hand = [*doc["handwritten"], *doc.get("near_misses", ())]
        out += [example(str(p), -1, f"ben:{name}:{i}", name) for i, p in enumerate(hand)]
        for k, t in enumerate(doc.get("templates", ())):
            out += [example(t.format(topic=topic), -1, f"ben:{name}:t{k}", name) for topic in doc.get("topics", ())]
    return out


def sim_negatives() -> list[Example]:
    """Ordinary prompts of the simulator's benign personas (chat, multilingual, agents, automation, batch,
    apps), each template filled from a fixed seed."""
    rng = random.Random(f"{SEED}:sim")
    templates = [
        *P.ASKS,
        *P.MULTI,
        *P.AGENT_TASKS,
        *P.AUTOMATION_TEMPLATES,
        *P.BATCH_TEMPLATES,
        P.OSS_TOOL_ASK,
        *(app[2] for app in (*P.APPS, P.FORCED_APP)),
        *(app[1] for app in (*P.APPS, P.FORCED_APP)),
        *P.AGENT_SYSTEMS,
        *P.FOLLOW_UPS,
    ]
    out = [example(s, -1, "sim:short", "sim") for s in P.SHORT]
    for k, t in enumerate(templates):
        filled = dict.fromkeys(P.fill(rng, t) for _ in range(8))  # distinct fills, in order
        out += [example(s, -1, f"sim:{k}", "sim") for s in filled]
    return out


def dataset() -> list[Example]:
    return positives() + benign() + sim_negatives()


def train(data: Sequence[Example], epochs: int = EPOCHS, seed: int = SEED) -> LinearModel:
    """Averaged SGD on the modified Huber loss; returns the model with threshold 0 (see ``fit``)."""
    df = Counter(f for ex in data for f in ex.feats)
    vocab = sorted(f for f, n in df.items() if n >= MIN_DF)
    index = {f: i for i, f in enumerate(vocab)}
    rows = [sorted(index[f] for f in ex.feats if f in index) for ex in data]
    scale = [1.0 / math.sqrt(len(ex.feats)) if ex.feats else 0.0 for ex in data]
    npos = sum(ex.label > 0 for ex in data)
    nneg = len(data) - npos
    cls = {1: len(data) / (2.0 * npos), -1: len(data) / (2.0 * nneg)}
    w = [0.0] * len(vocab)
    u = [0.0] * len(vocab)  # sum of step * time: the average is w - u / c
    b = ub = 0.0
    c = 1.0
    rng = random.Random(seed)
    order = list(range(len(data)))
    for _ in range(epochs):
        rng.shuffle(order)
        for i in order:
            row, v, y = rows[i], scale[i], data[i].label
            z = y * (b + v * sum([w[j] for j in row]))
            if z < 1.0:
                g = 2.0 * (1.0 - z) if z >= -1.0 else 4.0
                step = ETA * g * y * cls[y]
                for j in row:
                    w[j] += step * v
                    u[j] += c * step * v
                b += step
                ub += c * step
            c += 1.0
    weights = {f: w[i] - u[i] / c for i, f in enumerate(vocab)}
    weights = {f: x for f, x in weights.items() if round(x, 4) != 0.0}
    return LinearModel(weights, b - ub / c, 0.0)


def score(model: LinearModel, ex: Example) -> float:
    """The example's score; ``-inf`` when vetoed (``cot_model.vetoed``)."""
    return -math.inf if ex.vetoed else model.score_features(set(ex.feats))


def folds(data: Sequence[Example], k: int, seed: int) -> list[int]:
    """A fold number per example; whole groups go to one fold, groups dealt round-robin in a seeded order
    (positive and negative groups separately, so each fold gets both)."""
    fold_of: dict[str, int] = {}
    for kind in ("pos:", "ben:", "sim:"):
        names = sorted({ex.group for ex in data if ex.group.startswith(kind)})
        random.Random(f"{seed}:{kind}").shuffle(names)
        fold_of.update({g: n % k for n, g in enumerate(names)})
    return [fold_of[ex.group] for ex in data]


def threshold(benign_scores: Sequence[float], max_fp: float = MAX_FP) -> float:
    """The lowest threshold (``score >= t`` flags) that flags at most ``max_fp`` of ``benign_scores``."""
    ranked = sorted(benign_scores, reverse=True)
    allowed = int(max_fp * len(ranked))
    if allowed >= len(ranked):
        return -math.inf
    return ranked[allowed] + 1e-6


def fit(data: Sequence[Example], inner: int = INNER, seed: int = SEED) -> LinearModel:
    """Train on ``data`` with the threshold chosen on ``inner``-fold out-of-fold scores of its benign prompts."""
    fold = folds(data, inner, seed)
    oof: list[float] = []
    for k in range(inner):
        model = train([ex for ex, f in zip(data, fold, strict=True) if f != k], seed=seed)
        oof += [score(model, ex) for ex, f in zip(data, fold, strict=True) if f == k and ex.reasoning_benign]
    model = train(data, seed=seed)
    model.threshold = threshold(oof)
    return model


# --------------------------------------------------------------------------- grouped cross-validation

BLIND_FILES = {  # splits written blind and measured once before becoming development data; benign set beside
    "dev2": None,
    "dev3": None,
    "dev6": "benign3",
    "heldout4": "benign4",
    "heldout5": "benign5",
    "heldout6": "benign6",
    "heldout7": "benign7",
}


@dataclass
class Tally:
    pos: int = 0
    ben: int = 0
    sim: int = 0
    lexical: tuple[int, int, int] = (0, 0, 0)  # positives caught, reasoning-benign flagged, sim flagged
    model: tuple[int, int, int] = (0, 0, 0)
    both: tuple[int, int, int] = (0, 0, 0)

    def add(self, test: Sequence[Example], lexical: dict[str, bool], model: LinearModel) -> None:
        for ex in test:
            lx = lexical[ex.text]
            ml = score(model, ex) >= model.threshold
            slot = 0 if ex.label > 0 else (1 if ex.reasoning_benign else 2)
            for name, hit in (("lexical", lx), ("model", ml), ("both", lx or ml)):
                if hit:
                    counts = list(getattr(self, name))
                    counts[slot] += 1
                    setattr(self, name, tuple(counts))
            self.pos += slot == 0
            self.ben += slot == 1
            self.sim += slot == 2

    def line(self, label: str) -> str:
        def pct(n: int, d: int) -> str:
            return f"{n}/{d} = {n / d:.1%}" if d else "-"

        cols = [
            f"{name} {pct(c[0], self.pos)} FP {pct(c[1], self.ben)} sim {c[2]}/{self.sim}"
            for name, c in (("lexical", self.lexical), ("model", self.model), ("lexical|model", self.both))
        ]
        return f"{label:<22} " + " | ".join(cols)


def _words_only(data: Sequence[Example]) -> list[Example]:
    groups = (b"g:", b"p:")
    return [
        Example(
            ex.text,
            ex.label,
            ex.group,
            ex.source,
            frozenset(f for f in ex.feats if not f.startswith(groups)),
            ex.vetoed,
        )
        for ex in data
    ]


def cross_validate(k: int = 10, words_only: bool = False) -> list[str]:
    """Leave-families-out (``k`` folds over families, benign by handwritten prompt or template) and
    leave-one-blind-file-out (each of ``BLIND_FILES`` with its benign set as the test fold). Each test fold's
    threshold comes from its training folds only (``fit``)."""
    data = dataset()
    if words_only:
        data = _words_only(data)
    lexical = {ex.text: bool(cot.detect(ex.text)) for ex in data}  # the lexical paths only
    lines = [f"leave-families-out, {k} folds ({'word n-grams only' if words_only else 'all features'}):"]
    total = Tally()
    fold = folds(data, k, SEED + 1)
    for n in range(k):
        model = fit([ex for ex, f in zip(data, fold, strict=True) if f != n])
        test = [ex for ex, f in zip(data, fold, strict=True) if f == n]
        total.add(test, lexical, model)
        part = Tally()
        part.add(test, lexical, model)
        lines.append(part.line(f"  fold {n} (t={model.threshold:.3f})"))
    lines.append(total.line("  all folds"))
    lines.append("leave-one-blind-file-out (train on everything else):")
    total = Tally()
    for name, ben in BLIND_FILES.items():
        held = {name, ben}
        model = fit([ex for ex in data if ex.source not in held])
        part = Tally()
        part.add([ex for ex in data if ex.source in held], lexical, model)
        total.add([ex for ex in data if ex.source in held], lexical, model)
        lines.append(part.line(f"  {name}+{ben or '-'}"))
    lines.append(total.line("  all blind files"))
    return lines


def report() -> str:
    return "\n".join(cross_validate() + cross_validate(words_only=True))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m proxy.sim.cot_train", description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="retrain and compare with the shipped weights")
    ap.add_argument("--cv", action="store_true", help="print the grouped cross-validation report")
    ap.add_argument("--out", type=Path, default=WEIGHTS)
    args = ap.parse_args(argv)
    if args.cv:
        print(report())
        return 0
    text = fit(dataset()).dumps()
    if args.check:
        same = args.out.is_file() and args.out.read_text(encoding="utf-8") == text
        print(f"{args.out}: {'identical' if same else 'DIFFERS from a fresh training'}")
        return 0 if same else 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}: {text.count(chr(10)) - 1} weights, {len(text)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
