"""The ``rules:`` section of the proxy config, and building the judge filter from it.

```yaml
rules:
  paths: [rules/]                 # rule files or directories, relative to the config file; *.local.yaml last
  shadow: false                   # global dry-run: every rule reports, none acts
  fail_closed: false              # 403 instead of passing when rule evaluation itself fails
  watch_every: 5s                 # poll rule files and reload on change (null: only SIGHUP / admin API)
  audit:
    path: /var/log/distillguard/audit.jsonl    # null: no audit log
    include_prompt: false         # otherwise only the prompt's SHA-256 is written
  alerts:
    webhook: https://hooks.example.com/distillguard   # null: alerts are dropped
    batch: 100
    interval: 5s
  admin:
    token_env: DISTILLGUARD_ADMIN_TOKEN   # the admin API is off unless this variable is set
    prefix: /admin
```

Importing this module registers the section. The rule files are compiled while the config is
checked, so ``check-config`` reports rule errors too (at their own file:line:col), and serving
starts from that compiled set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proxy.clock import SYSTEM_CLOCK, Clock
from proxy.config import register_section
from proxy.yamlspec import At, Fields, Mark, Problems, to_str


@dataclass(frozen=True, slots=True)
class RulesSettings:
    paths: tuple[Path, ...] = ()
    shadow: bool = False
    fail_closed: bool = False
    watch_every: float | None = 5.0
    audit_path: Path | None = None
    audit_prompts: bool = False
    alert_webhook: str | None = None
    alert_batch: int = 100
    alert_interval: float = 5.0
    admin_token_env: str | None = None
    admin_prefix: str = "/admin"
    ruleset: Any = None  # the CompiledRuleSet built while checking the config

    @property
    def enabled(self) -> bool:
        return bool(self.paths)

    def admin_token(self) -> str | None:
        """The admin token from the environment (never from the config file), or None: API off."""
        if not self.admin_token_env:
            return None
        return os.environ.get(self.admin_token_env) or None


def parse_rules_section(value: Any, at: At, problems: Problems) -> RulesSettings:
    """Config section parser (``proxy.config.register_section('rules', ...)``)."""
    if value is None:
        return RulesSettings()
    f = Fields.of(value, at, problems)
    base = at.base_dir or Path(".")
    paths = tuple((base / p) if not Path(p).is_absolute() else Path(p) for p in f.list_of("paths", to_str))
    shadow = f.boolean("shadow", False)
    fail_closed = f.boolean("fail_closed", False)
    if f.has("watch_every") and f.raw("watch_every") is None:
        watch_every = None
    else:
        watch_every = f.duration("watch_every", 5.0, min=0.1)
    audit = f.map("audit")
    audit_path = audit.string("path", None)
    audit_prompts = audit.boolean("include_prompt", False)
    audit.done()
    alerts = f.map("alerts")
    webhook = alerts.url("webhook", None)
    batch = alerts.integer("batch", 100, min=1, max=10_000)
    interval = alerts.duration("interval", 5.0, min=0.05)
    alerts.done()
    admin = f.map("admin")
    token_env = admin.string("token_env", None)
    prefix = admin.string("prefix", "/admin")
    admin.done()
    f.done()
    ruleset = None
    if paths:
        ruleset = _compile(paths, f.child("paths"), problems)
    return RulesSettings(
        paths=paths,
        shadow=shadow,
        fail_closed=fail_closed,
        watch_every=watch_every,
        audit_path=(base / audit_path) if audit_path else None,
        audit_prompts=audit_prompts,
        alert_webhook=webhook,
        alert_batch=batch,
        alert_interval=interval,
        admin_token_env=token_env,
        admin_prefix=prefix,
        ruleset=ruleset,
    )


def _compile(paths: tuple[Path, ...], at: At, problems: Problems) -> Any:
    from proxy.policy.loader import load_ruleset
    from proxy.policy.spec import RulesError

    try:
        return load_ruleset(list(paths))
    except RulesError as e:
        for p in e.problems:
            context = f"rule '{p.rule}'" if p.rule else None
            problems.add(Mark(p.where.file, p.where.line, p.where.col), p.field, p.message, context=context)
        return None


def build_judge(settings: RulesSettings, *, clock: Clock = SYSTEM_CLOCK) -> Any:
    """The ``JudgeFilter`` for these settings (None when no rule paths are configured)."""
    if not settings.enabled:
        return None
    from proxy.filters.judge import JudgeFilter
    from proxy.policy.alerts import AlertSink
    from proxy.policy.audit import AuditLog
    from proxy.policy.engine import Engine
    from proxy.policy.loader import load_ruleset

    ruleset = settings.ruleset if settings.ruleset is not None else load_ruleset(list(settings.paths))
    return JudgeFilter(
        Engine(ruleset, shadow=settings.shadow),
        paths=settings.paths,
        clock=clock,
        audit=AuditLog(settings.audit_path, include_prompt=settings.audit_prompts)
        if settings.audit_path
        else None,
        alerts=AlertSink(settings.alert_webhook, batch=settings.alert_batch, interval=settings.alert_interval)
        if settings.alert_webhook
        else None,
        fail_closed=settings.fail_closed,
        watch_every=settings.watch_every,
    )


register_section("rules", parse_rules_section)
