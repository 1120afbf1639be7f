"""Knot DNS (authoritative, DNSSEC-signing, RFC 2136 with TSIG) behind an unbound validating resolver.

All inside a `Netns`. The signed parent zone `test.` is the resolver's only trust anchor
and delegates three children, one per DNSSEC state a checker must tell apart:

    example.test  signed, correct DS in test.   -> answers are secure (AD bit)
    plain.test    unsigned, no DS               -> answers are insecure
    bogus.test    signed, a wrong DS in test.   -> the resolver answers SERVFAIL (bogus)

Zones outside `test.` (a DKIM signer's `sender.example`...) are added with `add_zone`:
unsigned, served by the same Knot and reached through the resolver by a stub.

Records are changed with `set_records` / `remove_records` (knotc zone transactions, signed
at once); dynamic updates signed with `tsig` are accepted for every zone. Caches are
flushed after each change so the next lookup sees it.
"""

import base64
import re
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.lab.netns import Netns

PARENT = "test"
SECURE = "example.test"
INSECURE = "plain.test"
BOGUS = "bogus.test"
AUTHORITATIVE = "127.0.0.10"
RESOLVER = "127.0.0.2"
PACKAGES = {"knotd": "knot", "knotc": "knot", "keymgr": "knot", "unbound": "unbound",
            "unbound-control": "unbound", "kdig": "knot-dnsutils"}


def missing() -> str | None:
    """None when the servers are installed, else what to install."""
    absent = sorted({package for binary, package in PACKAGES.items() if shutil.which(binary) is None})
    return f"needs Debian packages {' '.join(absent)}" if absent else None


@dataclass(frozen=True)
class Tsig:
    name: str
    algorithm: str
    secret: str  # base64

    def setting(self) -> str:
        """The form the application reads from DNS_TSIG_KEYS: name:algorithm:secret."""
        return f"{self.name}:{self.algorithm}:{self.secret}"


def txt(value: str) -> str:
    """A TXT value in zone-file form, split into 255-byte character strings."""
    return " ".join(f'"{value[i:i + 255]}"' for i in range(0, len(value), 255))


def _zone_text(zone: str, records: str) -> str:
    return (
        f"$ORIGIN {zone}.\n$TTL 60\n"
        f"@ SOA ns1.{zone}. hostmaster.{zone}. 1 300 60 86400 60\n"
        f"@ NS ns1.{zone}.\n"
        f"ns1 A {AUTHORITATIVE}\n"
        f"{records}\n"
    )


class DnsLab:
    """The running servers; `close()` stops them (the namespace's owner deletes it)."""

    def __init__(self, netns: Netns, folder: Path, zones: dict[str, str] | None = None):
        self.netns = netns
        self.folder = folder
        self.tsig = Tsig("stspolicy-test.", "hmac-sha256", base64.b64encode(secrets.token_bytes(32)).decode())
        self.resolver = RESOLVER
        self.authoritative = AUTHORITATIVE
        self.added_zones: list[str] = []
        for sub in ("zones", "knot", "unbound", "logs"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        zones = zones or {}
        children = ""
        for child in (SECURE, INSECURE, BOGUS):
            label = child.split(".")[0]
            children += f"{label} NS ns1.{child}.\nns1.{label} A {AUTHORITATIVE}\n"
            (folder / "zones" / f"{child}.zone").write_text(_zone_text(child, zones.get(child, "")))
        (folder / "zones" / f"{PARENT}.zone").write_text(_zone_text(PARENT, children + zones.get(PARENT, "")))
        self.knot_conf = folder / "knot" / "knot.conf"
        self.knot_conf.write_text(self._knot_conf())
        self._knotd = self.netns.popen("knotd", "-c", str(self.knot_conf), stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
        for zone in (PARENT, SECURE, BOGUS):
            self._wait_for(lambda zone=zone: self._ds(zone), f"Knot did not sign {zone}")
        self.set_records(PARENT, f"{SECURE}.", "DS", [self._ds(SECURE)], flush=False)
        # A DS that matches no key of bogus.test: its chain of trust is broken.
        self.set_records(PARENT, f"{BOGUS}.", "DS", ["12345 13 2 " + "00" * 32], flush=False)
        self.unbound_conf = folder / "unbound" / "unbound.conf"
        (folder / "unbound" / "anchors.txt").write_text(f"{PARENT}. 60 IN DS {self._ds(PARENT)}\n")
        self.unbound_conf.write_text(self._unbound_conf())
        self._unbound = self.netns.popen("unbound", "-d", "-c", str(self.unbound_conf), stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL)
        self._wait_for(lambda: re.search(r"Flags:[^;]* ad", self.dig(f"{SECURE}.", "SOA", "+dnssec")),
                       "unbound does not validate example.test")

    def close(self) -> None:
        """Stop Knot and unbound (the namespace stops whatever else it started)."""
        self.netns.stop(self._knotd, self._unbound)

    def add_zone(self, zone: str, records: list[str]) -> None:
        """Serve the unsigned `zone` with `records` (zone-file lines relative to it) from now on;
        `set_records` and `remove_records` change it as any other."""
        (self.folder / "zones" / f"{zone}.zone").write_text(_zone_text(zone, "\n".join(records)))
        self.added_zones.append(zone)
        self.knot_conf.write_text(self._knot_conf())
        self.knotc("reload")
        subprocess.run(["unbound-control", "-c", str(self.unbound_conf), "stub_add", f"{zone}.", f"{AUTHORITATIVE}@53"],
                       capture_output=True, timeout=30, check=True)
        self._wait_for(lambda: self.dig(f"{zone}.", "SOA", "+norecurse", "+short", server=AUTHORITATIVE).strip(),
                       f"Knot does not serve {zone}")
        self.flush()

    def _knot_conf(self) -> str:
        knot = self.folder / "knot"
        zones = ""
        for zone in (PARENT, SECURE, BOGUS, INSECURE, *self.added_zones):
            signing = "dnssec-signing: off" if zone in (INSECURE, *self.added_zones) else (
                "dnssec-signing: on\n    dnssec-policy: lab")
            zones += f"  - domain: {zone}\n    {signing}\n"
        return f"""server:
    rundir: "{knot}"
    user: root:root
    listen: {AUTHORITATIVE}@53
log:
  - target: "{self.folder / 'logs' / 'knotd.log'}"
    any: info
database:
    storage: "{knot / 'db'}"
    kasp-db: "{knot / 'kasp'}"
key:
  - id: {self.tsig.name}
    algorithm: {self.tsig.algorithm}
    secret: {self.tsig.secret}
acl:
  - id: update
    key: {self.tsig.name}
    action: update
policy:
  - id: lab
    algorithm: ecdsap256sha256
    ksk-lifetime: 0
    zsk-lifetime: 0
    nsec3: off
template:
  - id: default
    storage: "{self.folder / 'zones'}"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off
    acl: update
zone:
{zones}"""

    def _unbound_conf(self) -> str:
        unbound = self.folder / "unbound"
        return f"""server:
    interface: {RESOLVER}@53
    do-ip6: no
    do-daemonize: no
    username: ""
    chroot: ""
    pidfile: ""
    directory: "{unbound}"
    logfile: "{self.folder / 'logs' / 'unbound.log'}"
    use-syslog: no
    verbosity: 0
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    # test. is an RFC 6761 locally served zone in unbound's defaults
    local-zone: "{PARENT}." nodefault
    trust-anchor-file: "{unbound / 'anchors.txt'}"
    cache-max-ttl: 2
    cache-max-negative-ttl: 1
    harden-dnssec-stripped: yes
    val-log-level: 2
    module-config: "validator iterator"
remote-control:
    control-enable: yes
    control-use-cert: no
    control-interface: "{unbound / 'control.sock'}"
stub-zone:
    name: "{PARENT}."
    stub-addr: {AUTHORITATIVE}@53
"""

    def _ds(self, zone: str) -> str | None:
        """The SHA-256 DS rdata of a signed zone's KSK, once Knot has made the key."""
        result = subprocess.run(["keymgr", "-c", str(self.knot_conf), zone, "ds"], capture_output=True, text=True)
        match = re.search(r" DS (\d+ 13 2 [0-9a-fA-F]+)", result.stdout)
        return match.group(1) if match else None

    @staticmethod
    def _wait_for(condition, message: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.05)
        raise TimeoutError(message)

    def knotc(self, *args: str) -> str:
        result = subprocess.run(["knotc", "-c", str(self.knot_conf), *args], capture_output=True, text=True, timeout=30)
        if result.returncode != 0 or "error" in result.stdout.lower():
            raise RuntimeError(f"knotc {' '.join(args)}: {result.stdout}{result.stderr}")
        return result.stdout

    def set_records(self, zone: str, owner: str, rtype: str, values: list[str], ttl: int = 60,
                    flush: bool = True) -> None:
        """Replace the RRset `owner` `rtype` (owner absolute with a dot, or relative to `zone`)."""
        self.knotc("zone-begin", zone)
        try:
            subprocess.run(["knotc", "-c", str(self.knot_conf), "zone-unset", zone, owner, rtype],
                           capture_output=True, timeout=30)
            for value in values:
                self.knotc("zone-set", zone, owner, str(ttl), rtype, value)
            self.knotc("zone-commit", zone)
        except BaseException:
            subprocess.run(["knotc", "-c", str(self.knot_conf), "zone-abort", zone], capture_output=True)
            raise
        if flush:
            self.flush()

    def remove_records(self, zone: str, owner: str, rtype: str | None = None) -> None:
        self.knotc("zone-begin", zone)
        subprocess.run(["knotc", "-c", str(self.knot_conf), "zone-unset", zone, owner, *([rtype] if rtype else [])],
                       capture_output=True, timeout=30)
        self.knotc("zone-commit", zone)
        self.flush()

    def flush(self) -> None:
        """Forget cached answers for every lab name, so the next lookup asks Knot again."""
        control = ["unbound-control", "-c", str(self.unbound_conf)]
        zones = [["flush_zone", f"{zone}."] for zone in (PARENT, *self.added_zones)]
        for command in (*zones, ["flush_bogus"], ["flush_negative"]):
            subprocess.run([*control, *command], capture_output=True, timeout=30, check=True)

    def dig(self, name: str, rtype: str, *options: str, server: str | None = None) -> str:
        """`kdig` through the resolver (or `server`), run inside the namespace; its text output."""
        return self.netns.run("kdig", f"@{server or RESOLVER}", "+time=2", "+retry=1", *options,
                              name, rtype, check=False).stdout
