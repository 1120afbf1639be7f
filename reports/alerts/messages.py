"""Notices and digests as mail (plain text and HTML) and as webhook JSON. Pure but for reading templates.

Everything that comes from reports or DNS (organisation names, MX hosts, records) is data
in the templates: the HTML is rendered with autoescaping, the plain text has control
characters removed, and a Subject is one line.
"""

import functools
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape

from reports.alerts.finding_rules import PREFIX as FINDING_PREFIX
from reports.alerts.rules import REPORTS_REFUSED, RULES

MAX_DOMAINS_LISTED = 50
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
DNS_RULES = {"dns-drift", "certificate-expiry", "tlsa-certificate-mismatch", "finding-tlsa-mismatch",
             "finding-dnssec-invalid", "finding-starttls-not-supported", "finding-certificate-problem"}


@functools.cache
def environment() -> Environment:
    env = Environment(loader=PackageLoader("reports.alerts", "templates/alerts/mail"),
                      autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True,
                      keep_trailing_newline=True)
    env.filters["utc"] = lambda moment: f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "-"
    env.filters["clean"] = clean
    return env


def clean(text) -> str:
    """Text from reports or DNS without control characters (which a terminal or mail reader would act on)."""
    return _CONTROL.sub("?", str(text))


def one_line(text: str, limit: int = 200) -> str:
    line = " ".join(clean(text).split())
    return line if len(line) <= limit else line[:limit - 3] + "..."


@dataclass(frozen=True)
class DomainView:
    name: str
    since: datetime
    lines: list[str]
    evidence: dict
    resolved_at: datetime | None
    links: list[tuple[str, str]] = field(default_factory=list)  # (label, URL)


@dataclass(frozen=True)
class Notice:
    """One incident as one recipient may see it: only the domains they see."""

    event: str  # opened or resolved
    incident_id: int
    rule: str
    subject: str
    title: str
    since: datetime
    opened_at: datetime
    resolved_at: datetime | None
    lines: list[str]
    evidence: dict
    fix: str
    domains: list[DomainView]
    hidden_domains: int = 0  # touched domains beyond MAX_DOMAINS_LISTED
    alerts_url: str = ""

    @property
    def rule_title(self) -> str:
        spec = RULES.get(self.rule) or REPORTS_REFUSED
        return spec.title


def findings_page(base_url: str, name: str) -> str:
    """The page that shows a domain's findings in detail: its page, until the review has one of its own."""
    return f"{base_url}/domains/{quote(name)}"


def domain_links(base_url: str, rule: str, name: str) -> list[tuple[str, str]]:
    """The pages with the details: the domain (its findings for a finding), and its DNS page for what DNS
    checks found."""
    page = f"{base_url}/domains/{quote(name)}"
    if rule.startswith(FINDING_PREFIX):
        links = [("findings", findings_page(base_url, name))]
    else:
        links = [("domain", page + ("#edit" if rule == "enforce-ready" else ""))]
    if rule in DNS_RULES:
        links.append(("DNS and DANE", page + "/dns"))
    return links


def subject_of(notice: Notice) -> str:
    prefix = "Resolved" if notice.event == "resolved" else ("Good news" if notice.rule == "enforce-ready" else "Alert")
    return one_line(f"[stspolicy] {prefix}: {notice.title}")


def render_notice(notice: Notice) -> tuple[str, str, str]:
    """(Subject, plain text, HTML) of a notice."""
    env = environment()
    return (subject_of(notice), env.get_template("notice.txt").render(n=notice),
            env.get_template("notice.html").render(n=notice))


def notice_payload(notice: Notice, text: str, payload_format: str) -> str:
    """The webhook body: our JSON, or `{"text": ...}` that Slack and Matrix hookshot webhooks post as a message."""
    if payload_format == "slack":
        return json.dumps({"text": text})
    return json.dumps({
        "event": notice.event,
        "incident": {
            "id": notice.incident_id, "rule": notice.rule, "subject": notice.subject, "title": notice.title,
            "since": notice.since.isoformat(), "opened_at": notice.opened_at.isoformat(),
            "resolved_at": notice.resolved_at.isoformat() if notice.resolved_at else None,
            "evidence": notice.evidence, "lines": notice.lines, "fix": notice.fix,
        },
        "domains": [
            {"domain": d.name, "since": d.since.isoformat(), "lines": d.lines, "evidence": d.evidence,
             "resolved_at": d.resolved_at.isoformat() if d.resolved_at else None,
             "links": {label: url for label, url in d.links}}
            for d in notice.domains
        ],
        "text": text,
    })


def render_digest(digest) -> tuple[str, str, str]:
    env = environment()
    subject = one_line(f"[stspolicy] Weekly digest {digest.start:%Y-%m-%d} to {digest.end:%Y-%m-%d}: "
                       f"{_count(len(digest.domains), 'domain')}, {_count(digest.open_incidents, 'open incident')}")
    return subject, env.get_template("digest.txt").render(d=digest), env.get_template("digest.html").render(d=digest)


def digest_payload(digest, text: str, payload_format: str) -> str:
    if payload_format == "slack":
        return json.dumps({"text": text})
    return json.dumps({"event": "digest", "start": digest.start.isoformat(), "end": digest.end.isoformat(),
                       "domains": [row.as_dict() for row in digest.domains], "text": text})


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
