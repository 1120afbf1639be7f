"""The settings services use, as typed values: built once per app from the environment
(stspolicy.config.build_settings) and passed by the entry points to every service that needs one.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from flask import current_app


@dataclass(frozen=True)
class ServingSettings:
    """How a policy change is served: SNAPSHOT_REFRESH_SECONDS, POLICY_FILES_DIR."""

    refresh_seconds: float  # each worker reloads its policies within this time of a change (0: tests)
    policy_files_dir: Path | None  # None: no files for nginx, the application serves policies


@dataclass(frozen=True)
class RecordSettings:
    """What hosted domains' DNS records say: TLSRPT_RUA, POLICY_HOST_CNAME, POLICY_HOST_ADDRESSES, DELEGATION_ZONE."""

    rua: tuple[str, ...]
    policy_host_cname: str
    policy_host_addresses: tuple[str, ...]
    delegation_zone: str  # delegated mode: `_mta-sts.<domain>` is a CNAME into this zone of ours


@dataclass(frozen=True)
class CheckSettings:
    """How domains are looked at: DNS_RESOLVERS, DNS_TIMEOUT, PROBE_*, DNS_CHECK_MIN_INTERVAL_SECONDS."""

    resolvers: tuple[str, ...]
    timeout: float
    probe_timeout: float
    probe_allowed_networks: tuple[str, ...]
    probe_ca_file: str
    probe_ehlo_name: str
    min_interval_seconds: float  # between checks asked for in the admin UI, per domain


@dataclass(frozen=True)
class UpdateSettings:
    """RFC 2136 updates of `_mta-sts` records: DNS_TSIG_KEYS, DNS_RECORD_TTL, DNS_TIMEOUT, DELEGATION_*."""

    tsig_keys: Mapping[str, tuple[str, str]]  # key name: (algorithm, secret in base64)
    record_ttl: int
    timeout: float
    delegation_server: str
    delegation_tsig_key: str


@dataclass(frozen=True)
class CertificateSettings:
    """ACME certificates of the served hosts: CERTS_DIR, ACME_*, KEY_ENCRYPTION_KEYS."""

    certs_dir: Path | None  # None: certificates are not managed here
    acme_directory_url: str
    acme_webroot: Path | None
    acme_email: str
    acme_extra_hosts: tuple[str, ...]
    acme_ca_bundle: Path | None
    key_encryption_keys: tuple[str, ...]  # Fernet keys sealing private keys in the database: the first seals


@dataclass(frozen=True)
class NodeSettings:
    """Serving nodes (`flask node sync`): NODE_NAME, NODE_{HEARTBEAT,RECONCILE,SILENT}_SECONDS."""

    name: str  # this host's name among the nodes
    heartbeat_seconds: float  # a node says it is alive, and looks for a change it was not told of, this often
    reconcile_seconds: float  # and compares all its files with the database this often
    silent_seconds: float  # a node not seen for this long is silent


@dataclass(frozen=True)
class AppSettings:
    """Every area's settings; a service takes this and reads the areas it needs."""

    serving: ServingSettings
    records: RecordSettings
    checks: CheckSettings
    updates: UpdateSettings
    certificates: CertificateSettings
    nodes: NodeSettings


def current_settings() -> AppSettings:
    """The settings of the app serving this request or running this command."""
    return current_app.extensions["settings"]
