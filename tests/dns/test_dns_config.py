"""DNS, probe and publishing settings: read from the environment, refused loudly when they cannot work."""

from pathlib import Path

import pytest

from stspolicy.config import ConfigError, dns_config


def test_defaults_probe_only_public_addresses_with_the_system_roots():
    config = dns_config({})
    assert config["PROBE_ALLOWED_NETWORKS"] == [] and config["DNS_TSIG_KEYS"] == {}
    assert config["DNS_TIMEOUT"] == 5.0 and config["PROBE_TIMEOUT"] == 10.0


def test_tsig_keys_come_from_a_file_and_are_found_by_name(tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("Ours.:hmac-sha256:c2VjcmV0\n")
    config = dns_config({"DNS_TSIG_KEYS_FILE": str(keys), "DELEGATION_ZONE": "sts.provider.example.",
                         "DELEGATION_SERVER": "192.0.2.53", "DELEGATION_TSIG_KEY": "ours"})
    assert config["DNS_TSIG_KEYS"] == {"ours": ("hmac-sha256", "c2VjcmV0")}
    assert config["DELEGATION_ZONE"] == "sts.provider.example"


@pytest.mark.parametrize(("env", "message"), [
    ({"DNS_TSIG_KEYS": "justaname"}, "is not name:algorithm:secret"),
    ({"DELEGATION_TSIG_KEY": "missing"}, "no key 'missing' in DNS_TSIG_KEYS"),
    ({"DELEGATION_ZONE": "sts.provider.example"}, "DELEGATION_ZONE needs DELEGATION_SERVER"),
    ({"PROBE_ALLOWED_NETWORKS": "10.0.0.0/33"}, "is not a network"),
    ({"DNS_TIMEOUT": "0"}, "below 0.1"),
    ({"DNS_TSIG_KEYS_FILE": str(Path("/nonexistent/keys"))}, "cannot read"),
])
def test_settings_that_cannot_work_are_refused(env, message):
    with pytest.raises(ConfigError, match=message):
        dns_config(env)
