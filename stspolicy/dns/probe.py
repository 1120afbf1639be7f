"""STARTTLS probe of an SMTP server: what a sender sees on port 25, with a timeout on every step.

Only public addresses are probed unless a network is allowed by configuration: the
service must not become a tool to reach inside the network it runs in.
"""

import ipaddress
import select
import socket
import time
from dataclasses import dataclass

from cryptography import x509
from OpenSSL import SSL

MAX_REPLY_BYTES = 16384  # an EHLO reply is a few hundred bytes; anything larger is refused


class ProbeError(Exception):
    """The conversation with the server failed; the message says at which step."""


@dataclass(frozen=True)
class ProbeResult:
    host: str
    address: str | None
    error: str | None = None  # why there is no TLS session (refused target, connect, STARTTLS, handshake)
    starttls: bool = False  # offered in the EHLO reply
    tls_version: str | None = None
    chain: tuple[x509.Certificate, ...] = ()


# IPv6 prefixes that carry an IPv4 address in their last 32 bits, which is where a connection
# to them may end up: NAT64 (RFC 6052), IPv4-compatible (RFC 4291 2.5.5.1), IPv4-translated (RFC 2765).
IPV4_IN_LAST_32_BITS = tuple(ipaddress.ip_network(prefix) for prefix in ("64:ff9b::/96", "::/96", "::ffff:0:0:0/96"))
# RFC 8215 local-use NAT64: inside the operator's network, wherever the IPv4 address sits in it.
LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")


def refusal(address: str, allowed_networks: list[str]) -> str | None:
    """Why `address` must not be probed, or None: private, loopback, link-local, ... unless allowed.

    An IPv6 address that carries an IPv4 one (mapped, 6to4, Teredo, NAT64) is judged by that too.
    """
    ip = ipaddress.ip_address(address)
    if any(ip in ipaddress.ip_network(network) for network in allowed_networks):
        return None
    if not ip.is_global or ip.is_multicast or ip in LOCAL_NAT64:
        return f"{address} is not a public address (allow its network with PROBE_ALLOWED_NETWORKS)"
    inner = embedded_ipv4(ip)
    if inner is not None and refusal(str(inner), allowed_networks):
        return f"{address} leads to {inner}, not a public address (allow its network with PROBE_ALLOWED_NETWORKS)"
    return None


def embedded_ipv4(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address leads to, if it carries one."""
    if ip.version == 4:
        return None
    if ip.teredo:
        return ip.teredo[1]  # the client's address, where the traffic goes
    if ip.ipv4_mapped or ip.sixtofour:
        return ip.ipv4_mapped or ip.sixtofour
    if any(ip in prefix for prefix in IPV4_IN_LAST_32_BITS):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def probe_starttls(host: str, addresses: list[str], *, server_name: str | None = None, port: int = 25,
                   timeout: float = 10.0, ehlo_name: str = "localhost",
                   allowed_networks: list[str] = ()) -> ProbeResult:
    """Probe the first address that accepts a connection; one result per MX host.

    SNI is `server_name`, else `host`: a DANE client sends the TLSA base domain, which is the
    MX host's CNAME expansion when the TLSA records were found there (RFC 7672 section 8.1).
    """
    if not addresses:
        return ProbeResult(host, None, error="no addresses to probe")
    result = None
    for address in addresses:
        reason = refusal(address, list(allowed_networks))
        if reason:
            result = ProbeResult(host, address, error=f"not probed: {reason}")
            continue
        result = _probe_address(host, address, port, timeout, ehlo_name, server_name or host)
        if not (result.error or "").startswith("connect"):
            return result
    return result


def _probe_address(host: str, address: str, port: int, timeout: float, ehlo_name: str,
                   server_name: str) -> ProbeResult:
    try:
        sock = socket.create_connection((address, port), timeout=timeout)
    except OSError as error:
        return ProbeResult(host, address, error=f"connect to {address} port {port}: {error.strerror or error}")
    offered = False
    with sock:
        try:
            _expect(sock, None, 220, "greeting", timeout)
            lines = _expect(sock, f"EHLO {ehlo_name}", 250, "EHLO", timeout)
            offered = any(line[4:].strip().upper() == "STARTTLS" for line in lines)
            if not offered:
                return ProbeResult(host, address, error="STARTTLS not offered")
            _expect(sock, "STARTTLS", 220, "STARTTLS", timeout)
            connection = _handshake(sock, server_name, timeout)
        except ProbeError as error:
            return ProbeResult(host, address, error=str(error), starttls=offered)
        chain = tuple(connection.get_peer_cert_chain(as_cryptography=True) or ())
        version = connection.get_protocol_version_name()
        try:
            connection.sendall(b"QUIT\r\n")
            connection.shutdown()
        except SSL.Error:
            pass
        return ProbeResult(host, address, starttls=True, tls_version=version, chain=chain)


def _expect(sock: socket.socket, command: str | None, code: int, step: str, timeout: float) -> list[str]:
    """Send `command` (if any) and read one reply within `timeout`; ProbeError unless its code is `code`."""
    try:
        if command:
            sock.sendall(command.encode("ascii") + b"\r\n")
        lines = _read_reply(sock, time.monotonic() + timeout)
    except (OSError, ProbeError) as error:
        raise ProbeError(f"{step}: {error}") from None
    if not lines[-1].startswith(str(code)):
        raise ProbeError(f"{step}: server answered {lines[-1][:200]!r}")
    return lines


def _read_reply(sock: socket.socket, deadline: float) -> list[str]:
    """An SMTP reply (RFC 5321 section 4.2): lines `NNN-text` ending with `NNN text`, whole by `deadline`
    (a server sending a byte at a time must not hold the probe for ever)."""
    data = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ProbeError("timed out")
        sock.settimeout(remaining)
        chunk = sock.recv(4096)
        if not chunk:
            raise ProbeError("connection closed by the server")
        data += chunk
        if len(data) > MAX_REPLY_BYTES:
            raise ProbeError(f"reply longer than {MAX_REPLY_BYTES} bytes")
        lines = data.decode("ascii", "replace").split("\r\n")
        if data.endswith(b"\r\n") and len(lines) > 1 and len(lines[-2]) >= 3 and lines[-2][3:4] != "-":
            return lines[:-1]


def _handshake(sock: socket.socket, server_name: str, timeout: float) -> SSL.Connection:
    """TLS over the connection, with SNI; the chain is judged afterwards, so nothing is verified here."""
    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    context.set_verify(SSL.VERIFY_NONE)
    connection = SSL.Connection(context, sock)
    connection.set_tlsext_host_name(server_name.encode("idna"))
    connection.set_connect_state()
    deadline = time.monotonic() + timeout
    while True:
        try:
            connection.do_handshake()
            return connection
        except SSL.WantReadError:
            _wait(sock, deadline, read=True)
        except SSL.WantWriteError:
            _wait(sock, deadline, read=False)
        except SSL.Error as error:
            raise ProbeError(f"TLS handshake: {error}") from None


def _wait(sock: socket.socket, deadline: float, *, read: bool) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise ProbeError("TLS handshake: timed out")
    readable, writable, _ = select.select([sock] if read else [], [] if read else [sock], [], remaining)
    if not (readable or writable):
        raise ProbeError("TLS handshake: timed out")
