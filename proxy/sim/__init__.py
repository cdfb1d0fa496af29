"""Campaign simulator for the default anti-distillation rule pack (``distillguard simulate``).

``personas`` (who sends what), ``traffic`` (seeded event-time traffic), ``runner_replay`` (the rule engine on
event time, long horizons), ``runner_proxy`` (the real proxy against the fake model), ``report`` (per-persona
outcomes and the targets), ``phrasings`` (CoT-elicitation phrasing evaluation, data in ``data/phrasings``),
``demo_scene`` (``hydra_scene`` for ``distillguard demo``). See docs/rules-pack.md.
"""
