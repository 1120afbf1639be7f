"""Settings: read once at start, refused loudly when they cannot work."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from stspolicy.config import ConfigError, load_config, secret_key
from stspolicy.dns.records import records_to_publish


def test_a_generated_secret_key_is_the_same_for_processes_starting_together(tmp_path):
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: secret_key({}, tmp_path), range(8)))
    assert len(keys) == 1 and len(keys.pop()) >= 64
    assert [path.name for path in tmp_path.iterdir()] == ["secret_key"]
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_an_empty_secret_key_file_is_refused(tmp_path):
    (tmp_path / "secret_key").write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        secret_key({}, tmp_path)


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("PROXY_HOPS", "1.5", "not a whole number"),
        ("PROXY_HOPS", "-1", "below 0"),
        ("DNS_RESOLVERS", "resolver.example", "not an IP address"),
        ("DNS_RESOLVERS", "127.0.0.1:dns", "not an IP address"),
        ("DNS_RESOLVERS", "127.0.0.1:70000", "no valid port"),
        ("DELEGATION_SERVER", "ns1.provider.example", "not an IP address"),
        ("TLSRPT_RUA", "http://reports.example/", "only mailto: and https:"),
        ("POLICY_HOST_ADDRESSES", "192.0.2.300", "not an IP address"),
    ],
)
def test_bad_settings_stop_the_start_with_the_setting_named(tmp_path, name, value, message):
    with pytest.raises(ConfigError, match=message) as caught:
        load_config({"SECRET_KEY": "x", name: value}, tmp_path)
    assert str(caught.value).startswith(name)


def test_resolvers_take_ports_and_ipv6(tmp_path):
    config = load_config({"SECRET_KEY": "x", "DNS_RESOLVERS": "127.0.0.1:5353 [::1]:53 ::1"}, tmp_path)
    assert config["DNS_RESOLVERS"] == ["127.0.0.1:5353", "[::1]:53", "::1"]


def test_a_rua_uri_with_reserved_characters_is_published_encoded(tmp_path):
    """RFC 8460 section 3: `,` `!` `;` in a rua URI MUST be percent-encoded."""
    config = load_config({"SECRET_KEY": "x", "TLSRPT_RUA": "https://reports.example/in;tenant=7,a!"}, tmp_path)
    [_, tlsrpt] = records_to_publish("example.com", "1", rua=config["TLSRPT_RUA"])
    assert tlsrpt.value == "v=TLSRPTv1; rua=https://reports.example/in%3Btenant=7%2Ca%21"


def test_postgresql_connections_keep_alive_unless_the_url_says_otherwise():
    options = load_config({"DATABASE_URL": "postgresql://app@db.example/app?keepalives_idle=5",
                           "SECRET_KEY": "k"}, Path("/nonexistent"))["SQLALCHEMY_ENGINE_OPTIONS"]
    keepalives = {"keepalives": 1, "keepalives_interval": 10, "keepalives_count": 3}
    assert keepalives.items() <= options["connect_args"].items()
    assert "keepalives_idle" not in options["connect_args"]
    assert load_config({"SECRET_KEY": "k"}, Path("/nonexistent"))["SQLALCHEMY_ENGINE_OPTIONS"] == {}


def test_every_wait_on_postgresql_is_bounded_unless_switched_off():
    def options(**env):
        return load_config({"DATABASE_URL": "postgresql://app@db.example/app", "SECRET_KEY": "k", **env},
                           Path("/nonexistent"))["SQLALCHEMY_ENGINE_OPTIONS"]

    bounded = options(DATABASE_TIMEOUT_SECONDS="2.5")
    assert bounded["pool_timeout"] == 2.5
    assert bounded["connect_args"]["connect_timeout"] == 2 and bounded["connect_args"]["reply_timeout"] == 3.5
    assert bounded["connect_args"]["options"] == "-c statement_timeout=2500 -c lock_timeout=2500"
    assert options()["connect_args"]["options"] == "-c statement_timeout=5000 -c lock_timeout=5000"
    unbounded = options(DATABASE_TIMEOUT_SECONDS="0")
    assert "pool_timeout" not in unbounded and "options" not in unbounded["connect_args"]


def test_a_replica_is_a_read_only_postgresql_bind_beside_a_postgresql_primary():
    def config(**env):
        return load_config({"DATABASE_URL": "postgresql://app@db.example/app", "SECRET_KEY": "k", **env},
                           Path("/nonexistent"))

    assert config()["SQLALCHEMY_BINDS"] == {}
    replica = config(DATABASE_REPLICA_URL="postgresql://app@standby.example/app")["SQLALCHEMY_BINDS"]["replica"]
    assert replica["url"] == "postgresql+psycopg://app@standby.example/app"
    assert replica["connect_args"]["options"] == ("-c statement_timeout=5000 -c lock_timeout=5000 "
                                                  "-c default_transaction_read_only=on")
    unbounded = config(DATABASE_REPLICA_URL="postgresql://app@standby.example/app", DATABASE_TIMEOUT_SECONDS="0")
    assert unbounded["SQLALCHEMY_BINDS"]["replica"]["connect_args"]["options"] == "-c default_transaction_read_only=on"
    for env in ({"DATABASE_REPLICA_URL": "sqlite:////tmp/copy.db"},
                {"DATABASE_URL": "", "DATABASE_REPLICA_URL": "postgresql://app@standby.example/app"}):
        with pytest.raises(ConfigError, match="a replica of a PostgreSQL DATABASE_URL") as caught:
            config(**env)
        assert str(caught.value).startswith("DATABASE_REPLICA_URL")
