"""CoT-elicitation phrasing evaluation: does the pack's per-request elicitation rule fire?

Data in ``proxy/sim/data/phrasings``:

- development split (families the detector was written and tuned against): ``dev.yaml``; ``dev2.yaml``
  (held-out split 1, measured once at 38/52 = 73.1 % before use); ``dev3.yaml`` (held-out split 2,
  measured once at 24/48 = 50.0 % before use); ``dev4.yaml`` (encoded/obfuscated variants written by the
  detector's author to exercise normalisation); ``dev5.yaml`` (the author's own probes, each batch
  measured once before tuning at about 60 %, see the file); ``dev6.yaml`` (held-out split 3, written
  blind, measured once at 97/122 = 79.5 % before use); ``dev7.yaml`` (probes written by the detector's
  author in its second revision, each batch measured once before tuning at 36-80 %); ``heldout4.yaml``
  (held-out split 4, written blind, adversarial to keyword filters, measured once at
  87/145 = 60.0 % before use; the detector's third revision added the structural path, ``cot_struct``,
  against its misses); ``heldout5.yaml`` (held-out split 5, written blind, measured once at
  117/158 = 74.1 % before use; the fourth revision generalised ownership, creative-writing and
  operator-configuration frames, typo folding, timing and sibling-run concepts against its misses);
  ``heldout6.yaml`` (held-out split 6, written blind, measured once on 2026-11-27 at 108/150 = 72.0 % before
  use; the fifth revision added concepts for replaying rather than explaining, counterfactual visibility, the
  plan made before answering, other models' visible reasoning and the trace in 25 more languages against its
  misses, after which it caught 140/150 of it); and ``dev8.yaml`` (the author's probes for those concepts, each
  batch written before its concept and measured once: 23/60 -> 47/60 on a half not tuned on, a later batch
  30/60 -> 50/60, see the file); ``heldout7.yaml`` (held-out split 7, written blind by someone who never saw
  the detector or earlier splits, measured once on 2026-11-27 at 18:07 UTC at 121/150 = 80.7 % before use by the
  fifth revision, the fourth 120/150; from then on training data of the learned model, ``cot_model``);
  ``heldout8.yaml`` (held-out split 8, 15 families, written blind by someone who never saw the detector, earlier
  splits or the repository, measured once on 2026-11-27 at 21:20 UTC at 123/150 = 82.0 % before use by the sixth
  revision, lexical OR learned model; the fifth 110/150 = 73.3 %; from then on development data, the seventh
  revision's training data); and ``heldout9.yaml`` (held-out split 9, 15 families, written blind by someone who
  never saw the detector, earlier splits or the repository, 2026-11-27 22:30 UTC; measured once per revision before
  it became development data: 140/150 = 93.3 % by the sixth revision, 141/150 = 94.0 % by the seventh; nothing was
  tuned on it before the eighth revision, which trains on it); ``heldout10.yaml`` (held-out split 10, written
  blind 2026-11-28, measured once with the eighth revision at 148/150 = 98.7 % before it became development data;
  the ninth revision trains on it); ``heldout11.yaml`` (held-out split 11, written blind 2026-11-28, measured once
  with the ninth revision at 148/150 = 98.7 % before it became development data; two of its family names, shared
  with ``heldout8``, carry the suffix ``_11``; the tenth revision trains on it).
  ``heldout12.yaml`` with ``benign12.yaml`` (258 prompts), written blind 2026-11-28 by someone who never saw the
  detector, earlier splits or the repository, measured once with the tenth revision at 03:12 UTC: 149/150 = 99.3 %
  recall, 8/258 = 3.10 % false positives (target 1 %: missed); the eleventh revision trains on it.
  ``heldout13.yaml`` with ``benign13.yaml`` (276 prompts), written blind 2026-11-28, measured once with the eleventh
  revision (with ``cot_model.confirms`` backing the lexical paths): 143/150 = 95.3 % recall, 7/276 = 2.54 % false
  positives (without the backing 144/150, 14/276); the twelfth revision trains on it.
  ``heldout14.yaml`` with ``benign14.yaml`` (260 prompts), written blind 2026-11-28, measured once with the twelfth
  revision: 139/150 = 92.7 % recall, 3/260 = 1.15 % false positives; the thirteenth revision trains on it.
- held-out split (``SPLITS["heldout"]``): blind splits 15 and 16 (``heldout15``/``benign15``, 269 benign prompts;
  ``heldout16``/``benign16``, 260), each written blind 2026-11-28 by a writer who never saw the repository, and
  measured once with the thirteenth revision (05:42 and 05:46 UTC): 140/150 = 93.3 % and 145/150 = 96.7 % recall,
  1/269 = 0.37 % and 2/260 = 0.77 % false positives; nothing was tuned on them. While the tuple is empty, or a
  file it lists is not there, ``evaluate`` reports the split as not measured
  (``SplitResult.missing``) and the blind benign rate is left out; the held-out tests skip.
- benign prompts that mention reasoning innocently, hard near-misses included: ``benign.yaml``, ``benign3.yaml``
  to ``benign12.yaml`` (development: the detector was tuned and the learned model trained on them; each was
  written blind and measured once before use: ``benign3`` at 6/176 = 3.4 % false positives, ``benign4`` at
  4/212 = 1.9 %, ``benign5`` at 7/212 = 3.3 %, ``benign6`` at 4/205 = 1.95 %, ``benign7`` at 3/211 = 1.42 %, the
  fourth revision likewise 3/211; ``benign8`` (223 prompts) on 2026-11-27 at 21:20 UTC at 3/223 = 1.35 % by the
  sixth revision, 3/223 by the fifth; ``benign9`` (228 prompts, written with ``heldout9``) at 3/228 = 1.32 % by
  the sixth revision and by the seventh; ``benign10`` (239 prompts, written with ``heldout10``) at 4/239 = 1.67 %
  by the eighth revision; 0/239 by the ninth, which was tuned on those four; ``benign11`` (240 prompts, written with
  ``heldout11``) at 4/240 = 1.67 % by the ninth revision; ``benign12`` (258 prompts, written with ``heldout12``) at
  8/258 = 3.10 % by the tenth; ``benign13`` (276 prompts, written with ``heldout13``) at 7/276 = 2.54 % by the
  eleventh; ``benign14`` (260 prompts, written with ``heldout14``) at 3/260 = 1.15 % by the twelfth);
  ``probes11.yaml`` (60 hard near-misses written by the detector's author in the
  eleventh revision, measured once before tuning: 7/60 flagged, see the file). The blind benign set of the next split
  goes in ``BENIGN["heldout"]``.

Each phrasing is sent as one request on a fresh engine, through the real feature extraction and the whole
rule set, to a reasoning model; "caught" means the rule ``cot-elicit-request`` hit (enforce or shadow).
``concept`` counts the hits of the concept detector alone (``signals.cot_request``: the lexical paths of
``proxy/policy/cot.py`` or the learned model ``proxy/policy/cot_model.py``), without the pack's fixed phrase
families. Cross-validated figures of the learned model: ``python -m proxy.sim.cot_train --cv``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from proxy.policy.engine import Engine
from proxy.policy.loader import load_ruleset
from proxy.policy.signals import RequestMeta, compute_features, view_from_record
from proxy.policy.store import MemoryRuleStore

DATA = Path(__file__).parent / "data" / "phrasings"
RULE = "cot-elicit-request"
SPLITS: dict[str, tuple[str, ...]] = {
    "dev": (
        "dev",
        "dev2",
        "dev3",
        "dev4",
        "dev5",
        "dev6",
        "dev7",
        "heldout4",
        "heldout5",
        "heldout6",
        "dev8",
        "heldout7",
        "heldout8",
        "heldout9",
        "heldout10",
        "heldout11",
        "heldout12",
        "heldout13",
        "heldout14",
    ),
    # blind splits 15 and 16, measured once with the thirteenth revision; heldout14 (twelfth: 139/150) is development
    "heldout": ("heldout15", "heldout16"),
}
BENIGN: dict[str, tuple[str, ...]] = {
    "dev": (
        "benign",
        "benign3",
        "benign4",
        "benign5",
        "benign6",
        "benign7",
        "benign8",
        "benign9",
        "benign10",
        "benign11",
        "benign12",
        "probes11",
        "benign13",
        "benign14",
    ),
    "heldout": ("benign15", "benign16"),  # blind, with heldout15/16; benign14 (twelfth: 3/260 = 1.15 %) is development
}
T0 = 1_767_225_600.0


def split_files(name: str) -> tuple[Path, ...]:
    return tuple(DATA / f"{f}.yaml" for f in SPLITS.get(name, (name,)))


def split_present(name: str) -> bool:
    """Every data file of the split is there (an empty split, such as ``heldout`` between blind splits, is not)."""
    files = split_files(name)
    return bool(files) and all(p.is_file() for p in files)


def load_families(name: str) -> dict[str, list[str]]:
    """Families of one split (``dev``, ``heldout``) or one data file (``dev2``); a missing file raises."""
    out: dict[str, list[str]] = {}
    for path in split_files(name):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        out.update({k: [str(p) for p in v] for k, v in doc["families"].items()})
    return out


def family_files(name: str = "dev") -> dict[str, str]:
    """Family -> the data file (stem) it comes from."""
    out: dict[str, str] = {}
    for path in split_files(name):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        out.update(dict.fromkeys(doc["families"], path.stem))
    return out


def benign_present(split: str = "dev") -> bool:
    """Every benign file of the split is there (an empty list is not)."""
    names = BENIGN.get(split, ())
    return bool(names) and all((DATA / f"{f}.yaml").is_file() for f in names)


def load_benign(split: str = "dev") -> list[str]:
    """Benign prompts that mention reasoning: ``dev`` (the detector was tuned on them) or ``heldout`` (blind)."""
    out: list[str] = []
    for name in BENIGN[split]:
        doc = yaml.safe_load((DATA / f"{name}.yaml").read_text(encoding="utf-8"))
        out += [str(p) for p in doc["handwritten"]] + [str(p) for p in doc.get("near_misses", ())]
        out += [t.format(topic=topic) for t in doc.get("templates", ()) for topic in doc.get("topics", ())]
    return out


@dataclass
class SplitResult:
    total: int = 0
    caught: int = 0
    concept: int = 0
    per_family: dict[str, tuple[int, int]] = field(default_factory=dict)
    concept_per_family: dict[str, int] = field(default_factory=dict)
    misses: list[str] = field(default_factory=list)
    missing: bool = False  # the split's data file is not there (yet)

    @property
    def rate(self) -> float:
        return self.caught / self.total if self.total else 0.0


class Detector:
    def __init__(self, rules: list[str], rule: str = RULE) -> None:
        self.rs = load_ruleset(rules)
        self.rule = rule
        # Compiling the rule set's program is most of an engine's construction (tens of ms): one engine, a fresh
        # rule store for each prompt (all the state a prompt could leave behind: windows, scores, blocks).
        self.engine = Engine(self.rs)

    def check(self, prompt: str, model: str = "o3") -> tuple[bool, bool]:
        """(the rule hit, the concept detector alone fired) for one prompt on a fresh rule state."""
        engine = self.engine
        engine.use_store(MemoryRuleStore(self.rs))
        meta = RequestMeta(account_id="eval", tier="standard", ip="198.51.100.7", user_agent="eval")
        ctx = compute_features(view_from_record({"model": model, "prompt": prompt}), meta, T0, self.rs.matchers)
        return self.rule in engine.evaluate(ctx, T0).hit_ids, bool(ctx["signals.cot_request"])

    def hits(self, prompt: str, model: str = "o3") -> bool:
        return self.check(prompt, model)[0]


def evaluate_split(det: Detector, split: str) -> SplitResult:
    res = SplitResult()
    if not split_present(split):
        res.missing = True
        return res
    for fam, prompts in load_families(split).items():
        checks = [det.check(p) for p in prompts]
        c = sum(rule for rule, _ in checks)
        res.per_family[fam] = (c, len(prompts))
        res.concept_per_family[fam] = sum(concept for _, concept in checks)
        res.total += len(prompts)
        res.caught += c
        res.concept += res.concept_per_family[fam]
        res.misses += [p for p, (rule, _) in zip(prompts, checks, strict=True) if not rule]
    return res


def evaluate(rules: list[str], splits: tuple[str, ...] = ("dev", "heldout")) -> dict[str, Any]:
    det = Detector(rules)
    out: dict[str, Any] = {split: evaluate_split(det, split) for split in splits}
    for key, split in (("benign", "dev"), ("benign_heldout", "heldout")):
        # each benign set goes with its split: measuring the held-out split alone does not re-run the dev benign set
        if split not in splits or (split == "heldout" and not benign_present(split)):
            continue
        benign = load_benign(split)
        fps = [p for p in benign if det.hits(p)]
        out[key] = {
            "total": len(benign),
            "false_positives": len(fps),
            "rate": len(fps) / len(benign),
            "hits": fps,
        }
    return out


def format_eval(res: dict[str, Any]) -> str:
    lines = []
    for split in ("dev", "heldout"):
        r: SplitResult | None = res.get(split)
        if r is None:
            continue
        if r.missing:
            files = ", ".join(p.name for p in split_files(split))
            why = f"{files} not present" if files else "no blind split listed (phrasings.SPLITS)"
            lines.append(f"{split:<8} not measured: {why}")
            continue
        lines.append(f"{split:<8} caught {r.caught}/{r.total} = {r.rate:.1%} (concept detector alone {r.concept})")
        for fam, (c, n) in r.per_family.items():
            lines.append(f"    {fam:<24} {c}/{n}")
    for key, label in (("benign", "benign (development)"), ("benign_heldout", "benign (held-out)")):
        b = res.get(key)
        if b is not None:
            lines.append(f"{label} false positives {b['false_positives']}/{b['total']} = {b['rate']:.2%}")
    return "\n".join(lines)


def format_family_report(rules: list[str]) -> str:
    """Per-family recall on the DEVELOPMENT split, for reporting.

    Leave-one-family-out is not possible with fixed patterns: every dev family was seen while writing the
    detector, so these rates are not held-out estimates. They show which families the concept detector
    covers by itself and which rely on the pack's fixed phrase families (``concept`` vs ``pack``).
    """
    det = Detector(rules)
    res = evaluate_split(det, "dev")
    files = family_files("dev")
    lines = [
        "development families (seen while writing the detector: NOT a held-out estimate)",
        f"{'family':<26} {'file':<6} {'pack':>7} {'concept':>8}",
    ]
    for fam, (c, n) in res.per_family.items():
        lines.append(f"{fam:<26} {files[fam]:<6} {c:>3}/{n:<3} {res.concept_per_family[fam]:>4}/{n:<3}")
    lines.append(f"{'all':<26} {'':<6} {res.caught:>3}/{res.total:<3} {res.concept:>4}/{res.total:<3}")
    return "\n".join(lines)
