"""CoT-elicitation phrasing evaluation: does the pack's per-request elicitation rule fire?

Data in ``proxy/sim/data/phrasings``: development split ``dev.yaml`` + ``dev2.yaml`` (families the pack's
matchers were written against; ``dev2`` was the first held-out split, measured once at 73.1 % before it
was used), held-out split ``heldout2.yaml`` (families never used while writing them) and
``benign.yaml`` (prompts that mention reasoning innocently). Each phrasing is sent as one request on a
fresh engine, through the real feature extraction and the whole rule set, to a reasoning model; "caught"
means the rule ``cot-elicit-request`` hit (enforce or shadow).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from proxy.policy.engine import Engine
from proxy.policy.loader import load_ruleset
from proxy.policy.signals import RequestMeta, compute_features, view_from_record

DATA = Path(__file__).parent / "data" / "phrasings"
RULE = "cot-elicit-request"
SPLITS: dict[str, tuple[str, ...]] = {"dev": ("dev", "dev2"), "heldout": ("heldout2",)}
T0 = 1_767_225_600.0


def load_families(name: str) -> dict[str, list[str]]:
    """Families of one split (``dev``, ``heldout``) or one data file (``dev2``, ``heldout2``)."""
    out: dict[str, list[str]] = {}
    for f in SPLITS.get(name, (name,)):
        doc = yaml.safe_load((DATA / f"{f}.yaml").read_text(encoding="utf-8"))
        out.update({k: [str(p) for p in v] for k, v in doc["families"].items()})
    return out


def load_benign() -> list[str]:
    doc = yaml.safe_load((DATA / "benign.yaml").read_text(encoding="utf-8"))
    out = [str(p) for p in doc["handwritten"]]
    out += [t.format(topic=topic) for t in doc["templates"] for topic in doc["topics"]]
    return out


@dataclass
class SplitResult:
    total: int = 0
    caught: int = 0
    per_family: dict[str, tuple[int, int]] = field(default_factory=dict)
    misses: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.caught / self.total if self.total else 0.0


class Detector:
    def __init__(self, rules: list[str], rule: str = RULE) -> None:
        self.rs = load_ruleset(rules)
        self.rule = rule

    def hits(self, prompt: str, model: str = "o3") -> bool:
        engine = Engine(self.rs)
        meta = RequestMeta(account_id="eval", tier="standard", ip="198.51.100.7", user_agent="eval")
        ctx = compute_features(view_from_record({"model": model, "prompt": prompt}), meta, T0, self.rs.matchers)
        return self.rule in engine.evaluate(ctx, T0).hit_ids


def evaluate(rules: list[str]) -> dict[str, Any]:
    det = Detector(rules)
    out: dict[str, Any] = {}
    for split in ("dev", "heldout"):
        res = SplitResult()
        for fam, prompts in load_families(split).items():
            c = sum(det.hits(p) for p in prompts)
            res.per_family[fam] = (c, len(prompts))
            res.total += len(prompts)
            res.caught += c
            res.misses += [p for p in prompts if not det.hits(p)]
        out[split] = res
    benign = load_benign()
    fps = [p for p in benign if det.hits(p)]
    out["benign"] = {
        "total": len(benign),
        "false_positives": len(fps),
        "rate": len(fps) / len(benign),
        "hits": fps,
    }
    return out


def format_eval(res: dict[str, Any]) -> str:
    lines = []
    for split in ("dev", "heldout"):
        r: SplitResult = res[split]
        lines.append(f"{split:<8} caught {r.caught}/{r.total} = {r.rate:.1%}")
        for fam, (c, n) in r.per_family.items():
            lines.append(f"    {fam:<24} {c}/{n}")
    b = res["benign"]
    lines.append(f"benign   false positives {b['false_positives']}/{b['total']} = {b['rate']:.2%}")
    return "\n".join(lines)
