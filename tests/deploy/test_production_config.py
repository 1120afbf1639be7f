"""Production settings fail loudly at start when they cannot work."""

import pytest
from flask import request

from stspolicy.app import create_app
from stspolicy.config import ConfigError, load_config

BASE = {"SECRET_KEY": "k"}


@pytest.mark.parametrize(("settings", "message"), [
    ({"POLICY_FILES_DIR": "relative/policies"}, "POLICY_FILES_DIR: 'relative/policies' is not an absolute path"),
    ({"ACME_DIRECTORY_URL": "ftp://ca.example/dir"}, "'ftp://ca.example/dir' is not an http(s) URL"),
    ({"ACME_DIRECTORY_URL": "https://ca.example/dir", "CERTS_DIR": "/var/lib/stspolicy/certs"},
     "ACME_DIRECTORY_URL needs CERTS_DIR and ACME_WEBROOT"),
    ({"ACME_EXTRA_HOSTS": "admin.example.net bad_host.example"}, "ACME_EXTRA_HOSTS: invalid domain name"),
    ({"ACME_DIRECTORY_URL": "https://ca.example/dir", "CERTS_DIR": "/c", "ACME_WEBROOT": "/w"},
     "ACME_DIRECTORY_URL needs KEY_ENCRYPTION_KEYS"),
    ({"KEY_ENCRYPTION_KEYS": "kz3jYcOjfy6SxOufbdFdw7k7b3gybKwWMj6oNnRJZFM= secret"},
     "KEY_ENCRYPTION_KEYS: key 2 is not a Fernet key"),
    ({"NODE_HEARTBEAT_SECONDS": "10", "NODE_SILENT_SECONDS": "15"},
     "NODE_SILENT_SECONDS: 15 is less than twice NODE_HEARTBEAT_SECONDS (10)"),
])
def test_unusable_production_settings_are_refused_by_name(tmp_path, settings, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(BASE | settings, tmp_path)


def test_production_features_are_off_until_configured(tmp_path):
    config = load_config(BASE, tmp_path)
    assert config["POLICY_FILES_DIR"] is None
    assert config["ACME_DIRECTORY_URL"] == ""
    assert config["METRICS_TOKEN"] == ""


def test_metrics_token_may_come_from_a_file(tmp_path):
    (tmp_path / "token").write_text("s3cret\n")
    assert load_config(BASE | {"METRICS_TOKEN_FILE": str(tmp_path / "token")}, tmp_path)["METRICS_TOKEN"] == "s3cret"


@pytest.mark.parametrize(("hops", "seen"), [("0", "http 127.0.0.1"), ("1", "https 203.0.113.9")])
def test_proxy_hops_decide_whether_forwarded_headers_are_believed(tmp_path, hops, seen):
    app = create_app(BASE | {"DATABASE_URL": f"sqlite:///{tmp_path}/db", "PROXY_HOPS": hops})
    app.add_url_rule("/whoami", "whoami", lambda: f"{request.scheme} {request.remote_addr}")
    response = app.test_client().get("/whoami", headers={
        "X-Forwarded-For": "198.51.100.1, 203.0.113.9", "X-Forwarded-Proto": "https"})
    assert response.get_data(as_text=True) == seen
