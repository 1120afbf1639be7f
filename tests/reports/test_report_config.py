"""TLS-RPT settings fail loudly at start on values that cannot work."""

import pytest

from stspolicy.config import ConfigError, load_config


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TLSRPT_RATE_LIMIT", "lots", "is not a rate limit"),
        ("TLSRPT_MAX_FAILURE_DETAILS", "0", "is below 1"),
        ("TLSRPT_IP_ROLLUP_RETENTION_DAYS", "0", "is below 1"),
        ("TLSRPT_IP_ROLLUP_RETENTION_DAYS", "ninety", "is not a number"),
        ("TLSRPT_IP_ROLLUP_RETENTION_DAYS", "90.5", "not a whole number"),
        ("TLSRPT_MAX_COMPRESSED_BYTES", "5.5", "not a whole number"),
        ("TLSRPT_DKIM", "maybe", "is not one of require, record, off"),
        ("TLSRPT_ACCEPT_UNHOSTED", "yes", "is not one of false, true"),
    ],
)
def test_bad_report_settings_are_refused_with_their_name(tmp_path, name, value, message):
    with pytest.raises(ConfigError, match=message) as caught:
        load_config({"SECRET_KEY": "x", name: value}, tmp_path)
    assert str(caught.value).startswith(name)


def test_report_defaults(tmp_path):
    config = load_config({"SECRET_KEY": "x"}, tmp_path)
    assert (config["TLSRPT_MAX_COMPRESSED_BYTES"], config["TLSRPT_MAX_DECOMPRESSED_BYTES"]) == (10 << 20, 50 << 20)
    assert (config["TLSRPT_DKIM"], config["TLSRPT_ACCEPT_UNHOSTED"], config["RATELIMIT_STORAGE_URI"]) == (
        "require", False, "memory://")
    assert (config["TLSRPT_RETENTION_DAYS"], config["TLSRPT_IP_ROLLUP_RETENTION_DAYS"]) == (400, 90)
