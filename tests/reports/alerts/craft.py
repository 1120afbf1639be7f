"""Crafted report sets, DNS checks and certificates for the alert rules' tests.

Reports go in through the intake (so rollups and links are the real ones), dated days before
NOW, the moment the rules are evaluated at unless a test moves it.
"""

import dataclasses
import itertools
import json
from datetime import UTC, date, datetime, timedelta

from reports.alerts.settings import alert_settings
from reports.ingest import Settings, ingest_report
from stspolicy.certificates.models import Certificate
from stspolicy.dns.models import DnsObservation, MxObservation

NOW = datetime.now(UTC).replace(second=0, microsecond=0)  # domains hosted by a test are a little younger
TODAY = NOW.date()
INTAKE = Settings(accept_unhosted=True)
_ids = itertools.count(1)


def day(days_ago: int) -> date:
    return TODAY - timedelta(days=days_ago)


def report(session, organisation: str, on: date, blocks: list[dict]) -> None:
    """One report from `organisation` about UTC day `on`; blocks from `block`."""
    document = {
        "organization-name": organisation,
        "date-range": {"start-datetime": f"{on}T00:00:00Z", "end-datetime": f"{on}T23:59:59Z"},
        "contact-info": "tlsrpt@sender.example",
        "report-id": f"{organisation}-{on}-{next(_ids)}",
        "policies": blocks,
    }
    ingest_report(session, json.dumps(document).encode(), INTAKE, source="file")


def block(domain: str, ok: int, failed: int = 0, details: tuple = (), policy_type: str = "sts",
          mx: tuple[str, ...] = ()) -> dict:
    """A policy block; `details` are (result type, receiving MX, failed sessions)."""
    policy = {"policy-type": policy_type, "policy-domain": domain}
    if policy_type == "sts":
        policy["policy-string"] = ["version: STSv1", "mode: testing", *(f"mx: {m}" for m in mx), "max_age: 604800"]
        policy["mx-host"] = list(mx)
    elif policy_type == "tlsa":
        policy["policy-string"] = ["3 1 1 " + "ab" * 32]
    return {
        "policy": policy,
        "summary": {"total-successful-session-count": ok, "total-failure-session-count": failed},
        "failure-details": [
            {"result-type": result_type, "sending-mta-ip": "192.0.2.1", "receiving-mx-hostname": host,
             "receiving-ip": "198.51.100.7", "failed-session-count": count}
            for result_type, host, count in details
        ],
    }


def mx_seen(host: str, *, not_after: datetime | None = None, certificate: str = "c1", spki: str = "k1",
            tlsa_records: tuple[str, ...] = (), tlsa_state: str = "insecure", tlsa_match: str | None = None,
            starttls: bool = True, probe_error: str | None = None) -> MxObservation:
    return MxObservation(
        host=host, preference=10, address="192.0.2.25", tlsa_name=f"_25._tcp.{host}", tlsa_state=tlsa_state,
        tlsa_records=list(tlsa_records), tlsa_match=tlsa_match, starttls=starttls, tls_version="TLSv1.3",
        probe_error=probe_error, certificate_sha256=certificate * 32 if len(certificate) == 2 else certificate,
        spki_sha256=spki * 32 if len(spki) == 2 else spki, not_after=not_after or NOW + timedelta(days=60),
        names=[host], covers_host=True)


def finding(code: str, subject: str, message: str = "", level: str = "error", check: str | None = None) -> dict:
    found = {"level": level, "code": code, "subject": subject, "message": message or f"{subject}: {code}"}
    return found | ({"check": check} if check else {})


def checked(session, domain, at: datetime, mx: list[MxObservation], findings: list[dict] = (),
            policy_id: str | None = None) -> DnsObservation:
    """A stored `dns check` of `domain` at `at`."""
    observation = DnsObservation(
        domain=domain, observed_at=at, kind="check",
        status="problems" if any(f["level"] != "ok" for f in findings) else "ok",
        policy_id=policy_id or domain.versions[-1].policy_id, findings=list(findings), answers=[], mx_hosts=mx)
    session.add(observation)
    session.commit()
    return observation


def certificate(session, host: str, not_after: datetime, failures: int = 0, last_error: str | None = None):
    session.add(Certificate(host=host, not_after=not_after, failures=failures, last_error=last_error))
    session.commit()


def settings(app, **changes):
    return dataclasses.replace(alert_settings(app.config), **changes)
