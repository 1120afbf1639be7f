"""Hostile input to every parser of the pure core: each refuses with its own error, never another.

Tables of known-bad input, then Hypothesis: whatever the text, a parser returns a value
or raises its documented error (ValueError subclasses that name what is wrong).
"""

import contextlib
import gzip
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reports.parsing.body import Limits, ReportError, ReportTooLarge, decode_body
from reports.parsing.message import mail_headers, parse_message, report_parts
from reports.parsing.schema import parse_report
from stspolicy.dns.dane import PemError, TlsaError, load_certificates, load_public_key, parse_tlsa
from stspolicy.dns.records import RecordError, parse_sts_record, parse_tlsrpt_record, select_record
from stspolicy.policies.names import InvalidName, normalize_domain, policy_domain_from_host
from stspolicy.policies.rules import PolicyError, make_policy, normalize_mx_pattern, parse_policy
from tests.support.reportdata import encode, report

SMALL = Limits(max_compressed=64 * 1024, max_decompressed=256 * 1024, max_depth=20, max_json_values=10_000,
               max_policies=10, max_failure_details=100, max_string=256, max_range_days=31)
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

BAD_POLICIES = [
    "", "\n", "version: STSv1", "version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1",
    "version: STSv1\nmode: block\nmx: a.example\nmax_age: 1", "version: STSv1\nmode: enforce\nmax_age: 1",
    "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1",
    "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 99999999999",
    "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1e3",
    "version: STSv1\rmode: enforce\rmx: a.example\rmax_age: 1", "version: STSv1\n\nmode: enforce",
    "version: STSv1\nmode: enforce\nmx: *.*.example\nmax_age: 1",
    "version: STSv1\nmode: enforce\nmx: a..example\nmax_age: 1",
    "version: STSv1\nmode: enforce\nmx: \x00.example\nmax_age: 1", "version:STSv1 mode:enforce",
    "version: STSv1\nmode: enforce\nmx: exa mple.com\nmax_age: 1", "\ufeffversion: STSv1",
    "version: STSv1\nmode: enforce\nmx: " + "a" * 300 + ".example\nmax_age: 1",
    "<html><body>not a policy</body></html>", "version: STSv1\nmode: enforce\nmx: 192.0.2.1\nmax_age: 1",
]
BAD_NAMES = ["", ".", "..", "com", "-a.example", "a-.example", "a..example", "a.example..", "a" * 64 + ".example",
             ("a" * 60 + ".") * 5 + "example", "exa mple.com", "a.1234", "a\x00b.example", "a/b.example",
             "a_b@example.com", "xn--zz.example", "\u200b.example", "exa\tmple.com", "ex*ample.com", "*.example.com"]
NOT_POLICY_HOSTS = [None, "", "mta-sts.", "mta-sts", "user@mta-sts.example.com", "[::1]", "mta-sts\u00e9.example",
                    "www.example.com", "mta-sts-example.com", "xmta-sts.example.com"]
BAD_MX = ["", "*", "*.", "*.com.", "a.*.example", "**.example", "mx..example", "mx.example:25", "mx example",
          "192.0.2.1", "[::1]", "mx\x00.example", "mx.example/25", "mx." + "a" * 64 + ".example"]
BAD_STS_RECORDS = ["", "v=STSv1", "v=STSv1;", "v=STSv1; id=", "v=STSv1; id=a-b", "v=STSv1; id=" + "a" * 33,
                   "v=STSv2; id=1", "id=1; v=STSv1", "v=STSv1; id=1; =x", "v=STSv1; id=1; x", "v=STSv1 id=1",
                   "v=STSv1; id=\u00e9", "V=STSv1; id=1", "v=STSv1; id=1\x00"]
BAD_TLSRPT_RECORDS = ["", "v=TLSRPTv1", "v=TLSRPTv1;", "v=TLSRPTv2; rua=mailto:a@b.c", "v=TLSRPTv1 rua=mailto:a@b.c",
                      "v=TLSRPTv1; rua=\u00e9@x.example", "v=TLSRPTv1; rua=mailto:a@b.c; x", "rua=mailto:a@b.c"]
UNUSABLE_RUA = ["v=TLSRPTv1; rua=", "v=TLSRPTv1; rua=ftp://x.example", "v=TLSRPTv1; rua=mailto:",
                "v=TLSRPTv1; rua=http://x.example/r", "v=TLSRPTv1; rua=https://", "v=TLSRPTv1; rua=mailto:a b@c.d",
                "v=TLSRPTv1; rua=javascript:alert(1)"]
BAD_TLSA = ["", "3", "3 1 1", "3 1 1 zz", "3 1 1 abc", "256 1 1 " + "00" * 32, "-1 1 1 " + "00" * 32,
            "a b c " + "00" * 32, "3 1 1 " + "00" * 31, "3 1 2 " + "00" * 32, "3 1 1 0x" + "00" * 31,
            "3.0 1 1 " + "00" * 32, "3 1 1 \u0661\u0662"]
BAD_PEM = [b"", b"not pem", b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
           b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", b"\x00" * 100,
           b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
           b"-----BEGIN CERTIFICATE-----\n" + b"A" * 5000 + b"\n-----END CERTIFICATE-----\n"]


def _json(text: str) -> bytes:
    return text.encode()


BAD_REPORT_BODIES = [
    b"", b"null", b"[]", b"{}", b"\"text\"", b"0", b"{", b"{]", _json("{\"a\":1}" * 2), b"\xff\xfe{}",
    b"[" * 100_000, b"{\"a\":" * 50_000, encode(report(**{"organization-name": ""})),
    encode(report(**{"organization-name": "x" * 10_000})), encode(report(**{"organization-name": "a\u0000b"})),
    encode(report(**{"report-id": ["a"]})),
    encode(report(policies={"policy": 1})), encode(report(policies=[None])), encode(report(policies=[1] * 20)),
    encode(report(**{"date-range": {"start-datetime": "yesterday", "end-datetime": "today"}})),
    encode(report(**{"date-range": {"start-datetime": "2026-11-02T00:00:00Z",
                                    "end-datetime": "2026-11-01T00:00:00Z"}})),
    encode(report(**{"date-range": {"start-datetime": "2026-01-01T00:00:00Z",
                                    "end-datetime": "2026-12-31T00:00:00Z"}})),
    encode(report(**{"date-range": {"start-datetime": "9999-99-99T00:00:00Z",
                                    "end-datetime": "2026-11-01T00:00:00Z"}})),
    encode(report(**{"date-range": "2026-11-01"})), _json(json.dumps(report()).replace("10,", "1e400,", 1)),
    _json(json.dumps(report()).replace("10,", "-10,", 1)), _json(json.dumps(report()).replace("10,", "10.5,", 1)),
    _json(json.dumps(report()).replace("10,", "\"10\",", 1)), _json(json.dumps(report()).replace("10,", "true,", 1)),
    _json(json.dumps(report()).replace("10,", str(2**70) + ",", 1)),
    _json(json.dumps(report()).replace("\"sts\"", "\"STS-but-not\"", 1)),
    _json(json.dumps(report()).replace("\"certificate-expired\"", "\"" + "x" * 300 + "\"", 1)),
    _json(json.dumps(report()).replace("\"192.0.2.1\"", "\"999.0.2.1\"", 1)),
    _json(json.dumps(report()).replace("\"192.0.2.1\"", "\"192.0.2.1\\u0000\"", 1)),
    _json(json.dumps(report()).replace("\"example.com\"", "\"exa mple.com\"", 1)),
    _json(json.dumps(report())[:-1]), _json(json.dumps(report()) + "garbage"),
    _json(json.dumps(report()).replace("{", "{\"organization-name\": \"dup\", ", 1)),
    gzip.compress(b"not json"), gzip.compress(encode(report()))[:-8], b"\x1f\x8b" + b"\x00" * 20,
    gzip.compress(gzip.compress(b"{}")), gzip.compress(b"\x00" * (512 * 1024)),
    gzip.compress(b" " * (300 * 1024) + encode(report())),
]


@pytest.mark.parametrize("text", BAD_POLICIES)
def test_a_bad_policy_text_is_refused_with_a_policy_error(text):
    with pytest.raises(PolicyError):
        parse_policy(text)


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_bad_domain_name_is_refused_with_invalid_name(name):
    with pytest.raises(InvalidName):
        normalize_domain(name)


@pytest.mark.parametrize("host", NOT_POLICY_HOSTS)
def test_a_host_that_is_no_policy_host_names_no_policy_domain(host):
    assert policy_domain_from_host(host) is None


@pytest.mark.parametrize("pattern", BAD_MX)
def test_a_bad_mx_pattern_is_refused_with_a_policy_error(pattern):
    with pytest.raises(PolicyError):
        normalize_mx_pattern(pattern, strict=True)


@pytest.mark.parametrize("record", BAD_STS_RECORDS)
def test_a_bad_mta_sts_record_is_refused_with_a_record_error(record):
    with pytest.raises(RecordError):
        parse_sts_record(record)


@pytest.mark.parametrize("record", BAD_TLSRPT_RECORDS)
def test_a_bad_tlsrpt_record_is_refused_with_a_record_error(record):
    with pytest.raises(RecordError):
        parse_tlsrpt_record(record)


@pytest.mark.parametrize("record", UNUSABLE_RUA)
def test_a_tlsrpt_record_without_a_usable_uri_says_so(record):
    parsed = parse_tlsrpt_record(record)
    assert parsed.rua == () and len(parsed.unusable_rua) == 1


@pytest.mark.parametrize("text", BAD_TLSA)
def test_a_bad_tlsa_record_is_refused_with_a_tlsa_error(text):
    with pytest.raises(TlsaError):
        parse_tlsa(text)


@pytest.mark.parametrize("data", BAD_PEM)
def test_bad_pem_is_refused_with_a_pem_error(data):
    with pytest.raises(PemError):
        load_certificates(data)
    with pytest.raises(PemError):
        load_public_key(data)


@pytest.mark.parametrize("body", BAD_REPORT_BODIES, ids=range(len(BAD_REPORT_BODIES)))
def test_a_bad_report_body_is_refused_with_a_report_error_naming_its_place(body):
    with pytest.raises(ReportError) as refused:
        data, _notes = decode_body(body, SMALL)
        parse_report(data, SMALL)
    assert refused.value.path.startswith(("$", "mail", "body")) and refused.value.message


# Properties: whatever the input, the documented error or a value.

@FAST
@given(st.text(max_size=400))
def test_any_policy_text_parses_or_is_refused_with_a_policy_error(text):
    try:
        policy = parse_policy(text)
    except PolicyError:
        return
    assert policy.mode in ("enforce", "testing", "none")


@FAST
@given(st.one_of(st.text(max_size=300), st.from_regex(r"[a-z0-9.*-]{0,80}", fullmatch=True)))
def test_any_name_normalizes_or_is_refused(name):
    try:
        normalized = normalize_domain(name)
    except InvalidName:
        return
    assert normalized == normalized.lower() and normalized.isascii() and len(normalized) <= 253
    assert normalize_domain(normalized) == normalized


@FAST
@given(st.one_of(st.none(), st.text(max_size=300)))
def test_any_host_header_gives_a_domain_to_look_up_or_none(host):
    domain = policy_domain_from_host(host)
    assert domain is None or (domain and domain == domain.lower() and not domain.endswith("."))


@FAST
@given(st.text(max_size=100), st.lists(st.text(max_size=60), max_size=5),
       st.one_of(st.integers(), st.text(max_size=20)))
def test_any_policy_fields_make_a_policy_or_a_policy_error(mode, mx, max_age):
    try:
        make_policy(mode, mx, max_age)
    except PolicyError as error:
        assert error.field and error.message


@FAST
@given(st.one_of(st.text(max_size=300), st.from_regex(r"v=STSv1; ?id=[A-Za-z0-9]{0,40}(; ?[a-z]+=[ -~]{0,20}){0,3}")))
def test_any_sts_record_parses_or_is_refused(record):
    try:
        parsed = parse_sts_record(record)
    except RecordError:
        return
    assert 1 <= len(parsed.policy_id) <= 32 and parsed.policy_id.isalnum()


@FAST
@given(st.one_of(st.text(max_size=300), st.from_regex(r"v=TLSRPTv1; ?rua=[ -~]{0,60}")))
def test_any_tlsrpt_record_parses_or_is_refused(record):
    with contextlib.suppress(RecordError):
        parse_tlsrpt_record(record)


@FAST
@given(st.lists(st.text(max_size=80), max_size=5), st.sampled_from(["v=STSv1", "v=TLSRPTv1"]))
def test_selecting_one_record_among_any_answers_gives_one_or_a_record_error(records, prefix):
    try:
        chosen = select_record(records, prefix)
    except RecordError:
        return
    assert chosen in records


@FAST
@given(st.one_of(st.text(max_size=200), st.from_regex(r"[0-9]{1,3} [0-9]{1,3} [0-9]{1,3} [0-9a-fA-F ]{0,80}")))
def test_any_tlsa_text_parses_or_is_refused(text):
    try:
        record = parse_tlsa(text)
    except TlsaError:
        return
    assert 0 <= record.usage <= 255


@FAST
@given(st.binary(max_size=2000))
def test_any_bytes_as_pem_load_or_are_refused(data):
    for load in (load_certificates, load_public_key):
        with contextlib.suppress(PemError):
            load(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=20), children, max_size=4),
    max_leaves=30,
)


def _mutated(document: dict, path: list, value) -> dict:
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return document


REPORT_PLACES = [["organization-name"], ["report-id"], ["contact-info"], ["date-range"], ["policies"],
                 ["date-range", "start-datetime"], ["policies", 0], ["policies", 0, "policy"],
                 ["policies", 0, "summary"], ["policies", 0, "failure-details"],
                 ["policies", 0, "policy", "policy-type"], ["policies", 0, "policy", "policy-string"],
                 ["policies", 0, "summary", "total-failure-session-count"],
                 ["policies", 0, "failure-details", 0, "result-type"],
                 ["policies", 0, "failure-details", 0, "failed-session-count"],
                 ["policies", 0, "failure-details", 0, "receiving-ip"]]


@FAST
@given(st.sampled_from(REPORT_PLACES), json_values)
def test_a_report_with_any_value_anywhere_parses_or_is_refused_with_its_path(place, value):
    body = encode(_mutated(report(), place, value))
    try:
        parse_report(body, SMALL)
    except ReportError as error:
        assert error.path.startswith("$")


@FAST
@given(st.binary(max_size=3000))
def test_any_bytes_as_a_report_body_parse_or_are_refused(body):
    try:
        data, _notes = decode_body(body, SMALL)
        parse_report(data, SMALL)
    except ReportError as error:
        assert error.message


@FAST
@given(st.binary(max_size=3000))
def test_any_bytes_as_a_mail_give_its_headers_and_report_parts(raw):
    message = parse_message(raw, 100)
    mail_headers(message)
    assert all(part.data is not None for part in report_parts(message))


mime_lines = st.lists(st.sampled_from([
    "Content-Type: multipart/mixed; boundary=b", "Content-Type: application/tlsrpt+gzip; name=r.json.gz",
    "Content-Type: application/tlsrpt+json", "Content-Transfer-Encoding: base64", "Content-Transfer-Encoding: 7bit",
    "--b", "--b--", "", "H4sIAAAAAAAA/w==", "{\"organization-name\": 1}", "TLS-Report-Submitter: example",
    "Subject: =?utf-8?b?////?=", "From: <@>", "Content-Disposition: attachment; filename*=utf-8''%ff%fe",
]), max_size=40)


@FAST
@given(mime_lines)
def test_any_mime_structure_gives_its_report_parts_or_is_refused_as_too_deep(lines):
    try:
        message = parse_message("\r\n".join(lines).encode(), 100)
    except ReportTooLarge as error:
        assert error.message.startswith("MIME parts nested more than")
        return
    mail_headers(message)
    report_parts(message)
