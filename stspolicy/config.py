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

from .names import InvalidName, normalize_domain
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


def production_config(env: Mapping[str, str], instance_path: Path) -> dict:
    """Settings of the production shape: policy files for nginx, ACME certificates, metrics.

    Each feature is off while its setting is empty, so `make run` needs none of them.
    """
    acme_url = _text(env, "ACME_DIRECTORY_URL")
    if acme_url and not acme_url.startswith(("https://", "http://")):
        raise ConfigError(f"ACME_DIRECTORY_URL: {acme_url!r} is not an http(s) URL")
    certs_dir, webroot = _path(env, "CERTS_DIR"), _path(env, "ACME_WEBROOT")
    if acme_url and not (certs_dir and webroot):
        raise ConfigError("ACME_DIRECTORY_URL needs CERTS_DIR and ACME_WEBROOT")
    return {
        "POLICY_FILES_DIR": _path(env, "POLICY_FILES_DIR"),
        "CERTS_DIR": certs_dir,
        "ACME_DIRECTORY_URL": acme_url,
        "ACME_WEBROOT": webroot,
        "ACME_EMAIL": _text(env, "ACME_EMAIL"),
        "ACME_EXTRA_HOSTS": _host_names(env, "ACME_EXTRA_HOSTS"),
        "ACME_CA_BUNDLE": _path(env, "ACME_CA_BUNDLE"),
        "ACME_ACCOUNT_KEY_FILE": _path(env, "ACME_ACCOUNT_KEY_FILE") or instance_path / "acme-account-key.pem",
        "METRICS_TOKEN": _secret(env, "METRICS_TOKEN"),
        "PROMETHEUS_MULTIPROC_DIR": _path(env, "PROMETHEUS_MULTIPROC_DIR"),
        "PROXY_HOPS": int(_number(env, "PROXY_HOPS", 0)),
    }


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
        **production_config(env, instance_path),
    }
