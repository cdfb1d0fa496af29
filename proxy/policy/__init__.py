"""Per-account anomaly rules: YAML specs, a CEL-subset compiler, signals, windows, the engine and toolkit.

Public entry points:

- ``loader.load_ruleset(paths) -> CompiledRuleSet`` (raises ``spec.RulesError`` listing every problem)
- ``engine.Engine(ruleset, shadow=False)``: ``evaluate(features, now)``, ``evaluate_response``, ``swap``,
  ``pardon``, ``sweep``, ``state_of``
- ``signals.compute_features(view, meta, now, ruleset.matchers)``: the flat feature dict rules read
- ``toolkit``: ``check``, ``run_tests``, ``replay``, ``explain`` (the CLI lives in ``proxy.cli_rules``)
- ``settings``: the ``rules:`` config section (registered on import) and ``build_judge(settings)``
- ``proxy.filters.judge.JudgeFilter``: the chain step; ``proxy.admin.add_admin_routes``: the admin API
"""
