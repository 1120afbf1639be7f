"""Hostile DNS answers: whatever a name server sends back, a look-up gives an Answer, and the
records in it parse or are refused with a RecordError. Never an exception of another kind.

A small name server on loopback answers each query by the first label of the name asked.
"""

import socket
import struct
import threading

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from stspolicy.dns.records import RecordError, parse_sts_record, parse_tlsrpt_record, select_record
from stspolicy.dns.resolver import BOGUS, INDETERMINATE, Resolver


def _rrset(name, rdtype, *texts, ttl=300):
    return dns.rrset.from_text(name, ttl, dns.rdataclass.IN, rdtype, *texts)


def _txt(query, *values):
    response = dns.message.make_response(query)
    response.answer.append(_rrset(query.question[0].name, "TXT", *values))
    return response


def _cname_chain(query, length: int, loop: bool = False):
    response = dns.message.make_response(query)
    name = query.question[0].name
    for step in range(length):
        target = query.question[0].name if loop and step == length - 1 else dns.name.from_text(f"c{step}.hostile.test")
        response.answer.append(_rrset(name, "CNAME", target.to_text()))
        name = target
    return response


def _rcode(code):
    def answer(query):
        response = dns.message.make_response(query)
        response.set_rcode(code)
        return response
    return answer


def _truncated(query):
    response = dns.message.make_response(query)
    response.flags |= dns.flags.TC
    return response


BEHAVIOURS = {
    "garbage": lambda query: b"\x00\x01garbage",
    "empty": lambda query: b"",
    "silent": lambda query: None,
    "wrongid": lambda query: struct.pack("!H", (query.id + 1) % 65536) + _txt(query, '"v=STSv1; id=1"').to_wire()[2:],
    "nonascii": lambda query: _txt(query, '"v=STSv1; id=\\255\\254"'),
    "nul": lambda query: _txt(query, '"v=STSv1; id=1\\000"'),
    "two": lambda query: _txt(query, '"v=STSv1; id=1"', '"v=STSv1; id=2"'),
    "many": lambda query: _txt(query, *[f'"v=STSv1; id={n}"' for n in range(100)]),
    "split": lambda query: _txt(query, '"v=STS" "v1; id=" "12345"'),
    "long": lambda query: _txt(query, " ".join(['"' + "a" * 255 + '"'] * 100)),
    "junk": lambda query: _txt(query, '"v=STSv1;;;; id=;;; x"'),
    "tlsrptjunk": lambda query: _txt(query, '"v=TLSRPTv1; rua=javascript:alert(1),mailto:,https://"'),
    "chain20": lambda query: _cname_chain(query, 20),
    "loop": lambda query: _cname_chain(query, 3, loop=True),
    "othername": lambda query: _txt(dns.message.make_query("unrelated.example", "TXT"), '"v=STSv1; id=1"'),
    "servfail": _rcode(dns.rcode.SERVFAIL),
    "refused": _rcode(dns.rcode.REFUSED),
    "notimp": _rcode(dns.rcode.NOTIMP),
    "nxdomain": _rcode(dns.rcode.NXDOMAIN),
    "truncated": lambda query: _truncated(query),
    "wrongtype": lambda query: (lambda response: (response.answer.append(
        _rrset(query.question[0].name, "A", "192.0.2.1")), response)[1])(dns.message.make_response(query)),
    "mxroot": lambda query: (lambda response: (response.answer.append(
        _rrset(query.question[0].name, "MX", "0 .", "65535 mx.hostile.test.")), response)[1])(
        dns.message.make_response(query)),
}


class HostileNameServer:
    """UDP and TCP on one loopback port; the first label of the question picks the behaviour."""

    def __init__(self):
        self.udp, self.tcp = self._bind_pair()
        self.port = self.udp.getsockname()[1]
        for target in (self._serve_udp, self._serve_tcp):
            threading.Thread(target=target, daemon=True).start()

    @staticmethod
    def _bind_pair() -> tuple[socket.socket, socket.socket]:
        """A free UDP port may be taken for TCP by another test's connection: try the next one."""
        for _ in range(100):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind(("127.0.0.1", 0))
            try:
                return udp, socket.create_server(("127.0.0.1", udp.getsockname()[1]))
            except OSError:
                udp.close()
        raise OSError("no loopback port free for both UDP and TCP")

    def _answer(self, wire: bytes) -> bytes | None:
        query = dns.message.from_wire(wire)
        label = query.question[0].name.labels[0].decode()
        answer = BEHAVIOURS[label](query)
        return answer if answer is None or isinstance(answer, bytes) else answer.to_wire(max_size=65535)

    def _serve_udp(self):
        while True:
            try:
                wire, client = self.udp.recvfrom(4096)
            except OSError:
                return
            answer = self._answer(wire)
            if answer is not None:
                self.udp.sendto(answer, client)

    def _serve_tcp(self):
        while True:
            try:
                connection, _ = self.tcp.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(2)
                try:
                    length = struct.unpack("!H", connection.recv(2))[0]
                    answer = self._answer(connection.recv(length))
                    connection.sendall(b"\xff\xff" + b"x" * 10 if answer is None else
                                       struct.pack("!H", len(answer)) + answer)
                except (OSError, struct.error):
                    pass

    def close(self):
        self.udp.close()
        self.tcp.close()


@pytest.fixture(scope="module")
def resolver():
    server = HostileNameServer()
    yield Resolver(nameservers=[f"127.0.0.1:{server.port}"], timeout=0.5)
    server.close()


@pytest.mark.parametrize("label", BEHAVIOURS)
@pytest.mark.parametrize("rdtype", ["TXT", "MX"])
def test_any_answer_of_a_name_server_is_an_answer_whose_records_parse_or_are_refused(resolver, label, rdtype):
    answer = resolver.lookup(f"{label}.hostile.test", rdtype)
    assert answer.rcode and answer.state
    if answer.failed:
        assert answer.state in (BOGUS, INDETERMINATE) and not answer.records
    for prefix, parse in (("v=STSv1", parse_sts_record), ("v=TLSRPTv1", parse_tlsrpt_record)):
        try:
            parse(select_record(list(answer.records), prefix))
        except RecordError as error:
            assert str(error)
