"""Publishing a domain's `_mta-sts` TXT record by RFC 2136, and the records its owner publishes.

RFC 8461 section 8.1: the new policy body is served before the TXT id changes. The
update goes out after the new version is committed and every worker has had time to
load it; it is then read back from the primary server. Every attempt is stored as an
observation, and a failure raises PublishError so that it is never silent.
"""


import time
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from stspolicy.dns.findings import ERROR, OK, Finding
from stspolicy.dns.models import PUBLISH_MODES, DnsObservation, DnsSetting
from stspolicy.dns.queries import latest_observations
from stspolicy.dns.records import DnsRecord, records_to_publish, render_sts_record
from stspolicy.dns.rfc2136 import PublishError, TsigKey, read_txt, replace_txt
from stspolicy.extensions import utcnow
from stspolicy.policies.models import Domain, PolicyVersion
from stspolicy.policies.names import InvalidName, normalize_domain


@dataclass(frozen=True)
class Target:
    """Where the `_mta-sts` TXT of a domain is written."""

    server: str
    zone: str
    owner: str
    key: TsigKey


def publish_target(session: Session, domain: Domain) -> Target | None:
    """None for a domain whose records the admin publishes by hand."""
    setting = session.get(DnsSetting, domain.id)
    if setting is None or setting.publish_mode == "manual":
        return None
    config = current_app.config
    if setting.publish_mode == "delegated":
        return Target(config["DELEGATION_SERVER"], config["DELEGATION_ZONE"], sts_target(domain.name, setting),
                      tsig_key(config["DELEGATION_TSIG_KEY"]))
    return Target(setting.update_server, setting.update_zone, f"_mta-sts.{domain.name}", tsig_key(setting.tsig_key))


def tsig_key(name: str) -> TsigKey:
    keys = current_app.config["DNS_TSIG_KEYS"]
    if name not in keys:
        raise PublishError(f"no TSIG key {name!r} in DNS_TSIG_KEYS")
    algorithm, secret = keys[name]
    return TsigKey(name, algorithm, secret)


def set_publish_mode(session: Session, domain: Domain, mode: str, *, server: str | None = None,
                     zone: str | None = None, key: str | None = None) -> DnsSetting:
    """Choose how the domain's TXT record is published; checks the settings it needs."""
    config = current_app.config
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
        tsig_key(key.rstrip(".").lower())
    if mode == "delegated" and not (config["DELEGATION_ZONE"] and config["DELEGATION_TSIG_KEY"]):
        raise PublishError("delegated mode needs DELEGATION_ZONE, DELEGATION_SERVER and DELEGATION_TSIG_KEY")
    setting = session.get(DnsSetting, domain.id) or DnsSetting(domain=domain)
    setting.publish_mode = mode
    rfc2136 = mode == "rfc2136"
    setting.update_server = server if rfc2136 else None
    setting.update_zone = zone if rfc2136 else None
    setting.tsig_key = key.rstrip(".").lower() if rfc2136 else None
    setting.updated_at = utcnow()
    session.add(setting)
    session.commit()
    return setting


def publish_policy_id(session: Session, domain: Domain, version: PolicyVersion) -> DnsObservation | None:
    """Write `v=STSv1; id=<version's id>` where the domain's mode says; None in manual mode."""
    try:
        target = publish_target(session, domain)
    except PublishError as error:
        _record(session, domain, version, Finding(ERROR, "publish-failed", domain.name, str(error)))
        raise
    if target is None:
        return None
    _wait_until_served(version)
    value = render_sts_record(version.policy_id)
    config = current_app.config
    try:
        replace_txt(target.server, target.zone, target.owner, value, key=target.key,
                    ttl=config["DNS_RECORD_TTL"], timeout=config["DNS_TIMEOUT"])
        seen = read_txt(target.server, target.owner, timeout=config["DNS_TIMEOUT"])
        if seen != [value]:
            raise PublishError(f"{target.server} answers {seen} for {target.owner} after the update, not {value!r}")
    except PublishError as error:
        _record(session, domain, version, Finding(
            ERROR, "publish-failed", target.owner,
            f"policy id {version.policy_id} is served, but {target.owner} was not updated: {error}"))
        raise PublishError(f"policy id {version.policy_id} is served, but {target.owner} was not updated: "
                           f"{error}") from None
    return _record(session, domain, version, Finding(OK, "published", target.owner,
                                                     f"{target.owner} TXT {value!r} at {target.server}"))


def _wait_until_served(version: PolicyVersion) -> None:
    """Every worker reloads policies within SNAPSHOT_REFRESH_SECONDS of a commit; wait that out twice."""
    delay = 2 * current_app.config["SNAPSHOT_REFRESH_SECONDS"]
    remaining = (version.created_at.timestamp() + delay) - time.time()
    if remaining > 0:
        time.sleep(remaining)


def _record(session: Session, domain: Domain, version: PolicyVersion, finding: Finding) -> DnsObservation:
    observation = DnsObservation(
        domain=domain, kind="publish", status="ok" if finding.level == OK else "problems",
        policy_id=version.policy_id, findings=[finding.as_dict()], answers=[],
    )
    session.add(observation)
    session.commit()
    return observation


def sts_target(domain: str, setting: DnsSetting | None) -> str:
    """Delegated mode (RFC 8461 section 8.2): the name in our zone that `_mta-sts.<domain>` points to."""
    zone = current_app.config["DELEGATION_ZONE"]
    if setting is None or setting.publish_mode != "delegated" or not zone:
        return ""
    return f"_mta-sts.{domain}.{zone}"


def dns_records(domain: str, policy_id: str, sts_target: str = "") -> list[DnsRecord]:
    """The records `domain` must publish for `policy_id`, with this deployment's settings.

    `sts_target`: the domain is delegated (RFC 8461 section 8.2) and `_mta-sts` is a CNAME there.
    """
    config = current_app.config
    return records_to_publish(
        domain,
        policy_id,
        rua=config["TLSRPT_RUA"],
        policy_host_cname=config["POLICY_HOST_CNAME"],
        policy_host_addresses=config["POLICY_HOST_ADDRESSES"],
        sts_target=sts_target,
        sts_ttl=config["DNS_RECORD_TTL"],
    )


def published_records(session: Session, domain: Domain, policy_id: str) -> list[DnsRecord]:
    """The records the domain's owner publishes, in the domain's publishing mode (delegated: a CNAME)."""
    setting = session.get(DnsSetting, domain.id)
    return dns_records(domain.name, policy_id, sts_target=sts_target(domain.name, setting))


def publishing_failures(session: Session, domains: list[Domain]) -> dict[int, DnsObservation]:
    """Domains whose latest automatic publishing attempt failed, keyed by id, with that attempt.

    Left out: domains back in manual mode, and those where a later check found the id in DNS anyway.
    """
    failed = {attempt.domain_id: attempt for attempt in latest_observations(
        session, "publish", [domain.id for domain in domains]) if attempt.status != "ok"}
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
