"""Reading and changing a domain's alert rules (the admin pages and the API call these)."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from reports.alerts.models import AlertRule
from reports.alerts.rules import RULES, RuleError, check_change, effective_settings
from stspolicy.base.audit import record_event
from stspolicy.extensions import utcnow
from stspolicy.policies.models import Domain


def rules_of(session: Session, domain: Domain) -> list[dict]:
    """Every rule with its setting for `domain`, in the catalogue's order, as JSON-ready values."""
    stored = {row.rule: (row.enabled, row.parameters) for row in session.scalars(
        select(AlertRule).where(AlertRule.domain_id == domain.id))}
    settings = effective_settings(stored)
    return [
        {"rule": name, "title": spec.title, "description": spec.description, "enabled": settings[name].enabled,
         "parameters": settings[name].parameters, "defaults": {p.name: p.default for p in spec.parameters}}
        for name, spec in RULES.items()
    ]


def change_rules(session: Session, domain: Domain, changes: dict, *, actor: str) -> list[dict]:
    """Apply `{rule: {"enabled": bool, "parameters": {name: int}}}`; RuleError names the first field at fault,
    and then nothing is changed."""
    checked = {}
    for name, change in changes.items():
        if not isinstance(change, dict) or set(change) - {"enabled", "parameters"}:
            raise RuleError(f"{str(name)[:64]} takes an object with enabled and parameters", str(name)[:64])
        if change.get("parameters") is not None and not isinstance(change["parameters"], dict):
            raise RuleError(f"{name}.parameters must be an object", f"{name}.parameters")
        checked[name] = (change.get("enabled"), check_change(name, change.get("enabled"), change.get("parameters")))
    rows = {row.rule: row for row in session.scalars(select(AlertRule).where(AlertRule.domain_id == domain.id))}
    for name, (enabled, parameters) in checked.items():
        row = rows.get(name)
        if row is None:
            row = AlertRule(domain_id=domain.id, rule=name, enabled=True, parameters={})
            session.add(row)
        if enabled is not None:
            row.enabled = enabled
        row.parameters = {**row.parameters, **parameters}
        row.updated_at, row.updated_by = utcnow(), actor
    if checked:
        record_event(session, actor, "alerts.rules", domain, changes=", ".join(sorted(checked)))
    session.commit()
    return rules_of(session, domain)
