"""Publishing an MX host's TLSA records: "current + next" by RFC 2136, read back, pruned when unused.

The records go to `_25._tcp.<host>` in the zone of a hosted domain published in rfc2136
mode (the same server and TSIG key as its `_mta-sts` record); where no such zone holds the
name, the admin publishes by hand and this only checks DNS for the records. Each record is
kept as a TlsaPublication: when the primary server (or, by hand, the resolver) first had
it, when the validating resolver first gave it DNSSEC-secure, and when the certificate the
MX host serves last matched it. RFC 7671 section 8.1: a record goes only once nothing has
presented it for twice the TTL.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from stspolicy.base.settings import AppSettings
from stspolicy.dns.answers import SECURE, Answer
from stspolicy.dns.check import DEFAULT_TLSA_TTL, resolver_for
from stspolicy.dns.dane import TlsaRecord, load_certificates, parse_tlsa_records, tlsa_name, tlsa_record
from stspolicy.dns.models import DnsObservation, DnsSetting, MxObservation, StagedCertificate, TlsaPublication
from stspolicy.dns.publish import tsig_key
from stspolicy.dns.queries import active_publications, pending_stage
from stspolicy.dns.resolver import Resolver
from stspolicy.dns.rfc2136 import PublishError, TsigKey, read_rrset, replace_rrset
from stspolicy.policies.models import Domain


@dataclass(frozen=True)
class TlsaTarget:
    server: str
    zone: str
    key: TsigKey


def tlsa_target(session: Session, settings: AppSettings, host: str) -> TlsaTarget | None:
    """Where `_25._tcp.<host>` may be written: the deepest rfc2136 zone of a hosted domain that holds it."""
    owner = tlsa_name(host)
    candidates = [setting for setting in session.scalars(select(DnsSetting).where(DnsSetting.publish_mode == "rfc2136"))
                if setting.update_zone and owner.endswith("." + setting.update_zone)]
    if not candidates:
        return None
    setting = max(candidates, key=lambda setting: len(setting.update_zone))
    return TlsaTarget(setting.update_server, setting.update_zone, tsig_key(settings, setting.tsig_key))


@dataclass
class TlsaOutcome:
    """What `publish_tlsa` did and what the validating resolver says now."""

    host: str
    owner: str
    ttl: int
    records: list[TlsaRecord]  # the RRset wanted now
    added: list[TlsaRecord] = field(default_factory=list)
    removed: list[TlsaRecord] = field(default_factory=list)
    server: str | None = None  # the primary written to; None: published by hand
    answer: Answer | None = None  # the validating resolver's answer afterwards

    @property
    def visible(self) -> list[TlsaRecord]:
        return [record for record in self.records if record in parse_tlsa_records(self.answer.records)]

    @property
    def in_dns(self) -> bool:
        """Every wanted record is in DNS: written to the primary, or, by hand, seen through the resolver."""
        return self.server is not None or len(self.visible) == len(self.records)

    def zone_lines(self) -> list[str]:
        return [f"{self.owner}. {self.ttl} IN TLSA {record}" for record in self.records]

    def resolver_says(self) -> str:
        """The validating resolver's view, and why it is not DNSSEC-secure when it is not."""
        answer = self.answer
        shown = len(self.visible)
        if answer.state == SECURE:
            if shown == len(self.records):
                return f"the validating resolver answers {self.owner} DNSSEC-secure with all {shown} records"
            return (f"the validating resolver answers {self.owner} DNSSEC-secure with {shown} of the "
                    f"{len(self.records)} records: it may hold the old set for up to {self.ttl} s")
        if answer.state == "insecure":
            return (f"the validating resolver answers {self.owner} insecure: the zone is not DNSSEC-signed or its "
                    "chain of trust is broken, so senders do not use DANE here")
        return (f"the validating resolver could not validate {self.owner} ({answer.state}, {answer.rcode}): "
                "DANE senders will not deliver to this host")


def _aged_out(row: TlsaPublication | None, now: datetime, ttl: int) -> bool:
    """Nothing presented the record for twice the TTL (and it was not published within that time)."""
    if row is None:
        return False
    since = max(time for time in (row.published_at, row.last_presented_at) if time is not None)
    return now - since >= timedelta(seconds=2 * ttl)


def publish_tlsa(session: Session, settings: AppSettings, host: str, *, current: list[TlsaRecord],
                 upcoming: list[TlsaRecord] = (), prune: bool = False, ttl: int | None = None, now: datetime,
                 resolver: Resolver | None = None) -> TlsaOutcome:
    """Make `_25._tcp.<host>` hold `current` (what the host presents now) and `upcoming` (the next
    certificate's), keeping the other records it has; with `prune`, drop those nothing presented
    for twice the TTL. The records of a staged certificate are never pruned. Commits."""
    owner = tlsa_name(host)
    resolver = resolver or resolver_for(settings)
    timeout = settings.checks.timeout
    target = tlsa_target(session, settings, host)
    rows = active_publications(session, host)
    if target:  # the resolver is not asked first: it would cache the old RRset for the read-back
        existing = parse_tlsa_records(read_rrset(target.server, owner, "TLSA", timeout=timeout))
        answer_ttl = None
    else:
        before = resolver.lookup(owner, "TLSA")
        existing, answer_ttl = parse_tlsa_records(before.records), before.ttl
    ttl = ttl or next((row.ttl for row in rows.values()), None) or answer_ttl or DEFAULT_TLSA_TTL
    for record in existing:  # records found without a row: counted as published now
        if str(record) not in rows:
            rows[str(record)] = _new_row(session, host, record, ttl, now)
    kept = list(dict.fromkeys([*current, *upcoming, *_staged_records(session, host)]))
    wanted = list(dict.fromkeys([*current, *upcoming]))
    wanted += [record for record in existing if record not in wanted
               and (record in kept or not (prune and _aged_out(rows.get(str(record)), now, ttl)))]
    outcome = TlsaOutcome(host, owner, ttl, wanted, added=[r for r in wanted if r not in existing],
                          removed=[r for r in existing if r not in wanted])
    if target:
        _write(target, owner, outcome, existing, timeout)
        outcome.server = target.server
    after = resolver.lookup(owner, "TLSA")
    outcome.answer = after
    seen = parse_tlsa_records(after.records)
    for record in wanted:
        row = rows.get(str(record))
        if row is None and (target or record in seen):
            row = rows[str(record)] = _new_row(session, host, record, ttl, now)
        if row is not None:
            row.ttl = ttl
            if record in current:
                row.last_presented_at = now
            if after.state == SECURE and record in seen and row.secure_at is None:
                row.secure_at = now
    if target:
        gone = [rows[str(record)] for record in outcome.removed]
    else:  # by hand: a record is gone once the resolver no longer answers with it
        still = {str(record) for record in existing}
        gone = [row for text, row in rows.items() if text not in still and row.published_at < now]
    for row in gone:
        row.removed_at = now
    session.commit()
    return outcome


def _write(target: TlsaTarget, owner: str, outcome: TlsaOutcome, existing: list[TlsaRecord], timeout: float) -> None:
    """Replace the RRset when it changes, then read it back from the primary."""
    if set(outcome.records) == set(existing) and not outcome.added:
        return
    replace_rrset(target.server, target.zone, owner, "TLSA", [str(record) for record in outcome.records],
                  key=target.key, ttl=outcome.ttl, timeout=timeout)
    back = parse_tlsa_records(read_rrset(target.server, owner, "TLSA", timeout=timeout))
    if set(back) != set(outcome.records):
        raise PublishError(f"{target.server} answers {', '.join(map(str, back)) or 'nothing'} for {owner} after "
                           "the update, not the records written")


def _new_row(session: Session, host: str, record: TlsaRecord, ttl: int, now: datetime) -> TlsaPublication:
    row = TlsaPublication(host=host, record=str(record), ttl=ttl, published_at=now)
    session.add(row)
    return row


def _staged_records(session: Session, host: str) -> list[TlsaRecord]:
    """What a staged certificate may be pinned by: its key's `3 1 1` and its issuer's `2 1 1`."""
    staged = pending_stage(session, host)
    if staged is None:
        return []
    chain = load_certificates(staged.chain_pem.encode("ascii"))
    return [tlsa_record(chain[0], 3), *(tlsa_record(issuer, 2) for issuer in chain[1:2])]


@dataclass(frozen=True)
class DaneHostState:
    """An MX host's DANE over time, for the pages: records published, certificates presented, the staged one."""

    host: str
    publications: list[TlsaPublication]  # newest first, removed ones too
    presented: list  # MxObservation rows of the domain's checks, newest first
    staged: StagedCertificate | None
    staged_subject: str | None = None
    staged_not_after: datetime | None = None
    go_live: datetime | None = None  # when the staged certificate may be installed; None: its record is not in DNS


HISTORY = 10


def dane_host_state(session: Session, domain: Domain, host: str) -> DaneHostState:
    """What this service published for `host`, what the checks of `domain` saw it present, what waits."""
    publications = list(session.scalars(select(TlsaPublication).where(TlsaPublication.host == host)
                                         .order_by(TlsaPublication.published_at.desc(), TlsaPublication.id.desc())
                                         .limit(HISTORY)))
    presented = list(session.scalars(
        select(MxObservation).join(MxObservation.observation)
        .where(MxObservation.host == host, DnsObservation.domain_id == domain.id,
               MxObservation.spki_sha256.is_not(None))
        .order_by(DnsObservation.observed_at.desc(), MxObservation.id.desc()).limit(HISTORY)))
    staged = pending_stage(session, host)
    if staged is None:
        return DaneHostState(host, publications, presented, None)
    chain = load_certificates(staged.chain_pem.encode("ascii"))
    rows = active_publications(session, host)
    waits = [row.published_at + timedelta(seconds=2 * row.ttl) for record in _staged_records(session, host)
             if (row := rows.get(str(record))) is not None]
    return DaneHostState(host, publications, presented, staged, chain[0].subject.rfc4514_string(),
                         chain[0].not_valid_after_utc, max(waits) if waits else None)
