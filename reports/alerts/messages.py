"""Notices and digests as mail (plain text and HTML) and as webhook JSON. Pure but for reading templates and the
catalogues of the web UI (stspolicy/translations), whose texts the mail shares: each goes out in its recipient's
language (the one they chose for the web pages, else English); the webhook JSON stays English.

Everything that comes from reports or DNS (organisation names, MX hosts, records) is data
in the templates: the HTML is rendered with autoescaping, the plain text has control
characters removed, and a Subject is one line.
"""

import functools
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from importlib.resources import files
from urllib.parse import quote, urlencode

from babel.dates import format_date, format_time
from babel.support import Translations
from jinja2 import Environment, PackageLoader, select_autoescape

from reports.alerts.finding_rules import PREFIX as FINDING_PREFIX
from reports.alerts.rules import REPORTS_REFUSED, RULES
from stspolicy.base.words import plural_words, translate, words

MAX_DOMAINS_LISTED = 50
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
DNS_RULES = {"dns-drift", "certificate-expiry", "tlsa-certificate-mismatch", "finding-tlsa-mismatch",
             "finding-dnssec-invalid", "finding-starttls-not-supported", "finding-certificate-problem"}


ENGLISH = "en"


@functools.cache
def environment(language: str | None = None) -> Environment:
    """The mail templates in `language` (None: English)."""
    language = language or ENGLISH
    env = Environment(loader=PackageLoader("reports.alerts", "templates/alerts/mail"),
                      autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True,
                      keep_trailing_newline=True, extensions=["jinja2.ext.i18n"])
    catalogue = catalogue_of(language)
    env.install_gettext_translations(catalogue, newstyle=True)
    env.globals["language"] = language
    env.filters["utc"] = functools.partial(utc, language=language)
    env.filters["clean"] = clean
    env.filters["translated"] = lambda text: translate(text, catalogue.ugettext, catalogue.ungettext)
    return env


@functools.cache
def catalogue_of(language: str) -> Translations:
    """The web UI's catalogue of `language` (English needs none)."""
    return Translations.load(str(files("stspolicy") / "translations"), [language])


def utc(moment: datetime | None, language: str = ENGLISH) -> str:
    """A UTC time as the web pages show it: 2026-11-01 12:00 UTC in English, 1 nov. 2026 12:00 UTC in French."""
    if not moment:
        return "-"
    if language == ENGLISH:
        return f"{moment:%Y-%m-%d %H:%M} UTC"
    return f"{format_date(moment, 'medium', locale=language)} {format_time(moment, 'HH:mm', locale=language)} UTC"


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


def findings_page(base_url: str, finding: dict) -> str:
    """The review page of a finding's domain over the days the finding covers, narrowed to its MX and result
    type (`Finding.as_dict()`): the one place a finding's link is made."""
    evidence = finding["evidence"]
    args = {"since": finding["since"][:10], "until": finding["until"][:10]}
    args |= {name: value for name, value in (("mx", evidence.get("mx_host")),
                                             ("result_type", evidence.get("result_type"))) if value}
    return f"{base_url}/domains/{quote(finding['domain'])}/review?{urlencode(args)}"


def domain_links(base_url: str, rule: str, name: str, evidence: dict) -> list[tuple[str, str]]:
    """The pages with the details: the domain (the review of a finding's reports), and its DNS page for what DNS
    checks found."""
    page = f"{base_url}/domains/{quote(name)}"
    if rule.startswith(FINDING_PREFIX):
        links = [(words("review"), findings_page(base_url, evidence))]
    else:
        links = [(words("domain"), page + ("#edit" if rule == "enforce-ready" else ""))]
    if rule in DNS_RULES:
        links.append((words("DNS and DANE"), page + "/dns"))
    return links


def subject_of(notice: Notice, language: str | None = None) -> str:
    if notice.event == "resolved":
        subject = words("Resolved: {title}", title=notice.title)
    elif notice.rule == "enforce-ready":
        subject = words("Good news: {title}", title=notice.title)
    else:
        subject = words("Alert: {title}", title=notice.title)
    catalogue = catalogue_of(language or ENGLISH)
    return one_line(f"[stspolicy] {translate(subject, catalogue.ugettext, catalogue.ungettext)}")


def render_notice(notice: Notice, language: str | None = None) -> tuple[str, str, str]:
    """(Subject, plain text, HTML) of a notice in `language` (None: English)."""
    env = environment(language)
    return (subject_of(notice, language), env.get_template("notice.txt").render(n=notice),
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


def render_digest(digest, language: str | None = None) -> tuple[str, str, str]:
    """(Subject, plain text, HTML) of a digest in `language` (None: English)."""
    env = environment(language)
    catalogue = catalogue_of(language or ENGLISH)
    title = words("Weekly digest {start} to {end}: {domains}, {incidents}", start=digest.start.strftime("%Y-%m-%d"),
                  end=digest.end.strftime("%Y-%m-%d"), domains=_count(len(digest.domains), "domain"),
                  incidents=_count(digest.open_incidents, "open incident"))
    subject = one_line(f"[stspolicy] {translate(title, catalogue.ugettext, catalogue.ungettext)}")
    return subject, env.get_template("digest.txt").render(d=digest), env.get_template("digest.html").render(d=digest)


def digest_payload(digest, text: str, payload_format: str) -> str:
    if payload_format == "slack":
        return json.dumps({"text": text})
    return json.dumps({"event": "digest", "start": digest.start.isoformat(), "end": digest.end.isoformat(),
                       "domains": [row.as_dict() for row in digest.domains], "text": text})


def _count(number: int, noun: str):
    if noun == "domain":
        return plural_words("{count} domain", "{count} domains", number)
    return plural_words("{count} open incident", "{count} open incidents", number)
