"""Settings from the environment, read in one place.

Every setting is an environment variable; a secret may instead be given as a file
named by `<NAME>_FILE`. Bad values fail loudly at start. The one deliberate default is
the embedded SQLite database under the instance folder.
"""

import ipaddress
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

import limits

from .records import RecordError, check_rua_uri


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


def database_url(env: Mapping[str, str], instance_path: Path) -> str:
    """DATABASE_URL, with `postgresql://` mapped to the psycopg 3 driver we ship."""
    url = _secret(env, "DATABASE_URL")
    if not url:
        return f"sqlite:///{instance_path / 'stspolicy.db'}"
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def secret_key(env: Mapping[str, str], instance_path: Path) -> str:
    """SECRET_KEY from the environment, else one generated once into the instance folder."""
    key = _secret(env, "SECRET_KEY")
    if key:
        return key
    path = instance_path / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        key = secrets.token_urlsafe(48)
        instance_path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(key + "\n")
        return key


def load_config(env: Mapping[str, str], instance_path: Path) -> dict:
    """Flask config from environment-style settings (os.environ, or a mapping in tests)."""
    rua = _words(env, "TLSRPT_RUA")
    for uri in rua:
        try:
            check_rua_uri(uri)
        except RecordError as error:
            raise ConfigError(f"TLSRPT_RUA: {error}") from None
    addresses = _words(env, "POLICY_HOST_ADDRESSES")
    for address in addresses:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise ConfigError(f"POLICY_HOST_ADDRESSES: {address!r} is not an IP address") from None
    return {
        "SECRET_KEY": secret_key(env, instance_path),
        "SQLALCHEMY_DATABASE_URI": database_url(env, instance_path),
        "TLSRPT_RUA": rua,
        "POLICY_HOST_CNAME": _text(env, "POLICY_HOST_CNAME").rstrip(".").lower(),
        "POLICY_HOST_ADDRESSES": addresses,
        "SNAPSHOT_REFRESH_SECONDS": _number(env, "SNAPSHOT_REFRESH_SECONDS", 1.0),
        **report_settings(env),
    }


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
        "TLSRPT_MAX_COMPRESSED_BYTES": _integer(env, "TLSRPT_MAX_COMPRESSED_BYTES", 5 * mib),
        "TLSRPT_MAX_DECOMPRESSED_BYTES": _integer(env, "TLSRPT_MAX_DECOMPRESSED_BYTES", 50 * mib),
        "TLSRPT_MAX_MAIL_BYTES": _integer(env, "TLSRPT_MAX_MAIL_BYTES", 10 * mib),
        "TLSRPT_MAX_JSON_DEPTH": _integer(env, "TLSRPT_MAX_JSON_DEPTH", 20),
        "TLSRPT_MAX_JSON_VALUES": _integer(env, "TLSRPT_MAX_JSON_VALUES", 1_000_000),
        "TLSRPT_MAX_POLICIES": _integer(env, "TLSRPT_MAX_POLICIES", 1_000),
        "TLSRPT_MAX_FAILURE_DETAILS": _integer(env, "TLSRPT_MAX_FAILURE_DETAILS", 50_000),
        "TLSRPT_MAX_STRING_LENGTH": _integer(env, "TLSRPT_MAX_STRING_LENGTH", 4_096),
        "TLSRPT_MAX_RANGE_DAYS": _integer(env, "TLSRPT_MAX_RANGE_DAYS", 31),
        "TLSRPT_ACCEPT_UNHOSTED": _choice(env, "TLSRPT_ACCEPT_UNHOSTED", ("false", "true")) == "true",
        "TLSRPT_DKIM": _choice(env, "TLSRPT_DKIM", ("record", "require", "off")),
        "TLSRPT_DKIM_NAMESERVER": _text(env, "TLSRPT_DKIM_NAMESERVER"),
        "TLSRPT_RATE_LIMIT": _rate_limit(env, "TLSRPT_RATE_LIMIT", "60 per minute"),
        "RATELIMIT_STORAGE_URI": _secret(env, "RATELIMIT_STORAGE_URI") or "memory://",
        "TLSRPT_IMAP_HOST": _text(env, "TLSRPT_IMAP_HOST"),
        "TLSRPT_IMAP_PORT": _integer(env, "TLSRPT_IMAP_PORT", 993),
        "TLSRPT_IMAP_USER": _text(env, "TLSRPT_IMAP_USER"),
        "TLSRPT_IMAP_PASSWORD": _secret(env, "TLSRPT_IMAP_PASSWORD"),
        "TLSRPT_IMAP_FOLDER": _text(env, "TLSRPT_IMAP_FOLDER", "INBOX"),
        "TLSRPT_IMAP_DONE_FOLDER": _text(env, "TLSRPT_IMAP_DONE_FOLDER", "tlsrpt-processed"),
        "TLSRPT_IMAP_CAFILE": _text(env, "TLSRPT_IMAP_CAFILE"),
    }
