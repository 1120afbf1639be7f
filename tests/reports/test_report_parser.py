"""The pure report parser: real samples, real-world tolerances, strict refusals naming the JSON path."""

import gzip
import json
import zlib
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reports.parsing.body import Budget, Limits, ReportError, ReportTooLarge, decode_body
from reports.parsing.message import MAX_MIME_DEPTH, parse_message, report_parts
from reports.parsing.schema import parse_report
from tests.support.reportdata import SAMPLE_COUNTS, SAMPLES, STS_LINES, VALID, encode, report


def parse_sample(name: str):
    raw = (SAMPLES / name).read_bytes()
    if name.endswith(".eml"):
        raw = report_parts(parse_message(raw, 100))[0].data
    data, _ = decode_body(raw, Limits())
    return parse_report(data)


@pytest.mark.parametrize("name", sorted(SAMPLE_COUNTS))
def test_every_sample_parses_with_the_counts_it_contains(name):
    organization, report_id, blocks = SAMPLE_COUNTS[name]
    parsed = parse_sample(name)
    assert (parsed.organization_name, parsed.report_id) == (organization, report_id)
    assert [
        (p.policy_type, p.policy_domain, p.successful_session_count, p.failed_session_count, len(p.failure_details))
        for p in parsed.policies
    ] == blocks


def test_rfc_example_keeps_every_failure_detail_field():
    detail = parse_sample("rfc8460.json").policies[0].failure_details[1]
    assert detail.result_type == "starttls-not-supported"
    assert detail.sending_mta_ip == "2001:db8:abcd:13::1"  # normalised (RFC 5952)
    assert detail.receiving_ip == "203.0.113.56"
    assert detail.receiving_mx_hostname == "mx2.mail.company-y.example"
    assert detail.failed_session_count == 200
    assert detail.additional_information.endswith("#StarttlsNotSupported")


def test_mail_ru_details_without_addresses_and_midnight_end_are_accepted():
    parsed = parse_sample("mail.ru.json")
    assert [d.sending_mta_ip for d in parsed.policies[0].failure_details] == [None, None]
    assert parsed.day.isoformat() == "2024-02-22"
    assert parsed.notes == ()


def test_mx_host_as_string_list_or_pattern_key_reads_the_same():
    for policy_extra in ({"mx-host": "mx1.example.com"}, {"mx-host": ["MX1.example.com"]},
                         {"mx-host-pattern": "mx1.example.com"}):
        document = report()
        policy = document["policies"][0]["policy"]
        del policy["mx-host"]
        policy.update(policy_extra)
        assert parse_report(encode(document)).policies[0].mx_hosts == ("mx1.example.com",)


def test_tolerated_deviations_are_accepted_and_noted():
    document = report(contact_info=None)
    document["policies"][0]["policy"]["policy-domain"] = "Bücher.example"
    document["date-range"]["end-datetime"] = "2026-11-03T00:00:00+02:00"
    parsed = parse_report(b"\xef\xbb\xbf" + encode(document))
    assert parsed.contact_info is None
    assert parsed.policies[0].policy_domain == "xn--bcher-kva.example"
    assert any("byte order mark" in note for note in parsed.notes)
    assert any("contact-info" in note for note in parsed.notes)
    assert any("not one day" in note for note in parsed.notes)


def test_dates_without_a_zone_offset_are_read_as_utc_and_noted():
    """Microsoft sends `2024-03-26T00:00:00` at times (JSON-04)."""
    parsed = parse_report(encode(report(date_range={"start-datetime": "2026-11-01T00:00:00",
                                                    "end-datetime": "2026-11-01T23:59:59Z"})))
    assert parsed.start_datetime == datetime(2026, 11, 1, tzinfo=UTC)
    assert parsed.notes == ("$.date-range.start-datetime: no zone offset, read as UTC",)


def test_microsoft_fetch_error_block_without_policy_string_or_mx_host():
    document = report()
    document["policies"][0]["policy"] = {"policy-type": "sts", "policy-domain": "example.com"}
    document["policies"][0]["failure-details"] = [{"result-type": "sts-policy-fetch-error", "failed-session-count": 3}]
    block = parse_report(encode(document)).policies[0]
    assert (block.policy_strings, block.mx_hosts, block.failure_details[0].result_type) == (
        (), (), "sts-policy-fetch-error")


def test_no_policy_found_without_policy_domain_and_without_failure_details():
    document = report()
    document["policies"][0] = {"policy": {"policy-type": "no-policy-found"},
                               "summary": {"total-successful-session-count": 4, "total-failure-session-count": 0}}
    block = parse_report(encode(document)).policies[0]
    assert (block.policy_domain, block.failure_details) == (None, ())


def test_unknown_result_type_is_kept_as_given():
    document = report()
    document["policies"][0]["failure-details"][0]["result-type"] = "some-future-type"
    assert parse_report(encode(document)).policies[0].failure_details[0].result_type == "some-future-type"


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda d: d.pop("report-id"), "$.report-id"),
        (lambda d: d.update(policies={"policy": {}}), "$.policies"),
        (lambda d: d["policies"][0]["summary"].update({"total-failure-session-count": "2"}),
         "$.policies[0].summary.total-failure-session-count"),
        (lambda d: d["policies"][0]["summary"].update({"total-failure-session-count": -1}),
         "$.policies[0].summary.total-failure-session-count"),
        (lambda d: d["policies"][0]["failure-details"][0].update({"failed-session-count": 1.5}),
         "$.policies[0].failure-details[0].failed-session-count"),
        (lambda d: d["policies"][0]["failure-details"][0].update({"sending-mta-ip": "192.168.001.001"}),
         "$.policies[0].failure-details[0].sending-mta-ip"),
        (lambda d: d["date-range"].update({"start-datetime": "2026-11-02T00:00:00Z"}), "$.date-range"),
        (lambda d: d["date-range"].update({"end-datetime": "yesterday"}), "$.date-range.end-datetime"),
        (lambda d: d["date-range"].update({"end-datetime": "9999-12-31T23:59:59-14:00"}), "$.date-range.end-datetime"),
        (lambda d: d["date-range"].update({"start-datetime": "0001-01-01T00:00:00+14:00"}),
         "$.date-range.start-datetime"),
        (lambda d: d["date-range"].update({"start-datetime": "20261101T000000Z"}), "$.date-range.start-datetime"),
        (lambda d: d["policies"][0]["policy"].update({"policy-type": "dane"}), "$.policies[0].policy.policy-type"),
    ],
)
def test_strict_refusals_name_the_json_path(change, path):
    document = report()
    change(document)
    with pytest.raises(ReportError) as caught:
        parse_report(encode(document))
    assert caught.value.path == path
    assert caught.value.status == 400


def test_a_count_or_a_sum_of_counts_beyond_2_40_is_refused_where_it_goes_over():
    document = report()
    document["policies"][0]["summary"]["total-successful-session-count"] = 2**40 - 4
    parse_report(encode(document))  # 2^40 - 4 + 2 + 2
    document["policies"][0]["failure-details"][0]["failed-session-count"] = 2**40 + 1
    with pytest.raises(ReportError, match="between 0 and 1099511627776") as caught:
        parse_report(encode(document))
    assert caught.value.path == "$.policies[0].failure-details[0].failed-session-count"
    document = report(policies=VALID["policies"] * 2)
    document["policies"][1]["summary"]["total-successful-session-count"] = 2**40 - 4
    with pytest.raises(ReportError, match="add up to more than") as caught:
        parse_report(encode(document))
    assert (caught.value.path, caught.value.status) == ("$.policies[1]", 400)


def test_duplicate_member_names_are_refused_where_they_occur():
    text = encode(VALID).replace(b'"policy-type": "sts"', b'"policy-type": "sts", "policy-type": "tlsa"')
    with pytest.raises(ReportError) as caught:
        parse_report(text)
    assert caught.value.path == "$.policies[0].policy"
    assert "policy-type" in caught.value.message


def test_limits_refuse_with_413():
    limits = Limits(max_policies=2, max_failure_details=3, max_string=50, max_depth=6)
    many = report(policies=VALID["policies"] * 3)
    details = report()
    details["policies"][0]["failure-details"] *= 4
    long = report(organization_name="x" * 51)
    for document in (many, details, long):
        with pytest.raises(ReportTooLarge):
            parse_report(encode(document), limits)
    deep = report(extension=[[[[[["too deep"]]]]]])
    with pytest.raises(ReportError, match="nested deeper"):
        parse_report(encode(deep), limits)


def test_gzip_bomb_is_refused_without_keeping_its_output():
    bomb = gzip.compress(b"{" + b" " * (20 * 1024 * 1024) + b"}", 9)
    assert len(bomb) < 64 * 1024
    with pytest.raises(ReportTooLarge, match="decompressed"):
        decode_body(bomb, Limits(max_decompressed=1024 * 1024))


def test_a_body_may_decompress_to_a_hundred_times_its_size_or_to_a_mib():
    small = b"{" + b" " * 1_000_000 + b"}"
    assert decode_body(gzip.compress(small), Limits())[0] == small  # far above the ratio, below 1 MiB
    bomb = gzip.compress(b"{" + b" " * (20 * 1024 * 1024) + b"}", 9)
    with pytest.raises(ReportTooLarge, match=f"body of {len(bomb)} bytes decompresses to more than 100 times"):
        decode_body(bomb, Limits())


def test_truncated_corrupt_and_trailing_gzip_are_malformed():
    body = gzip.compress(encode(VALID))
    for broken in (body[:-10], body[:10] + b"\x00" * 20 + body[30:], body + b"garbage"):
        with pytest.raises(ReportError) as caught:
            decode_body(broken, Limits())
        assert caught.value.status == 400


def test_gzip_members_and_gzip_inside_gzip_are_read():
    data = encode(VALID)
    assert decode_body(gzip.compress(data[:50]) + gzip.compress(data[50:]), Limits())[0] == data
    assert decode_body(gzip.compress(gzip.compress(data)), Limits()) == (data, ["gzip inside gzip"])


def test_a_large_deflate_stream_is_read_whole():
    data = json.dumps(report(padding="y" * 3_000_000)).encode()
    compressor = zlib.compressobj(9, wbits=31)
    body = compressor.compress(data) + compressor.flush()
    assert decode_body(body, Limits(max_ratio=10_000))[0] == data


def test_the_reports_of_one_mail_share_its_decompression_budget():
    limits = Limits(max_decompressed=1000)
    budget = Budget(limits.max_decompressed)
    part = gzip.compress(b" " * 400 + b"{}")
    decode_body(part, limits, budget)
    decode_body(part, limits, budget)
    assert budget.remaining == 1000 - 2 * 402
    with pytest.raises(ReportTooLarge, match="the reports of this mail decompress to more than 1000 bytes together"):
        decode_body(part, limits, budget)
    with pytest.raises(ReportTooLarge, match="together"):  # nothing is left: even a small part is refused
        decode_body(b"{}", limits, budget)


def nested_mail(depth: int, container: bytes = b"multipart/mixed") -> bytes:
    inner = b"Content-Type: application/tlsrpt+json\r\n\r\n{}"
    for level in range(depth):
        if container == b"message/rfc822":
            inner = b"Content-Type: message/rfc822\r\n\r\n" + inner
        else:
            boundary = b"n%d" % level
            inner = (b"Content-Type: " + container + b"; boundary=" + boundary + b"\r\n\r\n--" + boundary
                     + b"\r\n" + inner + b"\r\n--" + boundary + b"--\r\n")
    return b"Subject: nested\r\n" + inner


@pytest.mark.parametrize("container", [b"multipart/mixed", b"message/rfc822"])
def test_mime_parts_nested_to_the_limit_are_read_and_deeper_ones_are_refused(container):
    assert len(report_parts(parse_message(nested_mail(MAX_MIME_DEPTH, container), 100))) == 1
    for depth in (MAX_MIME_DEPTH + 1, 5_000):  # 5,000 levels are beyond the recursive parser's reach
        with pytest.raises(ReportTooLarge, match=f"MIME parts nested more than {MAX_MIME_DEPTH} deep"):
            parse_message(nested_mail(depth, container), 100)


def test_a_mail_of_more_parts_than_the_limit_is_refused():
    parts = b"".join(b"--b\r\nContent-Type: text/plain\r\n\r\n%d\r\n" % n for n in range(9))
    raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + parts + b"--b--\r\n"
    assert len(parse_message(raw, 10).get_payload()) == 9  # the message and its nine parts
    with pytest.raises(ReportTooLarge, match="more than 9 MIME parts"):
        parse_message(raw, 9)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=20), children, max_size=4),
    max_leaves=20,
)


def mutated_reports():
    """Valid reports with one member replaced by an arbitrary JSON value."""
    paths = [("organization-name",), ("date-range",), ("policies",), ("policies", 0, "policy"),
             ("policies", 0, "summary"), ("policies", 0, "failure-details"),
             ("policies", 0, "failure-details", 0, "failed-session-count"),
             ("policies", 0, "policy", "policy-string"), ("policies", 0, "policy", "mx-host")]

    def mutate(args):
        path, value = args
        document = report()
        target = document
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
        return encode(document)

    return st.tuples(st.sampled_from(paths), json_values).map(mutate)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | mutated_reports() | st.builds(gzip.compress, st.binary(max_size=200)))
def test_parser_returns_a_report_or_raises_its_own_error(data):
    try:
        body, _ = decode_body(data, Limits())
        parsed = parse_report(body)
    except ReportError:
        return
    assert parsed.organization_name and parsed.report_id


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(STS_LINES), max_size=6))
def test_policy_strings_are_kept_in_order(lines):
    document = report()
    document["policies"][0]["policy"]["policy-string"] = lines
    assert parse_report(encode(document)).policies[0].policy_strings == tuple(lines)


def _dumps_repeating(value, target: tuple, path: tuple = ()) -> str:
    """JSON text of `value` whose object at `target` gives its first member twice."""
    if isinstance(value, dict):
        members = [f"{json.dumps(name)}: {_dumps_repeating(child, target, (*path, name))}"
                   for name, child in value.items()]
        if path == target:
            members.append(members[0])
        return "{" + ", ".join(members) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_dumps_repeating(child, target, (*path, n)) for n, child in enumerate(value)) + "]"
    return json.dumps(value)


def _object_paths(value, path=()):
    if isinstance(value, dict):
        yield path
        for name, child in value.items():
            yield from _object_paths(child, (*path, name))
    elif isinstance(value, list):
        for n, child in enumerate(value):
            yield from _object_paths(child, (*path, n))


@pytest.mark.parametrize("target", list(_object_paths(VALID)) + [("extension",)], ids=str)
def test_a_member_given_twice_is_refused_in_every_object(target):
    document = report(extension={"vendor": "x"})
    with pytest.raises(ReportError, match="more than once") as caught:
        parse_report(_dumps_repeating(document, target).encode())
    assert caught.value.path == "$" + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in target)


def test_a_repeated_member_is_found_behind_an_escaped_colon():
    text = encode(VALID).replace(b'"contact-info": "tlsrpt@sender.example"',
                                 b'"contact-info": "tlsrpt\\u003a@sender.example", "report-id": "other"')
    with pytest.raises(ReportError, match="'report-id' given more than once"):
        parse_report(text)


def test_explicit_nulls_and_unknown_members_are_accepted():
    document = report(contact_info=None, extension={"nested": [{"a": 1}]})
    document["policies"][0]["policy"]["mx-host"] = None
    document["policies"][0]["failure-details"][0]["receiving-mx-helo"] = None
    text = encode(document).replace(b'"report-id"', b'"contact-info": null, "report-id"')
    parsed = parse_report(text)
    assert (parsed.contact_info, parsed.policies[0].mx_hosts) == (None, ())
    assert parsed.policies[0].failure_details[0].receiving_mx_helo is None


@pytest.mark.parametrize(("member", "status"), [("failure-reason-code", 413), ("receiving-mx-hostname", 413),
                                                 ("result-type", 400)])
def test_string_limits_name_the_member_and_say_which_limit(member, status):
    document = report()
    document["policies"][0]["failure-details"][0][member] = "x" * 100
    with pytest.raises(ReportError) as caught:
        parse_report(encode(document), Limits(max_string=80))
    assert (caught.value.path, caught.value.status) == (f"$.policies[0].failure-details[0].{member}", status)


def test_nul_is_refused_in_any_string_with_its_path():
    document = report()
    document["policies"][0]["policy"]["policy-string"] = ["version: STSv1", "mode: enf\x00orce"]
    with pytest.raises(ReportError, match="NUL") as caught:
        parse_report(encode(document))
    assert caught.value.path == "$.policies[0].policy.policy-string[1]"


def test_ipv6_addresses_and_host_names_are_normalised():
    document = report()
    document["policies"][0]["failure-details"][0].update(
        {"sending-mta-ip": "2001:DB8:0:0::1", "receiving-mx-hostname": "MX1.Example.COM"})
    detail = parse_report(encode(document)).policies[0].failure_details[0]
    assert (detail.sending_mta_ip, detail.receiving_mx_hostname, detail.receiving_ip) == (
        "2001:db8::1", "mx1.example.com", "198.51.100.7")
