"""`dns check`: look at a hosted domain the way senders do, store what was seen, say what to fix.

Look-ups go through the configured validating resolver, every MX is probed with
STARTTLS, the pure `findings` turn the answers into findings, and one DnsObservation
(with an MxObservation per MX host) keeps them for the history.
"""


import dataclasses
import functools
import math
import os
from collections.abc import Callable
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select
from sqlalchemy.orm import Session

from stspolicy.base.settings import AppSettings
from stspolicy.dns import findings as checks
from stspolicy.dns.answers import SECURE, Answer
from stspolicy.dns.dane import (
    RolloverPlan,
    TlsaError,
    TlsaRecord,
    certificate_facts,
    parse_tlsa,
    parse_tlsa_records,
    plan_rollover,
    tlsa_name,
    webpki_error,
)
from stspolicy.dns.findings import Expected, Finding, MxHost
from stspolicy.dns.models import DnsObservation, DnsSetting, MxObservation
from stspolicy.dns.probe import ProbeResult, probe_starttls
from stspolicy.dns.publish import sts_target
from stspolicy.dns.queries import (
    active_publications,
    latest_check,
    latest_observations,
    published_since,
    published_ttl,
)
from stspolicy.dns.resolver import Resolver
from stspolicy.extensions import utcnow
from stspolicy.policies.models import Domain, PolicyVersion
from stspolicy.policies.queries import current_versions

CHECKS = ("sts_record", "tlsrpt_record", "policy_host", "mx_set", "mx_hosts")  # what a DNS check is made of


MAX_MX_HOSTS = 10  # more MX hosts than this are listed, but only these are looked at


MAX_CHAIN_CERTIFICATES = 10


DEFAULT_TLSA_TTL = 3600  # for a rollover plan when neither the admin nor DNS says


Prober = Callable[..., ProbeResult]  # (host, addresses, *, server_name) as probe_starttls


def resolver_for(settings: AppSettings) -> Resolver:
    return Resolver(nameservers=list(settings.checks.resolvers), timeout=settings.checks.timeout)


def prober_for(settings: AppSettings) -> Prober:
    checks = settings.checks
    return functools.partial(
        probe_starttls, timeout=checks.probe_timeout, ehlo_name=checks.probe_ehlo_name,
        allowed_networks=list(checks.probe_allowed_networks),
    )


def expected_for(session: Session, settings: AppSettings, domain: Domain, version: PolicyVersion) -> Expected:
    records = settings.records
    return Expected(
        domain=domain.name,
        policy_id=version.policy_id,
        mode=version.mode,
        mx_patterns=tuple(version.mx_patterns),
        rua=records.rua,
        policy_host_cname=records.policy_host_cname,
        policy_host_addresses=records.policy_host_addresses,
        sts_target=sts_target(settings, domain.name, session.get(DnsSetting, domain.id)),
    )


def check_domain(session: Session, settings: AppSettings, domain: Domain, version: PolicyVersion, *,
                 resolver: Resolver | None = None, prober: Prober | None = None,
                 now: datetime | None = None) -> DnsObservation:
    """Check one domain now, store the observation and commit; returns it."""
    resolver = resolver or resolver_for(settings)
    prober = prober or prober_for(settings)
    now = now or utcnow()
    expected = expected_for(session, settings, domain, version)
    name = domain.name
    sts = resolver.lookup(f"_mta-sts.{name}", "TXT")
    tlsrpt = resolver.lookup(f"_smtp._tls.{name}", "TXT")
    policy_host = _addresses(resolver, f"mta-sts.{name}")
    mx_answer = resolver.lookup(name, "MX")
    answers = [sts, tlsrpt, policy_host, mx_answer]
    by_check: dict[str, list[Finding]] = {  # keyed by CHECKS
        "sts_record": checks.check_sts_record(sts, expected),
        "tlsrpt_record": checks.check_tlsrpt_record(tlsrpt, expected),
        "policy_host": checks.check_policy_host(policy_host, expected),
        "mx_set": checks.check_mx_set(mx_answer, expected),
        "mx_hosts": [],
    }
    hosts = []
    mx_hosts = checks.mx_hosts_of(mx_answer)
    if len(mx_hosts) > MAX_MX_HOSTS:
        by_check["mx_set"].append(Finding(checks.WARNING, "mx-too-many", name,
                                          f"{len(mx_hosts)} MX hosts: only the first {MAX_MX_HOSTS} are looked at"))
    for preference, host in mx_hosts[:MAX_MX_HOSTS]:
        mx = _look_at_mx(resolver, prober, host, preference, now, settings.checks.probe_ca_file)
        answers += [mx.addresses, mx.tlsa]
        by_check["mx_hosts"] += checks.check_mx_host(mx, mx_answer, expected)
        hosts.append(mx)
    findings = [finding for found in by_check.values() for finding in found]
    for mx in hosts:  # what the host presents keeps its published record from being pruned
        match = mx.tlsa_match
        row = active_publications(session, mx.host).get(str(match)) if match else None
        if row is not None:
            row.last_presented_at = now
    unreachable = all(answer.rcode == "TIMEOUT" for answer in (sts, mx_answer))
    observation = DnsObservation(
        domain=domain, observed_at=now, kind="check", policy_id=version.policy_id,
        status="unchecked" if unreachable else checks.status(findings),
        findings=[{**finding.as_dict(), "check": check} for check, found in by_check.items() for finding in found],
        answers=[answer.as_dict() for answer in answers],
        mx_hosts=[_mx_observation(mx) for mx in hosts],
    )
    session.add(observation)
    session.commit()
    return observation


class CheckTooSoon(Exception):
    """A check asked for within DNS_CHECK_MIN_INTERVAL_SECONDS of the domain's last one; the message says when."""


def check_on_request(session: Session, settings: AppSettings, domain: Domain, version: PolicyVersion, *,
                     now: datetime) -> DnsObservation:
    """A check someone asked for ("Check now"): at most one per domain every DNS_CHECK_MIN_INTERVAL_SECONDS,
    since each one probes every MX. Checks that cron runs through `flask dns check` are the operator's."""
    interval = settings.checks.min_interval_seconds
    last = latest_check(session, domain)
    if last is not None and now < last.observed_at + timedelta(seconds=interval):
        wait = math.ceil((last.observed_at + timedelta(seconds=interval) - now).total_seconds())
        raise CheckTooSoon(f"{domain.name} was checked at {last.observed_at:%H:%M:%S} UTC; a domain is checked at "
                           f"most once in {interval:g} seconds: try again in {wait} seconds.")
    return check_domain(session, settings, domain, version, now=now)


def _addresses(resolver: Resolver, host: str) -> Answer:
    """A records, or AAAA when there are none (CNAMEs followed either way)."""
    answer = resolver.lookup(host, "A")
    if answer.exists or answer.failed:
        return answer
    return resolver.lookup(host, "AAAA")


def _look_at_mx(resolver: Resolver, prober: Prober, host: str, preference: int, now: datetime,
                ca_file: str) -> MxHost:
    addresses = _addresses(resolver, host)
    mx = MxHost(host=host, preference=preference, addresses=addresses, tlsa=_tlsa(resolver, host, addresses),
                checked_at=now)
    if addresses.failed:
        mx.probe_error = f"not probed: the addresses of {host} could not be resolved ({addresses.state})"
        return mx
    result = prober(host, list(addresses.records), server_name=mx.tlsa_base_domain)
    mx.probe_error = result.error
    mx.chain = list(result.chain[:MAX_CHAIN_CERTIFICATES])
    if mx.chain:
        mx.facts = certificate_facts(mx.chain[0], host, now)
        mx.webpki_error = webpki_error(mx.chain, host, trusted_roots(ca_file), now)
    mx.address, mx.starttls, mx.tls_version = result.address, result.starttls, result.tls_version
    return mx


def _tlsa(resolver: Resolver, host: str, addresses: Answer) -> Answer:
    """TLSA at the CNAME-expanded MX name if the expansion is secure, else at the MX name (RFC 7672 2.2.3)."""
    if addresses.cnames and addresses.state == SECURE:
        expanded = resolver.lookup(tlsa_name(addresses.canonical_name), "TLSA")
        if expanded.exists or expanded.failed:
            return expanded
    return resolver.lookup(tlsa_name(host), "TLSA")


def _mx_observation(mx: MxHost) -> MxObservation:
    facts = mx.facts
    match = mx.tlsa_match
    return MxObservation(
        host=mx.host, preference=mx.preference, address=mx.address,
        tlsa_name=mx.tlsa.name, tlsa_state=mx.tlsa.state,
        tlsa_records=list(mx.tlsa.records), tlsa_match=str(match) if match else None,
        starttls=mx.starttls, tls_version=mx.tls_version,
        probe_error=mx.probe_error,
        certificate_sha256=facts.certificate_sha256 if facts else None,
        spki_sha256=facts.spki_sha256 if facts else None,
        not_after=facts.not_after if facts else None,
        names=list(facts.names) if facts else [],
        covers_host=facts.covers_host if facts else None,
        webpki_error=mx.webpki_error,
        chain_pem="".join(c.public_bytes(Encoding.PEM).decode("ascii") for c in mx.chain) or None,
    )


def trusted_roots(path: str) -> list[x509.Certificate]:
    """The CA bundle at `path`, parsed once per file version."""
    try:
        stamp = os.stat(path).st_mtime_ns
    except OSError:
        return []
    return _load_roots(path, stamp)


@functools.lru_cache(maxsize=4)
def _load_roots(path: str, stamp: int) -> list[x509.Certificate]:
    with open(path, "rb") as file:
        return x509.load_pem_x509_certificates(file.read())


def record_present_since(session: Session, domains: list[Domain], host: str, record: str) -> datetime | None:
    """Since when checks of `domains` have seen `record` in the TLSA RRset of MX `host` without a break.

    Only the checks of `domains` count: what another tenant's checks saw is not this tenant's to know.
    """
    rows = session.execute(
        select(DnsObservation.observed_at, MxObservation.tlsa_records)
        .join(MxObservation.observation)
        .where(MxObservation.host == host.rstrip(".").lower(),
               DnsObservation.domain_id.in_([domain.id for domain in domains]))
        .order_by(DnsObservation.observed_at.desc(), DnsObservation.id.desc())
    )
    since = None
    for observed_at, texts in rows:
        if record not in {str(r) for r in parse_tlsa_records(texts)}:
            break
        since = observed_at
    return since


def rollover_plan(session: Session, settings: AppSettings, current: TlsaRecord, next_record: TlsaRecord, *,
                  now: datetime,
                  domains: list[Domain], mx_host: str | None = None, ttl: int | None = None,
                  published_at: datetime | None = None, deployed_at: datetime | None = None) -> RolloverPlan:
    """Plan a rollover from the `current` record to `next_record`; with `mx_host`, against the TLSA
    records DNS has now and since when the checks of `domains` saw them.

    The TTL defaults to the one this service published the records with, else to what the resolver
    returns for them, else one hour; when the next
    record was published defaults to when this service published it (`tlsa publish`), else to
    when the checks first saw it. A record that is not DNSSEC-secure is no record for DANE senders.
    """
    published, answer = None, None
    if mx_host:
        answer = resolver_for(settings).lookup(tlsa_name(mx_host), "TLSA")
        published = parse_tlsa_records(answer.records)
        # What this service published says the zone's TTL; a resolver's answer gives what is left in its cache.
        ttl = ttl if ttl is not None else published_ttl(session, mx_host) or answer.ttl
        published_at = (published_at or published_since(session, mx_host, next_record)
                        or record_present_since(session, domains, mx_host, str(next_record)))
    plan = plan_rollover(current, next_record, ttl=DEFAULT_TLSA_TTL if ttl is None else ttl, now=now,
                         published=published, next_published_since=published_at, deployed_at=deployed_at)
    if plan.changes and answer is not None and answer.state != SECURE:
        # The next record counts only once DANE senders can trust it (RFC 7672 section 2.2).
        plan = dataclasses.replace(plan, warnings=(*plan.warnings, f"{answer.name} is {answer.state} "
                                                   f"({answer.rcode}), not DNSSEC-secure: DANE senders do not "
                                                   "see the next record"))
    return plan


def observation_summary(observation: DnsObservation) -> dict:
    """An observation as plain JSON-ready values (CLI --json, and for pages)."""
    return {
        "domain": observation.domain.name,
        "kind": observation.kind,
        "status": observation.status,
        "observed_at": observation.observed_at.isoformat(timespec="seconds"),
        "policy_id": observation.policy_id,
        "findings": observation.findings,
        "mx_hosts": [
            {
                "host": mx.host, "preference": mx.preference, "address": mx.address,
                "tlsa_name": mx.tlsa_name, "tlsa_state": mx.tlsa_state, "tlsa_records": mx.tlsa_records,
                "tlsa_match": mx.tlsa_match, "starttls": mx.starttls, "tls_version": mx.tls_version,
                "probe_error": mx.probe_error, "certificate_sha256": mx.certificate_sha256,
                "spki_sha256": mx.spki_sha256, "not_after": mx.not_after.isoformat() if mx.not_after else None,
                "names": mx.names, "covers_host": mx.covers_host, "webpki_error": mx.webpki_error,
            }
            for mx in observation.mx_hosts
        ],
    }


# The checks about the domain as a whole, in the order pages show them; the rest are about MX hosts.
DOMAIN_CHECKS = (
    ("sts_record", "_mta-sts TXT record"),
    ("tlsrpt_record", "_smtp._tls TXT record"),
    ("policy_host", "Policy host"),
    ("mx_set", "MX records and mx patterns"),
)


def grouped_findings(observation: DnsObservation) -> tuple[list[tuple[str, list[dict]]], dict[int, list[dict]]]:
    """A check's findings as [(title, findings)] per DOMAIN_CHECKS, and {MxObservation id: findings}.

    A finding about an MX host names the host or its TLSA owner name; anything else comes last.
    """
    by_check: dict[str, list[dict]] = {check: [] for check, _ in DOMAIN_CHECKS}
    by_mx: dict[int, list[dict]] = {mx.id: [] for mx in observation.mx_hosts}
    owners = {name: mx.id for mx in observation.mx_hosts for name in (mx.host, mx.tlsa_name)}
    other = []
    for finding in observation.findings:
        if finding.get("check") in by_check:
            by_check[finding["check"]].append(finding)
        elif finding["subject"] in owners:
            by_mx[owners[finding["subject"]]].append(finding)
        else:
            other.append(finding)
    groups = [(title, by_check[check]) for check, title in DOMAIN_CHECKS if by_check[check]]
    return groups + ([("Other findings", other)] if other else []), by_mx


def tlsa_rows(mx: MxObservation) -> list[tuple[str, bool]]:
    """Each TLSA record an MX observation saw, and whether it is the one the presented chain matched."""
    rows = []
    for text in mx.tlsa_records:
        try:
            matched = mx.tlsa_match is not None and str(parse_tlsa(text)) == mx.tlsa_match
        except TlsaError:
            matched = False
        rows.append((text, matched))
    return rows




def check_results(observation: DnsObservation) -> dict[str, bool]:
    """Per check of a stored DNS check, whether it found no error."""
    failed = {finding.get("check") for finding in observation.findings if finding["level"] == checks.ERROR}
    return {check: check not in failed for check in CHECKS}








def dns_states(session: Session, domains: list[Domain]) -> dict[int, str]:
    """What the latest DNS check says, keyed by domain id (absent: never checked): its status (`ok`,
    `problems`, `unchecked`), or `outdated` when it checked a policy id that is no longer current."""
    versions = current_versions(session, domains)
    return {
        check.domain_id: check.status if check.policy_id == versions[check.domain_id].policy_id else "outdated"
        for check in latest_observations(session, "check", [domain.id for domain in domains])
    }
