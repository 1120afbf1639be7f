"""DANE through certificate renewals, end to end: no renewal may make a DANE sender defer mail.

In the lab: Knot signs example.test, unbound validates; the MX is Postfix with a certificate
from pebble; a DANE-validating Postfix (`smtp_tls_security_level = dane`) with a resolver of
its own delivers a message every half second. The renewal goes through the shipped hook as
certbot runs it (`stspolicy-dane stage`) and the timer's command (`stspolicy-dane install`),
with the application in its own processes on a database of its own.
"""

import contextlib
import functools
import http.server
import os
import socket
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy import select
from sqlalchemy.orm import Session

from stspolicy.certificates.acme import AcmeIssuer, WebrootChallenges, new_private_key_pem
from stspolicy.dns.dane import load_certificates, tlsa_record
from stspolicy.dns.models import StagedCertificate, TlsaPublication
from tests import databases
from tests.conftest import app_settings
from tests.lab import dane_mail
from tests.lab.dns import SECURE
from tests.lab.pki import TestCA, key_pem, pem
from tests.support.pebble import running_pebble
from tests.support.servers import ROOT, app_environment

TTL = 6  # seconds: the records' TTL, so the hook waits 2 x TTL = 12 s before installing
SENDER = "127.0.0.41"
HTTP_PORT = 5002  # where pebble fetches http-01 tokens


class Timeline:
    """What happened when, in seconds from the start, with the sender's tally at that moment."""

    def __init__(self, sender):
        self.sender, self.start, self.events = sender, time.monotonic(), []

    def note(self, event: str) -> None:
        tally = dane_mail.deliveries(self.sender)
        sent = sum(d.status == "sent" for d in tally)
        deferred = sum(d.status == "deferred" for d in tally)
        elapsed = time.monotonic() - self.start
        self.events.append(f"{elapsed:6.1f}s  {event}  [sender: {sent} sent, {deferred} deferred]")

    def show(self) -> str:
        return "\n".join(self.events)


class Mx:
    """One MX host of the lab: its Postfix, the files it reads its certificate from, its domain."""

    def __init__(self, lab, name: str, address: str):
        self.lab, self.host, self.address = lab, f"mx-{name}.{SECURE}", address
        self.domain = f"{name}.{SECURE}"
        self.folder = lab.folder / name
        self.folder.mkdir()
        self.chain_file, self.key_file = self.folder / "fullchain.pem", self.folder / "privkey.pem"
        lab.dns.set_records(SECURE, f"{self.host}.", "A", [address], flush=False)
        lab.dns.set_records(SECURE, f"{self.domain}.", "MX", [f"10 {self.host}."])
        assert lab.flask("domain", "add", self.domain, "--mode", "testing", "--mx", self.host).returncode == 0

    def install_now(self, chain: bytes, key: bytes) -> None:
        """What an ACME client does without this service: the renewed certificate goes into service at once."""
        self.chain_file.write_bytes(chain)
        self.key_file.write_bytes(key)
        self.postfix.reload()

    def start(self, chain: bytes, key: bytes, pin: str) -> None:
        self.chain_file.write_bytes(chain)
        self.key_file.write_bytes(key)
        self.key_file.chmod(0o600)
        self.postfix = dane_mail.receiving_mx(self.lab.netns, self.address, self.domain, self.chain_file,
                                              self.key_file)
        self.dane_env = self.folder / "dane.env"
        self.dane_env.write_text(f"DANE_MX_HOST={self.host}\nDANE_CERT_FILE={self.chain_file}\n"
                                 f"DANE_KEY_FILE={self.key_file}\nDANE_PIN={pin}\nDANE_TTL={TTL}\n"
                                 f"DANE_STAGING_DIR={self.folder / 'staging'}\n"
                                 f"DANE_RELOAD='postfix -c {self.postfix.etc} reload'\n")
        published = self.lab.flask("tlsa", "publish", "--mx", self.host, "--cert", str(self.chain_file),
                                   "--pin", pin, "--ttl", str(TTL))
        assert published.returncode == 0, published.stdout + published.stderr

    def hook(self, command: str, **env: str):
        """The shipped hook as certbot (RENEWED_LINEAGE) or the timer runs it."""
        return self.lab.netns.run(str(ROOT / "deploy" / "stspolicy-dane"), command, check=False, env={
            "PATH": os.environ["PATH"], "STSPOLICY_HOME": str(ROOT), "STSPOLICY_ENV_FILE": str(self.lab.env_file),
            "DANE_ENV_FILE": str(self.dane_env), **env})

    def renewed(self, chain: bytes, key: bytes) -> Path:
        """A certbot lineage folder holding the renewed certificate."""
        lineage = self.folder / f"live-{time.monotonic_ns()}"
        lineage.mkdir()
        (lineage / "fullchain.pem").write_bytes(chain)
        (lineage / "privkey.pem").write_bytes(key)
        return lineage

    def published(self) -> list[str]:
        dns = self.lab.dns
        answer = dns.dig(f"_25._tcp.{self.host}", "TLSA", "+short", "+norec", server=dns.authoritative)
        return sorted(" ".join([*line.split()[:3], "".join(line.split()[3:]).lower()]) for line in answer.splitlines())


class Lab:
    def __init__(self, netns, dns, folder: Path, settings: dict[str, str]):
        self.netns, self.dns, self.folder, self.url = netns, dns, folder, settings["DATABASE_URL"]
        self.env_file = folder / "env"
        self.env_file.write_text("".join(f"{key}='{value}'\n" for key, value in settings.items()))
        self.environment = app_environment(settings)

    def rollover_times(self, host: str, record: str) -> tuple[datetime, datetime]:
        """When the application published `record` for `host`, and when it installed the staged certificate."""
        engine = sqlalchemy.create_engine(self.url)
        try:
            with Session(engine) as session:
                published = session.scalar(select(TlsaPublication.published_at).where(
                    TlsaPublication.host == host, TlsaPublication.record == record))
                installed = session.scalar(select(StagedCertificate.installed_at).where(
                    StagedCertificate.host == host).order_by(StagedCertificate.id.desc()).limit(1))
        finally:
            engine.dispose()
        return published, installed

    def flask(self, *args: str):
        return self.netns.run(str(ROOT / ".venv" / "bin" / "flask"), "--app", "wsgi", *args, cwd=ROOT,
                              env=self.environment, check=False)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def http01_webroot(netns, address: str, folder: Path):
    """A plain HTTP server in the namespace serving `folder`, where pebble fetches http-01 tokens."""
    with netns.entered():
        server = http.server.ThreadingHTTPServer((address, HTTP_PORT),
                                                 functools.partial(_Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def _pipe(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            target.sendall(data)
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)


def _relay(inside: socket.socket, outside: socket.socket) -> None:
    back = threading.Thread(target=_pipe, args=(outside, inside), daemon=True)
    back.start()
    _pipe(inside, outside)
    back.join()
    inside.close()
    outside.close()


@contextlib.contextmanager
def database_reachable_in(netns, url: str):
    """A PostgreSQL on this host's loopback, reachable at the same address from inside the namespace."""
    parsed = sqlalchemy.engine.make_url(url)
    if not parsed.drivername.startswith("postgresql"):
        yield
        return
    address = (parsed.host or "127.0.0.1", parsed.port or 5432)
    with netns.entered():
        listener = socket.create_server(address)

    def accept():
        with contextlib.suppress(OSError):
            while True:
                inside, _ = listener.accept()
                threading.Thread(target=_relay, args=(inside, socket.create_connection(address)), daemon=True).start()
    accepting = threading.Thread(target=accept, daemon=True)
    accepting.start()
    try:
        yield
    finally:
        listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        accepting.join(timeout=10)


@pytest.fixture(scope="module")
def lab(lab_netns, dns_lab, new_database, tmp_path_factory):
    """The application on a database of its own, publishing into example.test by RFC 2136; the DANE sender."""
    url = new_database()
    databases.upgrade(url)
    folder = tmp_path_factory.mktemp("dane-renewal")
    tsig = dns_lab.tsig
    settings = app_settings(url, DNS_RESOLVERS=dns_lab.resolver, DNS_TIMEOUT="3",
                            DNS_TSIG_KEYS=f"{tsig.name.rstrip('.')}:{tsig.algorithm}:{tsig.secret}")
    relay = database_reachable_in(lab_netns, url)
    relay.__enter__()
    the_lab = Lab(lab_netns, dns_lab, folder, settings)
    assert the_lab.flask("domain", "add", f"dane-zone.{SECURE}", "--mx", f"mx.dane-zone.{SECURE}").returncode == 0
    mode = the_lab.flask("dns", "mode", f"dane-zone.{SECURE}", "rfc2136", "--server", dns_lab.authoritative,
                         "--zone", SECURE, "--key", tsig.name.rstrip("."))
    assert mode.returncode == 0, mode.stdout + mode.stderr
    resolver = dane_mail.CachingResolver(dns_lab, folder / "sender-resolver")
    the_lab.sender_resolver = resolver
    the_lab.sender = dane_mail.dane_sender(lab_netns, SENDER, resolver.address, folder / "sender")
    the_lab.mx_hosts = []
    yield the_lab
    for mx in the_lab.mx_hosts:
        mx.postfix.close()
    the_lab.sender.close()
    resolver.close()
    relay.__exit__(None, None, None)


@pytest.fixture(scope="module")
def pebble_mx(lab, tmp_path_factory, test_ca):
    """An MX host whose certificates come from pebble, validated by http-01 through the lab's DNS."""
    mx = Mx(lab, "dane-rx", "127.0.0.40")
    webroot = lab.folder / "webroot"
    webroot.mkdir()
    with http01_webroot(lab.netns, mx.address, webroot), \
            running_pebble(tmp_path_factory.mktemp("pebble"), HTTP_PORT, test_ca, address="127.0.0.31",
                           dns_server=f"{lab.dns.resolver}:53", netns=lab.netns) as pebble:
        issuer = AcmeIssuer(pebble.directory_url, new_private_key_pem(), WebrootChallenges(webroot),
                            ca_bundle=pebble.ca_bundle)

        def issue() -> tuple[bytes, bytes]:
            with lab.netns.entered():
                issued = issuer.issue(mx.host)
            return issued.fullchain_pem, issued.key_pem
        mx.issue = issue
        mx.start(*issue(), pin="key")
        lab.mx_hosts.append(mx)
        yield mx


def stream_to(lab, mx):
    lab.sender_resolver.flush()
    stream = dane_mail.MessageStream(lab.netns, SENDER, f"someone@{mx.domain}")
    deadline = time.monotonic() + 30
    while not any(d.status == "sent" for d in dane_mail.deliveries(lab.sender)[stream_start(lab):]):
        assert time.monotonic() < deadline, ("the DANE sender delivers nothing:\n"
                                             + lab.sender.log.read_text(errors="replace")[-3000:])
        time.sleep(0.2)
    return stream


def stream_start(lab) -> int:
    return getattr(lab, "mark", 0)


def run_rollover(lab, mx, chain: bytes, key: bytes) -> Timeline:
    """stage (the certbot hook) -> the timer every second until installed and the old record pruned."""
    lab.mark = len(dane_mail.deliveries(lab.sender))
    stream = stream_to(lab, mx)
    timeline = Timeline(lab.sender)
    before = mx.published()
    timeline.note(f"renewed certificate issued; TLSA at _25._tcp.{mx.host}: {before}")
    timeline.note("stage starts")
    staged = mx.hook("stage", RENEWED_LINEAGE=str(mx.renewed(chain, key)))
    assert staged.returncode == 0, staged.stdout + staged.stderr
    timeline.note(f"stage (certbot deploy hook): next record published, TLSA now {mx.published()}")
    installed_at = None
    deadline = time.monotonic() + 6 * TTL + 30
    while time.monotonic() < deadline:
        tick = mx.hook("install")
        assert tick.returncode in (0, 1), tick.stdout + tick.stderr
        if installed_at is None and "installed the certificate" in tick.stdout:
            installed_at = time.monotonic()
            timeline.note(f"install (timer): certificate installed, Postfix reloaded; TLSA {mx.published()}")
        elif installed_at is None and not any("waiting" in event for event in timeline.events):
            timeline.note(f"install (timer): waiting: {tick.stdout.strip()} {tick.returncode}")
        if installed_at is not None and "(-" in tick.stdout:
            timeline.note(f"install (timer): old record pruned; TLSA {mx.published()}")
            break
        time.sleep(1)
    time.sleep(2)
    stream.stop()
    timeline.note(f"stream stopped after {stream.submitted} messages")
    assert installed_at is not None, timeline.show()
    return timeline


def test_a_renewal_with_a_new_key_goes_stage_publish_wait_install_prune_and_no_message_is_deferred(lab, pebble_mx):
    chain, key = pebble_mx.issue()
    old_record = str(tlsa_record(load_certificates(pebble_mx.chain_file.read_bytes())[0], 3))
    new_record = str(tlsa_record(load_certificates(chain)[0], 3))
    assert old_record != new_record  # pebble issues with a new key
    timeline = run_rollover(lab, pebble_mx, chain, key)
    print(f"\nrollover of {pebble_mx.host}, TLSA TTL {TTL} s:\n{timeline.show()}")
    during = [d for d in dane_mail.deliveries(lab.sender)[lab.mark:] if d.recipient.endswith(pebble_mx.domain)]
    assert [d for d in during if d.status != "sent"] == [], timeline.show()
    assert sum(d.status == "sent" for d in during) >= 20, timeline.show()
    assert pebble_mx.chain_file.read_bytes() == chain and pebble_mx.published() == [new_record]
    published_at, installed_at = lab.rollover_times(pebble_mx.host, new_record)
    assert installed_at - published_at >= timedelta(seconds=2 * TTL), (published_at, installed_at)


def test_the_same_renewal_installed_at_once_makes_the_dane_sender_defer(lab, pebble_mx):
    """The control: a renewal installed at once, its record published right after, as done by hand. The
    sender's resolver still holds the old TLSA set for up to its TTL, and the new key matches none of it."""
    lab.mark = len(dane_mail.deliveries(lab.sender))
    stream = stream_to(lab, pebble_mx)  # the sender's resolver has just cached the current set
    chain, key = pebble_mx.issue()
    pebble_mx.install_now(chain, key)
    published = lab.flask("tlsa", "publish", "--mx", pebble_mx.host, "--cert", str(pebble_mx.chain_file))
    assert published.returncode == 0, published.stdout + published.stderr
    time.sleep(TTL)
    stream.stop()
    deferred = [d for d in dane_mail.deliveries(lab.sender)[lab.mark:] if d.status == "deferred"]
    print(f"\ninstalled at once: {len(deferred)} deferred, e.g. {deferred[:1]}")
    assert deferred, "installing at once did not make the DANE sender defer: the test cannot fail"
    assert all("certificate" in d.reason.lower() or "tls" in d.reason.lower() for d in deferred), deferred


def test_an_intermediate_rotation_under_a_2_1_1_record_defers_no_message(lab, test_ca):
    """ROLL-03: the CA moves to a new intermediate; the next issuer's 2 1 1 goes into DNS before the chain changes."""
    mx = Mx(lab, "dane-ta", "127.0.0.42")
    leaf, key = test_ca.issue(mx.host)
    mx.start(pem(*test_ca.chain(leaf)), key_pem(key), pin="issuer")
    lab.mx_hosts.append(mx)
    rotated = TestCA("Rotated")
    next_leaf, next_key = rotated.issue(mx.host)
    timeline = run_rollover(lab, mx, pem(*rotated.chain(next_leaf)), key_pem(next_key))
    print(f"\nintermediate rotation of {mx.host}, TLSA TTL {TTL} s:\n{timeline.show()}")
    during = [d for d in dane_mail.deliveries(lab.sender)[lab.mark:] if d.recipient.endswith(mx.domain)]
    assert [d for d in during if d.status != "sent"] == [] and len(during) >= 20, timeline.show()
    next_issuer = str(tlsa_record(rotated.intermediate.certificate, 2))
    assert mx.published() == [next_issuer]
    published_at, installed_at = lab.rollover_times(mx.host, next_issuer)
    assert installed_at - published_at >= timedelta(seconds=2 * TTL), (published_at, installed_at)
