"""Publishing a domain's `_mta-sts` TXT record by RFC 2136, and the records its owner publishes.

RFC 8461 section 8.1: the new policy body is served before the TXT id changes; when that
holds is for the caller to wait out (stspolicy.propagation). An update is read back from
the primary server. Every attempt is stored as an observation, and a failure raises
PublishError so that it is never silent. An update that must wait for its time is stored
first as a PENDING job, which exactly one process claims and writes.
"""


from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from stspolicy.base.audit import record_event
from stspolicy.base.settings import AppSettings
from stspolicy.dns.findings import ERROR, OK, Finding
from stspolicy.dns.models import CLAIMED, PENDING, PUBLISH_MODES, DnsObservation, DnsSetting
from stspolicy.dns.queries import latest_observations
from stspolicy.dns.records import DnsRecord, records_to_publish, render_sts_record
from stspolicy.dns.rfc2136 import PublishError, TsigKey, read_txt, replace_txt
from stspolicy.extensions import utcnow
from stspolicy.policies.models import Domain, PolicyVersion
from stspolicy.policies.names import InvalidName, normalize_domain
from stspolicy.policies.rules import policy_warnings


@dataclass(frozen=True)
class Target:
    """Where the `_mta-sts` TXT of a domain is written."""

    server: str
    zone: str
    owner: str
    key: TsigKey


def publish_target(session: Session, settings: AppSettings, domain: Domain) -> Target | None:
    """None for a domain whose records the admin publishes by hand."""
    setting = session.get(DnsSetting, domain.id)
    if setting is None or setting.publish_mode == "manual":
        return None
    if setting.publish_mode == "delegated":
        return Target(settings.updates.delegation_server, settings.records.delegation_zone,
                      sts_target(settings, domain.name, setting),
                      tsig_key(settings, settings.updates.delegation_tsig_key))
    return Target(setting.update_server, setting.update_zone, f"_mta-sts.{domain.name}",
                  tsig_key(settings, setting.tsig_key))


def tsig_key(settings: AppSettings, name: str) -> TsigKey:
    keys = settings.updates.tsig_keys
    if name not in keys:
        raise PublishError(f"no TSIG key {name!r} in DNS_TSIG_KEYS")
    algorithm, secret = keys[name]
    return TsigKey(name, algorithm, secret)


def set_publish_mode(session: Session, settings: AppSettings, domain: Domain, mode: str, *, actor: str,
                     server: str | None = None, zone: str | None = None, key: str | None = None) -> DnsSetting:
    """Choose how the domain's TXT record is published; checks the settings it needs. Audited."""
    if mode not in PUBLISH_MODES:
        raise PublishError(f"invalid mode {mode!r}: one of {', '.join(PUBLISH_MODES)}")
    if mode == "rfc2136":
        if not (server and zone and key):
            raise PublishError("rfc2136 needs --server, --zone and --key")
        try:
            zone = normalize_domain(zone)
        except InvalidName as error:
            raise PublishError(str(error)) from None
        if not f"_mta-sts.{domain.name}".endswith("." + zone):
            raise PublishError(f"_mta-sts.{domain.name} is not inside zone {zone}")
        tsig_key(settings, key.rstrip(".").lower())
    if mode == "delegated" and not (settings.records.delegation_zone and settings.updates.delegation_tsig_key):
        raise PublishError("delegated mode needs DELEGATION_ZONE, DELEGATION_SERVER and DELEGATION_TSIG_KEY")
    setting = session.get(DnsSetting, domain.id) or DnsSetting(domain=domain)
    setting.publish_mode = mode
    rfc2136 = mode == "rfc2136"
    setting.update_server = server if rfc2136 else None
    setting.update_zone = zone if rfc2136 else None
    setting.tsig_key = key.rstrip(".").lower() if rfc2136 else None
    setting.updated_at = utcnow()
    session.add(setting)
    record_event(session, actor, "dns.mode", domain, mode=mode,
                 where=f" (zone {zone} at {server}, key {setting.tsig_key})" if rfc2136 else "")
    session.commit()
    return setting


# A claim this old belongs to a process that died while writing: far longer than the two DNS
# exchanges of an update take, each bounded by DNS_TIMEOUT.
ABANDONED_AFTER = timedelta(minutes=5)


def checked_target(session: Session, settings: AppSettings, domain: Domain, version: PolicyVersion,
                   job: DnsObservation | None = None) -> Target | None:
    """`publish_target`, with a setting that cannot work stored as a failed attempt before it is raised."""
    try:
        return publish_target(session, settings, domain)
    except PublishError as error:
        _record(session, domain, version, Finding(ERROR, "publish-failed", domain.name, str(error)), job)
        raise


def publish_policy_id(session: Session, settings: AppSettings, domain: Domain, version: PolicyVersion,
                      job: DnsObservation | None = None) -> DnsObservation | None:
    """Write `v=STSv1; id=<version's id>` now, where the domain's mode says; None in manual mode.

    The caller has made sure that every worker serves `version`. With `job` (claimed by this
    process), the attempt is stored in that row rather than a new one.
    """
    target = checked_target(session, settings, domain, version, job)
    if target is None:
        if job is not None:
            session.delete(job)
            session.commit()
        return None
    value = render_sts_record(version.policy_id)
    updates = settings.updates
    try:
        replace_txt(target.server, target.zone, target.owner, value, key=target.key,
                    ttl=updates.record_ttl, timeout=updates.timeout)
        seen = read_txt(target.server, target.owner, timeout=updates.timeout)
        if seen != [value]:
            raise PublishError(f"{target.server} answers {seen} for {target.owner} after the update, not {value!r}")
    except PublishError as error:
        _record(session, domain, version, Finding(
            ERROR, "publish-failed", target.owner,
            f"policy id {version.policy_id} is served, but {target.owner} was not updated: {error}"), job)
        raise PublishError(f"policy id {version.policy_id} is served, but {target.owner} was not updated: "
                           f"{error}") from None
    return _record(session, domain, version, Finding(OK, "published", target.owner,
                                                     f"{target.owner} TXT {value!r} at {target.server}"), job)


def record_pending(session: Session, domain: Domain, version: PolicyVersion, target: Target,
                   due_at: datetime, serving_revision: int) -> DnsObservation:
    """Store the update of the domain's id as a job to run from `due_at`, once every serving node has
    applied `serving_revision`, in place of a pending one.

    A job writes the id that is current when it runs, so one pending job per domain is enough.
    """
    session.execute(delete(DnsObservation).where(
        DnsObservation.domain_id == domain.id, DnsObservation.kind == "publish", DnsObservation.status == PENDING))
    job = DnsObservation(
        domain=domain, kind="publish", status=PENDING, policy_id=version.policy_id, answers=[],
        serving_revision=serving_revision,
        findings=[Finding(OK, "publish-pending", target.owner,
                          f"{target.owner} gets policy id {version.policy_id} once every worker and serving node "
                          f"serves it, from {due_at:%H:%M:%S} UTC").as_dict()],
    )
    session.add(job)
    session.commit()
    return job


def waiting_jobs(session: Session, now: datetime, domain_ids: list[int] | None = None) -> list[DnsObservation]:
    """Pending updates, and claimed ones whose process died while writing, oldest first."""
    query = select(DnsObservation).where(DnsObservation.kind == "publish", _claimable(now))
    if domain_ids is not None:
        query = query.where(DnsObservation.domain_id.in_(domain_ids))
    return list(session.scalars(query.order_by(DnsObservation.id)))


def claim_job(session: Session, job_id: int, domain_id: int, policy_id: str, now: datetime) -> bool:
    """Take a waiting job of the domain for this process, to write `policy_id`; True if this call took it.
    The caller commits.

    The UPDATE's row count decides: the database locks the row for it, and a second process's
    UPDATE then finds it claimed already, so two processes never both write. Refused too while
    another update of the same domain is being written, so that an older id never lands last.
    """
    other = aliased(DnsObservation)
    writing = exists().where(other.domain_id == domain_id, other.kind == "publish", other.status == CLAIMED,
                             other.observed_at >= now - ABANDONED_AFTER, other.id != job_id)
    result = session.execute(
        update(DnsObservation).where(DnsObservation.id == job_id, _claimable(now), ~writing)
        .values(status=CLAIMED, observed_at=now, policy_id=policy_id),
        execution_options={"synchronize_session": False},
    )
    return result.rowcount == 1


def _claimable(now: datetime):
    return or_(DnsObservation.status == PENDING,
               and_(DnsObservation.status == CLAIMED, DnsObservation.observed_at < now - ABANDONED_AFTER))


def _record(session: Session, domain: Domain, version: PolicyVersion, finding: Finding,
            job: DnsObservation | None = None) -> DnsObservation:
    observation = job or DnsObservation(domain=domain, kind="publish", answers=[])
    observation.status = "ok" if finding.level == OK else "problems"
    observation.policy_id = version.policy_id
    observation.findings = [finding.as_dict()]
    observation.observed_at = utcnow()
    session.add(observation)
    session.commit()
    return observation


def sts_target(settings: AppSettings, domain: str, setting: DnsSetting | None) -> str:
    """Delegated mode (RFC 8461 section 8.2): the name in our zone that `_mta-sts.<domain>` points to."""
    zone = settings.records.delegation_zone
    if setting is None or setting.publish_mode != "delegated" or not zone:
        return ""
    return f"_mta-sts.{domain}.{zone}"


def dns_records(settings: AppSettings, domain: str, policy_id: str, sts_target: str = "") -> list[DnsRecord]:
    """The records `domain` must publish for `policy_id`, with this deployment's settings.

    `sts_target`: the domain is delegated (RFC 8461 section 8.2) and `_mta-sts` is a CNAME there.
    """
    records = settings.records
    return records_to_publish(
        domain,
        policy_id,
        rua=records.rua,
        policy_host_cname=records.policy_host_cname,
        policy_host_addresses=records.policy_host_addresses,
        sts_target=sts_target,
        sts_ttl=settings.updates.record_ttl,
    )


def domain_summary(domain: Domain, version: PolicyVersion, records: list[DnsRecord]) -> dict:
    """A domain's current state, with the records its owner publishes, as plain JSON-ready values."""
    return {
        "domain": domain.name,
        "domain_unicode": domain.unicode_name,
        "policy_id": version.policy_id,
        "mode": version.mode,
        "mx": list(version.mx_patterns),
        "max_age": version.max_age,
        "policy_text": version.policy_text,
        "created_at": domain.created_at.isoformat(),
        "updated_at": version.created_at.isoformat(),
        "removal_requested_at": domain.removal_requested_at.isoformat() if domain.removal_requested_at else None,
        "dns_records": [record.as_dict() for record in records],
        "warnings": [warning.as_dict() for warning in policy_warnings(domain.name, version.policy)],
    }


def published_records(session: Session, settings: AppSettings, domain: Domain, policy_id: str) -> list[DnsRecord]:
    """The records the domain's owner publishes, in the domain's publishing mode (delegated: a CNAME)."""
    setting = session.get(DnsSetting, domain.id)
    return dns_records(settings, domain.name, policy_id, sts_target=sts_target(settings, domain.name, setting))


def publishing_now(session: Session, domains: list[Domain]) -> set[int]:
    """The ids of `domains` whose `_mta-sts` update is pending or being written."""
    return {attempt.domain_id for attempt in latest_observations(session, "publish", [domain.id for domain in domains])
            if attempt.status in (PENDING, CLAIMED)}


def publishing_failures(session: Session, domains: list[Domain]) -> dict[int, DnsObservation]:
    """Domains whose latest automatic publishing attempt failed, keyed by id, with that attempt.

    Left out: domains back in manual mode, those where a later check found the id in DNS anyway,
    and those whose update is still to come (pending is not failed).
    """
    failed = {attempt.domain_id: attempt for attempt in latest_observations(
        session, "publish", [domain.id for domain in domains]) if attempt.status == "problems"}
    if not failed:
        return {}
    for domain_id in session.scalars(select(DnsSetting.domain_id).where(
            DnsSetting.domain_id.in_(failed), DnsSetting.publish_mode == "manual")):
        del failed[domain_id]
    later_checks = session.scalars(select(DnsObservation).where(
        DnsObservation.kind == "check", DnsObservation.domain_id.in_(failed),
        DnsObservation.id > min((attempt.id for attempt in failed.values()), default=0)))
    for check in later_checks:
        attempt = failed.get(check.domain_id)
        if (attempt and check.id > attempt.id and check.policy_id == attempt.policy_id
                and any(finding["code"] == "sts-id-current" for finding in check.findings)):
            del failed[check.domain_id]
    return failed
