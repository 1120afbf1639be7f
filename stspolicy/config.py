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
    }
