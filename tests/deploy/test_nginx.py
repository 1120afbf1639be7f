"""The shipped nginx configuration, run for real: policies from files, TLS by SNI, the app behind it."""

import ssl
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client.parser import text_string_to_metric_families

from stspolicy.app import create_app
from stspolicy.base.settings import current_settings
from stspolicy.extensions import db
from stspolicy.policies.rules import make_policy, render_policy
from stspolicy.policies.service import add_domain
from stspolicy.propagation import propagate
from tests import databases
from tests.conftest import app_settings
from tests.lab.pki import TestCA
from tests.support.nginx import (
    NginxLayout,
    layout_folder,
    nginx_test,
    render_site,
    request,
    running_mtail,
    running_nginx,
    write_config,
)
from tests.support.servers import free_port, gunicorn

HOSTED = {
    "example.com": make_policy("enforce", ["mx1.example.com", "mx2.example.com"], 604800),
    "example.org": make_policy("testing", ["*.mx.example.org"], 86400),
}


def install_certificate(layout: NginxLayout, ca: TestCA, host: str) -> None:
    ca.write_bundle(layout.certs / f"{host}.pem", *ca.issue(host))


@pytest.fixture(scope="module")
def ca(test_ca, tmp_path_factory):
    return test_ca, test_ca.write_root(tmp_path_factory.mktemp("ca") / "ca.pem")


@pytest.fixture(scope="module")
def site(new_database, ca):
    """nginx with the shipped configuration in front of gunicorn on its unix socket."""
    authority, ca_path = ca
    with layout_folder() as folder:
        yield from serve(new_database, authority, ca_path, NginxLayout(folder, "127.0.0.1", free_port(), free_port()))


def serve(new_database, authority, ca_path, layout):
    write_config(layout)
    url = new_database()
    databases.upgrade(url)
    settings = app_settings(url, POLICY_FILES_DIR=str(layout.policies), METRICS_TOKEN="metrics-secret",
                            ADMIN_HOSTS=layout.admin_host, PROXY_HOPS="1")
    app = create_app(settings)
    with app.app_context():
        for name, policy in HOSTED.items():
            version = add_domain(db.session, name, policy, actor="test")
            propagate(db.session, current_settings(), name, version, wait=True)
        databases.release_connections()
    for host in ("mta-sts.example.com", "mta-sts.example.org", "mta-sts.unhosted.example", layout.admin_host):
        install_certificate(layout, authority, host)
    with gunicorn(settings, workers=1, unix_socket=str(layout.gunicorn_socket)), running_nginx(layout):
        yield layout, ca_path


def policy_etag(site, domain: str) -> str:
    """What nginx should tag the policy file with: its modification second."""
    layout, _ = site
    modified = (layout.policies / f"{domain}.txt").stat().st_mtime
    return f'"{time.strftime("%Y-%b-%d-%H:%M:%S", time.gmtime(int(modified)))}"'


def fetch(site, host, path="/.well-known/mta-sts.txt", **options):
    layout, ca_path = site
    return request(layout.address, layout.https_port, host, path, ca=ca_path, **options)


def test_shipped_configuration_passes_nginx_t(tmp_path):
    layout = NginxLayout(tmp_path, "127.0.0.1", free_port(), free_port())
    write_config(layout)
    result = nginx_test(layout)
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr


def test_rendering_leaves_no_production_path_behind(tmp_path):
    rendered = render_site(NginxLayout(tmp_path, "127.0.0.1", 8443, 8080))
    assert "/var/lib/stspolicy" not in rendered and "/run/stspolicy" not in rendered
    assert "listen 127.0.0.1:8443 ssl default_server;" in rendered
    assert "listen 127.0.0.1:8080 default_server;" in rendered


@pytest.mark.parametrize("domain", sorted(HOSTED))
def test_each_hosted_policy_is_served_byte_for_byte_over_tls(site, domain):
    answer = fetch(site, f"mta-sts.{domain}")
    assert answer.status == 200
    assert answer.body == render_policy(HOSTED[domain]).encode()
    assert answer.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert answer.headers["Cache-Control"] == "no-cache"
    assert answer.headers["ETag"] == policy_etag(site, domain)
    assert answer.tls_version in ("TLSv1.2", "TLSv1.3")


@pytest.mark.parametrize("host", ["MTA-STS.Example.COM", "mta-sts.example.com.", "mta-sts.example.com:443"])
def test_host_header_is_matched_case_insensitively_without_port_or_dot(site, host):
    answer = fetch(site, host, sni="mta-sts.example.com")
    assert answer.body == render_policy(HOSTED["example.com"]).encode()


def test_conditional_and_range_requests_still_get_the_whole_policy(site):
    headers = {"If-None-Match": "*", "If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT", "Range": "bytes=0-3"}
    answer = fetch(site, "mta-sts.example.com", headers=headers)
    assert answer.status == 200
    assert answer.body == render_policy(HOSTED["example.com"]).encode()


def test_head_gives_headers_without_body(site):
    answer = fetch(site, "mta-sts.example.com", method="HEAD")
    assert answer.status == 200
    assert answer.body == b""
    assert int(answer.headers["Content-Length"]) == len(render_policy(HOSTED["example.com"]))


def test_a_host_without_a_policy_gets_404_and_no_other_policy(site):
    answer = fetch(site, "mta-sts.unhosted.example")
    assert answer.status == 404
    assert answer.body == b"no MTA-STS policy for this host\n"
    assert answer.headers["Content-Type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize("path", ["/", "/.well-known/", "/.well-known/mta-sts.txt/", "/example.com.txt", "/.lock"])
def test_other_paths_on_a_policy_host_are_404_never_a_redirect(site, path):
    answer = fetch(site, "mta-sts.example.com", path)
    assert answer.status == 404
    assert b"version: STSv1" not in answer.body


def test_writing_methods_are_refused_on_the_policy(site):
    assert fetch(site, "mta-sts.example.com", method="POST", body=b"x").status == 405


@pytest.mark.parametrize("sni", ["mta-sts.no-certificate.example", "www.example.com", None])
def test_a_name_we_do_not_serve_gets_no_certificate(site, sni):
    with pytest.raises(ssl.SSLError):
        fetch(site, "mta-sts.example.com", sni=sni)


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_tls_below_1_2_is_refused(site):
    layout, ca_path = site
    old = ssl.create_default_context(cafile=str(ca_path))
    old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    with pytest.raises(ssl.SSLError):
        fetch(site, "mta-sts.example.com", tls=old)
    only_1_2 = ssl.create_default_context(cafile=str(ca_path))
    only_1_2.maximum_version = ssl.TLSVersion.TLSv1_2
    assert fetch(site, "mta-sts.example.com", tls=only_1_2).tls_version == "TLSv1.2"


def test_port_80_serves_acme_challenges_and_nothing_else(site):
    layout, _ = site
    challenge = layout.webroot / ".well-known" / "acme-challenge"
    challenge.mkdir(parents=True, exist_ok=True)
    (challenge / "token123").write_text("token123.thumbprint")
    answer = request(layout.address, layout.http_port, "mta-sts.example.com", "/.well-known/acme-challenge/token123")
    assert (answer.status, answer.body) == (200, b"token123.thumbprint")
    policy = request(layout.address, layout.http_port, "mta-sts.example.com")
    assert policy.status == 404
    assert "Location" not in policy.headers


def test_admin_host_is_proxied_to_gunicorn_with_security_headers(site):
    layout, _ = site
    answer = fetch(site, layout.admin_host, "/metrics", headers={"Authorization": "Bearer metrics-secret"})
    assert answer.status == 200
    assert b"stspolicy_hosted_domains 2.0" in answer.body
    assert answer.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    "path, status, marker",
    [("/login", 200, b"<form"), ("/api/v1/domains", 401, b'"error"'), ("/tlsrpt", 415, b'"error"')],
)
def test_admin_ui_api_and_intake_answer_on_the_admin_host_through_nginx(site, path, status, marker):
    """The deployment as documented: ADMIN_HOSTS names the host nginx passes on."""
    layout, _ = site
    method, body = ("POST", b"{}") if path == "/tlsrpt" else ("GET", None)
    answer = fetch(site, layout.admin_host, path, method=method, body=body, headers={"Content-Type": "text/plain"})
    assert answer.status == status
    assert marker in answer.body
    assert len(answer.headers.get_all("Content-Security-Policy")) == 1
    assert len(answer.headers.get_all("X-Content-Type-Options")) == 1


def test_an_unknown_host_on_a_served_name_gets_nothing_from_the_app(site):
    answer = fetch(site, "other.example", "/metrics", sni="mta-sts.example.com",
                   headers={"Authorization": "Bearer metrics-secret"})
    assert answer.status == 404
    assert b"stspolicy" not in answer.body


@pytest.mark.parametrize("path", ["/tlsrpt", "/tlsrpt/abc123"])
def test_report_intake_takes_bodies_of_10_mib_and_refuses_larger_with_a_clear_error(site, path):
    layout, _ = site
    largest = fetch(site, layout.admin_host, path, method="POST", body=b"\0" * (10 * 1024 * 1024),
                    headers={"Content-Type": "application/tlsrpt+json"})
    assert largest.status != 413 and b"report refused" not in largest.body  # the application's answer
    answer = fetch(site, layout.admin_host, path, method="POST", body=b"\0" * (10 * 1024 * 1024 + 1),
                   headers={"Content-Type": "application/tlsrpt+gzip"})
    assert answer.status == 413
    assert answer.body == b"report refused: larger than 10 MiB\n"


def test_report_intake_is_rate_limited_per_client(site):
    layout, _ = site

    def post(_):
        return fetch(site, layout.admin_host, "/tlsrpt", method="POST", body=b"{}",
                     headers={"Content-Type": "application/tlsrpt+json"})

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(post, range(250)))
    # nginx's own refusal, told apart from whatever the application answers behind it.
    refused = [answer for answer in answers if answer.body == b"too many reports from your address: retry later\n"]
    assert refused, "250 reports at once were all let through"
    assert {answer.status for answer in refused} == {429}
    assert len(answers) - len(refused) >= 100  # the burst


def test_every_policy_fetch_is_logged_with_a_bounded_domain_label(site):
    layout, _ = site

    def logged():
        return [line.split()[2:] for line in layout.fetch_log.read_text().splitlines()]

    time.sleep(1.5)  # earlier fetches reach the log: it is flushed every second
    before = len(logged())
    fetch(site, "mta-sts.example.org")
    fetch(site, "mta-sts.unhosted.example")
    deadline = time.monotonic() + 5
    while len(logged()) < before + 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert logged()[before:] == [["example.org", "200"], ["-", "404"]]


def test_mtail_counts_policy_fetches_per_hosted_domain_and_status(site):
    layout, _ = site
    time.sleep(1.5)  # earlier tests' fetches reach the log (flushed every second) before mtail opens it
    with running_mtail(layout.fetch_log, free_port()) as metrics_url:
        time.sleep(0.5)  # mtail reads from the end of the log: let it open the file first
        for _ in range(3):
            fetch(site, "mta-sts.example.com")
        fetch(site, "mta-sts.unhosted.example")
        fetch(site, "mta-sts.example.com", method="POST", body=b"x")
        expected = {("example.com", "200"): 3, ("-", "404"): 1, ("example.com", "405"): 1}
        deadline = time.monotonic() + 10
        while True:
            with urllib.request.urlopen(metrics_url, timeout=5) as response:
                counted = {
                    (sample.labels["domain"], sample.labels["status"]): sample.value
                    for family in text_string_to_metric_families(response.read().decode())
                    if family.name == "stspolicy_policy_fetches"
                    for sample in family.samples if sample.name == "stspolicy_policy_fetches_total"
                }
            if counted == expected or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert counted == expected
