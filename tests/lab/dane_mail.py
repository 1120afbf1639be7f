"""A DANE mail path in the lab: the MX (Postfix taking mail for one domain), a DANE-validating
sending Postfix, and a stream of messages between them.

The sender asks a validating resolver of its own that caches answers for their TTL, as a
sender's resolver does (the lab's shared resolver keeps answers two seconds at most), so a
TLSA RRset changed too late is still in its cache when the MX changes its certificate.
"""

import contextlib
import re
import smtplib
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tests.lab import smtp
from tests.lab.dns import AUTHORITATIVE, PARENT, DnsLab
from tests.lab.netns import Netns

SENDER_RESOLVER = "127.0.0.3"


class CachingResolver:
    """unbound at `address`, validating from the lab's trust anchor, keeping answers for their TTL."""

    def __init__(self, dns_lab: DnsLab, folder: Path, address: str = SENDER_RESOLVER):
        self.netns, self.address = dns_lab.netns, address
        folder.mkdir(parents=True, exist_ok=True)
        self.conf = folder / "unbound.conf"
        self.conf.write_text(f"""server:
    interface: {address}@53
    do-ip6: no
    do-daemonize: no
    username: ""
    chroot: ""
    pidfile: ""
    directory: "{folder}"
    logfile: "{folder / 'unbound.log'}"
    use-syslog: no
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    local-zone: "{PARENT}." nodefault
    trust-anchor-file: "{dns_lab.folder / 'unbound' / 'anchors.txt'}"
    prefetch: no
    module-config: "validator iterator"
remote-control:
    control-enable: yes
    control-use-cert: no
    control-interface: "{folder / 'control.sock'}"
stub-zone:
    name: "{PARENT}."
    stub-addr: {AUTHORITATIVE}@53
""")
        self.process = self.netns.popen("unbound", "-d", "-c", str(self.conf), stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while "ad" not in dns_lab.dig(f"{PARENT}.", "SOA", "+dnssec", server=address).split("Flags:")[-1][:40]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"unbound at {address} does not validate")
            time.sleep(0.1)

    def flush(self) -> None:
        subprocess.run(["unbound-control", "-c", str(self.conf), "flush_zone", f"{PARENT}."], capture_output=True,
                       timeout=30, check=True)

    def close(self) -> None:
        self.netns.stop(self.process)


class _Instance(smtp.Postfix):
    """A private Postfix like smtp.Postfix, with a main.cf and master.cf of the caller's."""

    def __init__(self, netns: Netns, address: str, main_cf: str, *, resolv_conf: Path | None = None):
        self.netns = netns
        self.folder = folder = Path(smtp.tempfile.mkdtemp(prefix="stspolicy-postfix-"))
        folder.chmod(0o755)
        self.etc = folder / "etc"
        self.etc.mkdir()
        (folder / "queue").mkdir()
        (folder / "data").mkdir()
        smtp.shutil.chown(folder / "data", "postfix")
        self.log = folder / "postfix.log"
        (self.etc / "main.cf").write_text(f"""\
compatibility_level = 3.6
queue_directory = {folder / 'queue'}
data_directory = {folder / 'data'}
maillog_file = {self.log}
maillog_file_prefixes = {folder}
inet_interfaces = all
inet_protocols = ipv4
alias_maps =
alias_database =
local_recipient_maps =
mydestination =
{main_cf}""")
        (self.etc / "master.cf").write_text(f"{address}:25 inet n - n - - smtpd\n" + smtp.SERVICES)
        command = ("postfix", "-c", str(self.etc), "start-fg")
        if resolv_conf is not None:  # its own resolver: a mount namespace where /etc/resolv.conf is that file
            command = ("unshare", "--mount", "--propagation", "private", "sh", "-c",
                       f"mount --bind {resolv_conf} /etc/resolv.conf && exec {' '.join(command)}")
        with open(folder / "start.log", "wb") as output:
            self.process = netns.popen(*command, stdout=output, stderr=subprocess.STDOUT)
        try:
            self._wait_for_port(address)
        except RuntimeError as error:
            raise RuntimeError(f"{error}{(folder / 'start.log').read_text()}") from None

    def reload(self) -> None:
        self.netns.run("postfix", "-c", str(self.etc), "reload")


def receiving_mx(netns: Netns, address: str, domain: str, chain_file: Path, key_file: Path) -> _Instance:
    """The MX of `domain`: STARTTLS with the chain and key in those files (read again on reload), mail discarded."""
    return _Instance(netns, address, f"""\
myhostname = mx.{domain}
mydestination = {domain}
local_transport = discard
smtpd_relay_restrictions = permit_auth_destination, reject
smtpd_tls_security_level = may
smtpd_tls_chain_files = {key_file}, {chain_file}
smtpd_tls_session_cache_database =
smtpd_tls_received_header = no
""")


def dane_sender(netns: Netns, address: str, resolver: str, folder: Path) -> _Instance:
    """A relay for 127.0.0.0/8 that delivers with `smtp_tls_security_level = dane` (RFC 7672), asking `resolver`.

    No connection or TLS session reuse: every message is a new handshake, checked against the TLSA
    records the resolver gives at that moment.
    """
    folder.mkdir(parents=True, exist_ok=True)
    resolv_conf = folder / "resolv.conf"
    resolv_conf.write_text(f"nameserver {resolver}\noptions edns0 trust-ad\n")
    return _Instance(netns, address, """\
myhostname = sender.lab.test
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtp_dns_support_level = dnssec
smtp_tls_security_level = dane
smtp_tls_loglevel = 1
smtp_tls_session_cache_database =
smtp_connection_cache_on_demand = no
smtp_host_lookup = dns
""", resolv_conf=resolv_conf)


@dataclass(frozen=True)
class Delivery:
    recipient: str
    status: str  # sent, deferred, bounced
    reason: str


_DELIVERY = re.compile(r" to=<(?P<recipient>[^>]+)>, .*status=(?P<status>\w+) \((?P<reason>.*)\)$")


def deliveries(sender: _Instance) -> list[Delivery]:
    """What the sender's log says of each delivery attempt, in order."""
    if not sender.log.exists():
        return []
    lines = sender.log.read_text(errors="replace").splitlines()
    return [Delivery(match["recipient"], match["status"], match["reason"])
            for match in map(_DELIVERY.search, lines) if match]


class MessageStream:
    """Submits a message to the sender every `interval` seconds from a thread inside the namespace."""

    def __init__(self, netns: Netns, sender_address: str, recipient: str, interval: float = 0.5):
        self.netns, self.sender_address, self.recipient, self.interval = netns, sender_address, recipient, interval
        self.submitted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with self.netns.entered():
            while not self._stop.wait(self.interval):
                with contextlib.suppress(OSError, smtplib.SMTPException):
                    with smtplib.SMTP(self.sender_address, 25, timeout=5) as client:
                        client.sendmail("probe@sender.lab.test", [self.recipient],
                                        f"Subject: message {self.submitted}\r\n\r\nDANE lab\r\n")
                    self.submitted += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
