"""Settings from the environment, read in one place.

Every setting is an environment variable; a secret may instead be given as a file
named by `<NAME>_FILE`. Bad values fail loudly at start. The one deliberate default is
the embedded SQLite database under the instance folder.
"""

import ipaddress
import os
import secrets
import socket
import ssl
import tempfile
from collections.abc import Mapping
from pathlib import Path

import limits
from cryptography.fernet import Fernet
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from stspolicy.base.settings import (
    AppSettings,
    CertificateSettings,
    CheckSettings,
    NodeSettings,
    RecordSettings,
    ServingSettings,
    UpdateSettings,
)
from stspolicy.dns.records import RecordError, check_rua_uri, encode_rua_uri
from stspolicy.dns.resolver import split_server
from stspolicy.extensions import REPLICA
from stspolicy.policies.names import InvalidName, normalize_domain


class ConfigError(ValueError):
    """A setting with a value that cannot work."""


def _text(env: Mapping[str, str], name: str, default: str = "") -> str:
    return env.get(name, default).strip()


def _secret(env: Mapping[str, str], name: str) -> str:
    path = env.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as error:
            raise ConfigError(f"{name}_FILE: cannot read {path}: {error.strerror}") from None
    return _text(env, name)


def _number(env: Mapping[str, str], name: str, default: float, minimum: float = 0) -> float:
    raw = _text(env, name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}: {raw!r} is not a number") from None
    if value < minimum:
        raise ConfigError(f"{name}: {raw!r} is below {minimum}")
    return value


def _words(env: Mapping[str, str], name: str) -> list[str]:
    return _text(env, name).replace(",", " ").split()


def _psycopg(url: str) -> str:
    """`postgresql://` mapped to the psycopg 3 driver we ship."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def database_url(env: Mapping[str, str], instance_path: Path) -> str:
    """DATABASE_URL, with `postgresql://` mapped to the psycopg 3 driver we ship."""
    url = _secret(env, "DATABASE_URL")
    if not url:
        return f"sqlite:///{instance_path / 'stspolicy.db'}"
    return _psycopg(url)


# TCP keepalives on PostgreSQL connections (libpq names; the URL's own values win): a server
# that vanished without closing them (a crash, a failover, a NAT that forgot them) makes an
# idle pooled connection's socket report an error within about a minute, which the pool's
# checkout check sees (extensions.py), instead of the next request failing on it.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}


def engine_options(url: str, timeout: float) -> dict:
    """PostgreSQL: keepalives, and with `timeout` (DATABASE_TIMEOUT_SECONDS) a bound on each wait.

    A connection attempt, a statement, a lock and each answer of a server that stopped answering
    (frozen, or gone without closing the connection) end with an error the entry points turn into
    503 within about `timeout` seconds, so no request waits on the database for longer.
    """
    if not url.startswith("postgresql"):
        return {}
    given = make_url(url).query
    connect_args = {name: value for name, value in KEEPALIVES.items() if name not in given}
    if timeout:
        milliseconds = int(timeout * 1000)
        connect_args.setdefault("connect_timeout", max(2, round(timeout)))  # libpq: whole seconds, 2 at least
        connect_args["options"] = f"-c statement_timeout={milliseconds} -c lock_timeout={milliseconds}"
        # The server cancels a statement at `timeout`; a server that does not answer that either is gone.
        connect_args["reply_timeout"] = timeout + 1
        return {"connect_args": connect_args, "pool_timeout": timeout}
    return {"connect_args": connect_args}


def replica_binds(env: Mapping[str, str], url: str, timeout: float) -> dict:
    """DATABASE_REPLICA_URL: a PostgreSQL hot standby of DATABASE_URL, as the engine bind REPLICA.

    The report pages and API read through it (reports/review/reading.py). Its connections are
    read-only even where the server would take a write, so nothing is ever written there.
    """
    replica = _secret(env, "DATABASE_REPLICA_URL")
    if not replica:
        return {}
    replica = _psycopg(replica)
    if not (replica.startswith("postgresql+psycopg://") and url.startswith("postgresql")):
        raise ConfigError("DATABASE_REPLICA_URL: a replica of a PostgreSQL DATABASE_URL, given as postgresql://...")
    try:
        make_url(replica)
    except ArgumentError:
        raise ConfigError("DATABASE_REPLICA_URL: not a database URL") from None
    options = engine_options(replica, timeout)
    connect_args = options.setdefault("connect_args", {})
    connect_args["options"] = " ".join(filter(None, (connect_args.get("options"),
                                                     "-c default_transaction_read_only=on")))
    return {REPLICA: {"url": replica, **options}}


def secret_key(env: Mapping[str, str], instance_path: Path) -> str:
    """SECRET_KEY from the environment, else one generated once into the instance folder."""
    key = _secret(env, "SECRET_KEY")
    if key:
        return key
    path = instance_path / "secret_key"
    if not path.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        # Written to a temporary name and linked into place: of two processes starting at once,
        # one key wins and both read it, and nobody ever reads a half-written file.
        fd, temporary = tempfile.mkstemp(prefix=".secret_key.", dir=instance_path)
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_urlsafe(48) + "\n")
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(temporary)
    key = path.read_text().strip()
    if not key:
        raise ConfigError(f"{path} is empty: delete it to have a new key generated, or set SECRET_KEY")
    return key


def _path(env: Mapping[str, str], name: str) -> Path | None:
    raw = _text(env, name)
    if raw and not os.path.isabs(raw):
        raise ConfigError(f"{name}: {raw!r} is not an absolute path")
    return Path(raw) if raw else None


def _host_names(env: Mapping[str, str], name: str) -> list[str]:
    try:
        return [normalize_domain(host) for host in _words(env, name)]
    except InvalidName as error:
        raise ConfigError(f"{name}: {error}") from None


def production_config(env: Mapping[str, str]) -> dict:
    """Settings of the production shape: policy files for nginx, ACME certificates, metrics.

    Each feature is off while its setting is empty, so `make run` needs none of them.
    """
    acme_url = _text(env, "ACME_DIRECTORY_URL")
    if acme_url and not acme_url.startswith(("https://", "http://")):
        raise ConfigError(f"ACME_DIRECTORY_URL: {acme_url!r} is not an http(s) URL")
    certs_dir, webroot = _path(env, "CERTS_DIR"), _path(env, "ACME_WEBROOT")
    if acme_url and not (certs_dir and webroot):
        raise ConfigError("ACME_DIRECTORY_URL needs CERTS_DIR and ACME_WEBROOT")
    sealing_keys = key_encryption_keys(env)
    if acme_url and not sealing_keys:
        raise ConfigError("ACME_DIRECTORY_URL needs KEY_ENCRYPTION_KEYS, which seal the private keys in the database")
    return {
        "POLICY_FILES_DIR": _path(env, "POLICY_FILES_DIR"),
        "CERTS_DIR": certs_dir,
        "ACME_DIRECTORY_URL": acme_url,
        "ACME_WEBROOT": webroot,
        "ACME_EMAIL": _text(env, "ACME_EMAIL"),
        "ACME_EXTRA_HOSTS": _host_names(env, "ACME_EXTRA_HOSTS"),
        "ACME_CA_BUNDLE": _path(env, "ACME_CA_BUNDLE"),
        "KEY_ENCRYPTION_KEYS": sealing_keys,
        "METRICS_TOKEN": _secret(env, "METRICS_TOKEN"),
        "PROMETHEUS_MULTIPROC_DIR": _path(env, "PROMETHEUS_MULTIPROC_DIR"),
        "PROXY_HOPS": _integer(env, "PROXY_HOPS", 0, minimum=0),
    }


def key_encryption_keys(env: Mapping[str, str]) -> list[str]:
    """KEY_ENCRYPTION_KEYS: Fernet keys (urlsafe base64 of 32 bytes); the first seals, any of them unseals."""
    keys = _secret(env, "KEY_ENCRYPTION_KEYS").split()
    for position, key in enumerate(keys, 1):
        try:
            Fernet(key)
        except ValueError:
            raise ConfigError(f"KEY_ENCRYPTION_KEYS: key {position} is not a Fernet key (urlsafe base64 of "
                              "32 bytes); make one with `flask cert new-key`") from None
    return keys


def node_config(env: Mapping[str, str]) -> dict:
    """Serving nodes: this host's name, how often its sync looks, and when one not seen is silent."""
    heartbeat = _number(env, "NODE_HEARTBEAT_SECONDS", 10.0, minimum=0.1)
    silent = _number(env, "NODE_SILENT_SECONDS", 60.0, minimum=0.1)
    if silent < 2 * heartbeat:
        raise ConfigError(f"NODE_SILENT_SECONDS: {silent:g} is less than twice NODE_HEARTBEAT_SECONDS "
                          f"({heartbeat:g}): a node would be silent between two heartbeats")
    name = _text(env, "NODE_NAME") or socket.gethostname()
    if len(name) > 100:
        raise ConfigError(f"NODE_NAME: {name[:20]!r}... is longer than 100 characters")
    return {
        "NODE_NAME": name,
        "NODE_HEARTBEAT_SECONDS": heartbeat,
        "NODE_RECONCILE_SECONDS": _number(env, "NODE_RECONCILE_SECONDS", 300.0, minimum=1),
        "NODE_SILENT_SECONDS": silent,
    }


def _tsig_keys(env: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """DNS_TSIG_KEYS: `name:algorithm:secret` entries (secret in base64), by key name."""
    keys = {}
    for entry in _secret(env, "DNS_TSIG_KEYS").split():
        name, _, rest = entry.partition(":")
        algorithm, _, secret = rest.partition(":")
        if not (name and algorithm and secret):
            raise ConfigError(f"DNS_TSIG_KEYS: {name or entry[:20]!r} is not name:algorithm:secret")
        keys[name.rstrip(".").lower()] = (algorithm, secret)
    return keys


def _networks(env: Mapping[str, str], name: str) -> list[str]:
    networks = _words(env, name)
    for network in networks:
        try:
            ipaddress.ip_network(network)
        except ValueError:
            raise ConfigError(f"{name}: {network!r} is not a network") from None
    return networks


def dns_config(env: Mapping[str, str]) -> dict:
    """Settings of DNS checks, STARTTLS probes and RFC 2136 publishing."""
    keys = _tsig_keys(env)
    delegation_zone = _text(env, "DELEGATION_ZONE").rstrip(".").lower()
    delegation_key = _text(env, "DELEGATION_TSIG_KEY").rstrip(".").lower()
    if delegation_key and delegation_key not in keys:
        raise ConfigError(f"DELEGATION_TSIG_KEY: no key {delegation_key!r} in DNS_TSIG_KEYS")
    if delegation_zone and not _text(env, "DELEGATION_SERVER"):
        raise ConfigError("DELEGATION_ZONE needs DELEGATION_SERVER, the primary server of that zone")
    for name in ("DNS_RESOLVERS", "DELEGATION_SERVER"):
        for server in _words(env, name):
            _check_server(name, server)
    return {
        "DNS_RESOLVERS": _words(env, "DNS_RESOLVERS"),
        "DNS_TIMEOUT": _number(env, "DNS_TIMEOUT", 5.0, minimum=0.1),
        "DNS_TSIG_KEYS": keys,
        "DNS_RECORD_TTL": _integer(env, "DNS_RECORD_TTL", 300),
        "DELEGATION_ZONE": delegation_zone,
        "DELEGATION_SERVER": _text(env, "DELEGATION_SERVER"),
        "DELEGATION_TSIG_KEY": delegation_key,
        "PROBE_TIMEOUT": _number(env, "PROBE_TIMEOUT", 10.0, minimum=0.1),
        "PROBE_ALLOWED_NETWORKS": _networks(env, "PROBE_ALLOWED_NETWORKS"),
        "PROBE_CA_FILE": _text(env, "PROBE_CA_FILE") or ssl.get_default_verify_paths().cafile or "",
        "PROBE_EHLO_NAME": _text(env, "PROBE_EHLO_NAME") or _text(env, "POLICY_HOST_CNAME") or socket.gethostname(),
        # "Check now" in the admin UI probes every MX: at most once per domain in this many seconds.
        "DNS_CHECK_MIN_INTERVAL_SECONDS": _number(env, "DNS_CHECK_MIN_INTERVAL_SECONDS", 60.0),
    }


def _check_server(name: str, server: str) -> None:
    """`address`, `address:port` or `[v6]:port`, with an IP address: resolvers are not looked up."""
    try:
        host, port = split_server(server)
        ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(f"{name}: {server!r} is not an IP address with an optional :port") from None
    if not 0 < port < 65536:
        raise ConfigError(f"{name}: {server!r} has no valid port")


def admin_hosts(env: Mapping[str, str]) -> list[str]:
    """ADMIN_HOSTS: the host names (no port) the admin UI and API answer on."""
    hosts = [host.lower().rstrip(".") for host in _words(env, "ADMIN_HOSTS")] or ["localhost", "127.0.0.1", "::1"]
    for host in hosts:
        if host.startswith("mta-sts."):
            raise ConfigError(f"ADMIN_HOSTS: {host!r} is a policy host name; choose another name")
    return hosts


def load_config(env: Mapping[str, str], instance_path: Path) -> dict:
    """Flask config from environment-style settings (os.environ, or a mapping in tests)."""
    rua = _text(env, "TLSRPT_RUA").split()  # by white space only: a URI may hold a comma
    for uri in rua:
        try:
            check_rua_uri(encode_rua_uri(uri))
        except RecordError as error:
            raise ConfigError(f"TLSRPT_RUA: {error}") from None
    addresses = _words(env, "POLICY_HOST_ADDRESSES")
    for address in addresses:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise ConfigError(f"POLICY_HOST_ADDRESSES: {address!r} is not an IP address") from None
    url = database_url(env, instance_path)
    timeout = _number(env, "DATABASE_TIMEOUT_SECONDS", 5.0)
    return {
        "SECRET_KEY": secret_key(env, instance_path),
        "SQLALCHEMY_DATABASE_URI": url,
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options(url, timeout),
        "SQLALCHEMY_BINDS": replica_binds(env, url, timeout),
        "TLSRPT_RUA": rua,
        "POLICY_HOST_CNAME": _text(env, "POLICY_HOST_CNAME").rstrip(".").lower(),
        "POLICY_HOST_ADDRESSES": addresses,
        "SNAPSHOT_REFRESH_SECONDS": _number(env, "SNAPSHOT_REFRESH_SECONDS", 1.0),
        **production_config(env),
        **dns_config(env),
        **node_config(env),
        **report_settings(env),
        **alert_settings(env),
        "ADMIN_HOSTS": admin_hosts(env),
        "SESSION_COOKIE_SAMESITE": "Lax",
        "LOGIN_RATE_LIMIT": _rate_limit(env, "LOGIN_RATE_LIMIT", "10 per minute"),
    }


def build_settings(config: Mapping) -> AppSettings:
    """The typed settings of services, from the Flask config that `load_config` made."""
    return AppSettings(
        serving=ServingSettings(config["SNAPSHOT_REFRESH_SECONDS"], config["POLICY_FILES_DIR"]),
        records=RecordSettings(tuple(config["TLSRPT_RUA"]), config["POLICY_HOST_CNAME"],
                               tuple(config["POLICY_HOST_ADDRESSES"]), config["DELEGATION_ZONE"]),
        checks=CheckSettings(
            tuple(config["DNS_RESOLVERS"]), config["DNS_TIMEOUT"], config["PROBE_TIMEOUT"],
            tuple(config["PROBE_ALLOWED_NETWORKS"]), config["PROBE_CA_FILE"], config["PROBE_EHLO_NAME"],
            config["DNS_CHECK_MIN_INTERVAL_SECONDS"],
        ),
        updates=UpdateSettings(dict(config["DNS_TSIG_KEYS"]), config["DNS_RECORD_TTL"], config["DNS_TIMEOUT"],
                               config["DELEGATION_SERVER"], config["DELEGATION_TSIG_KEY"]),
        certificates=CertificateSettings(
            config["CERTS_DIR"], config["ACME_DIRECTORY_URL"], config["ACME_WEBROOT"], config["ACME_EMAIL"],
            tuple(config["ACME_EXTRA_HOSTS"]), config["ACME_CA_BUNDLE"], tuple(config["KEY_ENCRYPTION_KEYS"]),
        ),
        nodes=NodeSettings(config["NODE_NAME"], config["NODE_HEARTBEAT_SECONDS"], config["NODE_RECONCILE_SECONDS"],
                           config["NODE_SILENT_SECONDS"]),
    )


def _integer(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    value = _number(env, name, default, minimum)
    if value != int(value):
        raise ConfigError(f"{name}: {value!r} is not a whole number")
    return int(value)


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    value = _text(env, name, choices[0]).lower() or choices[0]
    if value not in choices:
        raise ConfigError(f"{name}: {value!r} is not one of {', '.join(choices)}")
    return value


def _rate_limit(env: Mapping[str, str], name: str, default: str) -> str:
    value = _text(env, name, default) or default
    try:
        limits.parse_many(value)
    except ValueError:
        raise ConfigError(f"{name}: {value!r} is not a rate limit like '60 per minute'") from None
    return value


def report_settings(env: Mapping[str, str]) -> dict:
    """TLS-RPT intake: limits on every report, what is accepted, the IMAP mailbox."""
    mib = 1024 * 1024
    return {
        "TLSRPT_MAX_COMPRESSED_BYTES": _integer(env, "TLSRPT_MAX_COMPRESSED_BYTES", 10 * mib),
        "TLSRPT_MAX_DECOMPRESSED_BYTES": _integer(env, "TLSRPT_MAX_DECOMPRESSED_BYTES", 50 * mib),
        "TLSRPT_MAX_DECOMPRESSION_RATIO": _integer(env, "TLSRPT_MAX_DECOMPRESSION_RATIO", 100),
        # A report part of TLSRPT_MAX_COMPRESSED_BYTES grows by a third in base64.
        "TLSRPT_MAX_MAIL_BYTES": _integer(env, "TLSRPT_MAX_MAIL_BYTES", 15 * mib),
        "TLSRPT_MAX_MAIL_PARTS": _integer(env, "TLSRPT_MAX_MAIL_PARTS", 100),
        "TLSRPT_MAX_JSON_DEPTH": _integer(env, "TLSRPT_MAX_JSON_DEPTH", 20),
        "TLSRPT_MAX_JSON_VALUES": _integer(env, "TLSRPT_MAX_JSON_VALUES", 1_000_000),
        "TLSRPT_MAX_POLICIES": _integer(env, "TLSRPT_MAX_POLICIES", 1_000),
        "TLSRPT_MAX_FAILURE_DETAILS": _integer(env, "TLSRPT_MAX_FAILURE_DETAILS", 50_000),
        "TLSRPT_MAX_STRING_LENGTH": _integer(env, "TLSRPT_MAX_STRING_LENGTH", 4_096),
        "TLSRPT_MAX_RANGE_DAYS": _integer(env, "TLSRPT_MAX_RANGE_DAYS", 31),
        "TLSRPT_ACCEPT_UNHOSTED": _choice(env, "TLSRPT_ACCEPT_UNHOSTED", ("false", "true")) == "true",
        "TLSRPT_DKIM": _choice(env, "TLSRPT_DKIM", ("require", "record", "off")),
        "TLSRPT_DKIM_NAMESERVER": _text(env, "TLSRPT_DKIM_NAMESERVER"),
        "TLSRPT_RATE_LIMIT": _rate_limit(env, "TLSRPT_RATE_LIMIT", "60 per minute"),
        "TLSRPT_FAILURE_DETAIL_LIMIT": _rate_limit(env, "TLSRPT_FAILURE_DETAIL_LIMIT", "100000 per hour"),
        "TLSRPT_RETENTION_DAYS": _integer(env, "TLSRPT_RETENTION_DAYS", 400),
        "TLSRPT_IP_ROLLUP_RETENTION_DAYS": _integer(env, "TLSRPT_IP_ROLLUP_RETENTION_DAYS", 90),
        "RATELIMIT_STORAGE_URI": _secret(env, "RATELIMIT_STORAGE_URI") or "memory://",
        # While that storage is unreachable, count in each worker rather than fail every sign-in.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "TLSRPT_IMAP_HOST": _text(env, "TLSRPT_IMAP_HOST"),
        "TLSRPT_IMAP_PORT": _integer(env, "TLSRPT_IMAP_PORT", 993),
        "TLSRPT_IMAP_USER": _text(env, "TLSRPT_IMAP_USER"),
        "TLSRPT_IMAP_PASSWORD": _secret(env, "TLSRPT_IMAP_PASSWORD"),
        "TLSRPT_IMAP_FOLDER": _text(env, "TLSRPT_IMAP_FOLDER", "INBOX"),
        "TLSRPT_IMAP_DONE_FOLDER": _text(env, "TLSRPT_IMAP_DONE_FOLDER", "tlsrpt-processed"),
        "TLSRPT_IMAP_CAFILE": _text(env, "TLSRPT_IMAP_CAFILE"),
    }


SMTP_SECURITY = ("starttls", "tls", "none")
SMTP_PORTS = {"starttls": 587, "tls": 465, "none": 25}
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def alert_settings(env: Mapping[str, str]) -> dict:
    """Alerts and digests: where links point, the SMTP relay that sends mail, webhooks, timings."""
    base_url = _text(env, "ALERT_BASE_URL").rstrip("/")
    if base_url and not base_url.startswith(("https://", "http://")):
        raise ConfigError(f"ALERT_BASE_URL: {base_url!r} is not an http(s) URL")
    host = admin_hosts(env)[0]
    local = host in ("localhost", "127.0.0.1", "::1")
    security = _choice(env, "ALERT_SMTP_SECURITY", SMTP_SECURITY)
    smtp_host = _text(env, "ALERT_SMTP_HOST")
    mail_from = _text(env, "ALERT_MAIL_FROM")
    if smtp_host and "@" not in mail_from:
        raise ConfigError("ALERT_SMTP_HOST needs ALERT_MAIL_FROM, the address alerts come from")
    return {
        # Links in alerts lead to the admin UI: its first host name unless said otherwise.
        "ALERT_BASE_URL": base_url or ("http://localhost:8000" if local else f"https://{host}"),
        "ALERT_SMTP_HOST": smtp_host,
        "ALERT_SMTP_PORT": _integer(env, "ALERT_SMTP_PORT", SMTP_PORTS[security]),
        "ALERT_SMTP_SECURITY": security,
        "ALERT_SMTP_USER": _text(env, "ALERT_SMTP_USER"),
        "ALERT_SMTP_PASSWORD": _secret(env, "ALERT_SMTP_PASSWORD"),
        "ALERT_SMTP_CAFILE": _text(env, "ALERT_SMTP_CAFILE"),
        "ALERT_SMTP_TIMEOUT": _number(env, "ALERT_SMTP_TIMEOUT", 30.0, minimum=0.1),
        "ALERT_MAIL_FROM": mail_from,
        "ALERT_WEBHOOK_ALLOWED_NETWORKS": _networks(env, "ALERT_WEBHOOK_ALLOWED_NETWORKS"),
        "ALERT_WEBHOOK_TIMEOUT": _number(env, "ALERT_WEBHOOK_TIMEOUT", 10.0, minimum=0.1),
        "ALERT_WEBHOOK_TRIES": _integer(env, "ALERT_WEBHOOK_TRIES", 3),
        "ALERT_WEBHOOK_BACKOFF_SECONDS": _number(env, "ALERT_WEBHOOK_BACKOFF_SECONDS", 2.0),
        "ALERT_WEBHOOK_CAFILE": _text(env, "ALERT_WEBHOOK_CAFILE"),
        # A cause must stay away this long before its incident is resolved: no notice for a flapping one.
        "ALERT_RESOLVE_AFTER_MINUTES": _integer(env, "ALERT_RESOLVE_AFTER_MINUTES", 60, minimum=0),
        "ALERT_DIGEST_WEEKDAY": WEEKDAYS.index(_choice(env, "ALERT_DIGEST_WEEKDAY", WEEKDAYS)),  # 0 is Monday
        "ALERT_DIGEST_HOUR": _hour(env, "ALERT_DIGEST_HOUR", 7),
        "ALERT_LEASE_SECONDS": _integer(env, "ALERT_LEASE_SECONDS", 600, minimum=10),
        "ALERT_REFUSED_PERCENT": _integer(env, "ALERT_REFUSED_PERCENT", 10),
        "ALERT_REFUSED_MIN_COUNT": _integer(env, "ALERT_REFUSED_MIN_COUNT", 5),
    }


def _hour(env: Mapping[str, str], name: str, default: int) -> int:
    hour = _integer(env, name, default, minimum=0)
    if hour > 23:
        raise ConfigError(f"{name}: {hour} is not an hour of the day (0 to 23, UTC)")
    return hour
