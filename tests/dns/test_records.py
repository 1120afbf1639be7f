"""TXT records: what we publish, and a strict reading of what DNS holds (RFC 8461 3.1, RFC 8460 3)."""

import pytest

from stspolicy.dns.records import (
    DnsRecord,
    RecordError,
    join_txt_strings,
    parse_sts_record,
    parse_tlsrpt_record,
    records_to_publish,
    render_sts_record,
    render_tlsrpt_record,
    select_record,
)


def test_sts_record_begins_with_the_version_and_carries_the_id():
    assert render_sts_record("2026112812000000") == "v=STSv1; id=2026112812000000"


@pytest.mark.parametrize("policy_id", ["", "2016-08-31T08:57:00Z", "a" * 33, "id_1", "ïd"])
def test_sts_record_refuses_ids_outside_1_to_32_alphanumerics(policy_id):
    with pytest.raises(RecordError):
        render_sts_record(policy_id)


@pytest.mark.parametrize(
    "record, policy_id",
    [
        ("v=STSv1; id=20160831085700Z;", "20160831085700Z"),  # RFC 8461 section 3.1 example
        ("v=STSv1;id=abc", "abc"),  # no whitespace needed around ";"
        ("v=STSv1 ; id=abc", "abc"),  # grammar-valid (select_record drops it)
        ("v=STSv1; ext=val; id=abc", "abc"),  # an extension is ignored
        ("v=STSv1; id=abc; id=def", "abc"),  # the first id wins (RFC 8461 section 3.1)
        ("v=STSv1; id=abc; id=a-b", "abc"),  # a later id is ignored, valid as an id or not (TXT-07)
        ("v=STSv1;\tid=abc\t;", "abc"),
    ],
)
def test_sts_record_parsing(record, policy_id):
    assert parse_sts_record(record).policy_id == policy_id


@pytest.mark.parametrize(
    "record",
    [
        "v=STSv1; id=2016-08-31T08:57:00Z",  # separators are not alphanumeric
        "v=STSv1; id=" + "a" * 33,  # an id is at most 32 characters
        "id=abc; v=STSv1",  # the version comes first
        "v=STSv1",  # the id is required
        "v=stsv1; id=abc",  # "v=STSv1" is case-sensitive (RFC 7405 %s)
        "V=STSv1; id=abc",
        "v=STSv1; id=abc; x=a b",  # no space in an extension value
        "v=STSv1; ID=abc",  # ID is an extension (names are case-sensitive), so the id is missing
        "v=STSv1; id=abc; =x",
        "v=STSv1; id=abc; id=a b",  # an ignored later id is still a field of the grammar
        "v=STSv1; id=a-b; id=abc",  # the first id counts, and it is invalid
        "v=STSv1; id=äbc",
    ],
)
def test_invalid_sts_records_are_refused(record):
    with pytest.raises(RecordError):
        parse_sts_record(record)


@pytest.mark.parametrize(
    "records, chosen",
    [
        (["v=STSv1; id=a", "v=spf1 -all"], "v=STSv1; id=a"),  # other TXT records are ignored (RFC 8461 section 3.1)
        (["v=spf1 -all", "v=STSv1;id=b"], "v=STSv1;id=b"),
    ],
)
def test_the_one_record_with_the_prefix_is_chosen(records, chosen):
    assert select_record(records, "v=STSv1;") == chosen


@pytest.mark.parametrize(
    "records",
    [
        ["v=STSv1; id=a", "v=STSv1; id=b"],  # two records: no policy (RFC 8461 section 3.1)
        ["v=STSv1 ; id=abc"],  # fails the "v=STSv1;" prefix filter (RFC 8461 erratum 6285)
        ["v=spf1 -all"],
        [],
    ],
)
def test_no_record_unless_exactly_one_has_the_prefix(records):
    with pytest.raises(RecordError):
        select_record(records, "v=STSv1;")


@pytest.mark.parametrize(
    "strings, joined",
    [
        ([b"v=STSv1; ", b"id=abc"], "v=STSv1; id=abc"),  # strings join without spaces (RFC 8461 section 3.1)
        ([b"v=STSv1;", b" id=abc"], "v=STSv1; id=abc"),
        ([b"v=STS", b"v1; id=a"], "v=STSv1; id=a"),
    ],
)
def test_character_strings_join_without_spaces(strings, joined):
    assert join_txt_strings(strings) == joined
    parse_sts_record(joined)


@pytest.mark.parametrize(
    "record, rua, unusable",
    [
        ("v=TLSRPTv1; rua=mailto:tlsrpt@example.com", ("mailto:tlsrpt@example.com",), ()),  # one URI
        ("v=TLSRPTv1;rua=mailto:a@example.com,https://r.example.com/v1/tlsrpt",
         ("mailto:a@example.com", "https://r.example.com/v1/tlsrpt"), ()),  # two URIs, no whitespace
        ("v=TLSRPTv1; rua=mailto:a@example.com , mailto:b@example.com",
         ("mailto:a@example.com", "mailto:b@example.com"), ()),  # whitespace around the comma
        ("v=TLSRPTv1; rua=https://r.example.com/x%2Cy?a=1%3Bb=2",
         ("https://r.example.com/x%2Cy?a=1%3Bb=2",), ()),  # "," and ";" encoded (RFC 8460 section 3)
        ("v=TLSRPTv1; rua=https://r.example.com/x,y", ("https://r.example.com/x",), ("y",)),  # "," splits
        ("v=TLSRPTv1; rua=mailto:r@example.com!10m", (), ("mailto:r@example.com!10m",)),  # "!" unencoded
        ("v=TLSRPTv1; rua=http://r.example.com/", (), ("http://r.example.com/",)),  # not a report scheme
        ("v=TLSRPTv1; rua=mailto:a@x.example; rua=mailto:b@x.example",
         ("mailto:a@x.example", "mailto:b@x.example"), ()),  # several rua fields are all kept
    ],
)
def test_tlsrpt_record_parsing(record, rua, unusable):
    parsed = parse_tlsrpt_record(record)
    assert (parsed.rua, parsed.unusable_rua) == (rua, unusable)


@pytest.mark.parametrize(
    "record",
    ["v=TLSRPTv1;", "v=TLSRPTv2; rua=mailto:a@x.example", "rua=mailto:a@x.example; v=TLSRPTv1",
     "v=TLSRPTv1; ext=a b; rua=mailto:a@x.example"],  # no rua; another version; the version not first
)
def test_invalid_tlsrpt_records_are_refused(record):
    with pytest.raises(RecordError):
        parse_tlsrpt_record(record)


def test_tlsrpt_rendering_encodes_reserved_characters():
    record = render_tlsrpt_record(["mailto:tlsrpt@example.com", "https://r.example.com/in;x,y!"])
    assert record == "v=TLSRPTv1; rua=mailto:tlsrpt@example.com,https://r.example.com/in%3Bx%2Cy%21"
    assert parse_tlsrpt_record(record).rua == ("mailto:tlsrpt@example.com", "https://r.example.com/in%3Bx%2Cy%21")


@pytest.mark.parametrize("rua", [[], ["http://r.example.com/"], ["ftp://r.example.com/"], ["mailto:nobody"],
                                 ["https:///path"]])
def test_tlsrpt_rendering_refuses_unusable_destinations(rua):
    with pytest.raises(RecordError):
        render_tlsrpt_record(rua)


def test_records_to_publish_follow_the_deployment_settings():
    records = records_to_publish(
        "example.com",
        "2026112812000000",
        rua=["mailto:tlsrpt@provider.example"],
        policy_host_cname="sts.provider.example",
    )
    assert records == [
        DnsRecord("_mta-sts.example.com", "TXT", "v=STSv1; id=2026112812000000", 300),
        DnsRecord("_smtp._tls.example.com", "TXT", "v=TLSRPTv1; rua=mailto:tlsrpt@provider.example", 86400),
        DnsRecord("mta-sts.example.com", "CNAME", "sts.provider.example.", 3600),
    ]
    assert records[0].zone_line() == '_mta-sts.example.com. 300 IN TXT "v=STSv1; id=2026112812000000"'


def test_each_record_carries_the_ttl_to_publish_it_with():
    """Short for `_mta-sts` (RFC 8461 section 8.1: an old policy lasts until the TXT TTL has passed), long for
    `_smtp._tls` (RFC 8460 section 7: a large TTL narrows the window to suppress it)."""
    records = records_to_publish("example.com", "1", rua=["mailto:r@provider.example"],
                                 policy_host_addresses=["192.0.2.7"], sts_ttl=120)
    assert [(r.name, r.ttl) for r in records] == [
        ("_mta-sts.example.com", 120), ("_smtp._tls.example.com", 86400), ("mta-sts.example.com", 3600)]
    assert records[1].zone_line().startswith("_smtp._tls.example.com. 86400 IN TXT ")
    delegated = records_to_publish("example.com", "1", sts_target="_mta-sts.example.com.sts.provider.example")
    assert delegated[0].zone_line() == "_mta-sts.example.com. 3600 IN CNAME _mta-sts.example.com.sts.provider.example."


def test_policy_host_addresses_become_a_and_aaaa_records():
    records = records_to_publish("example.com", "1", policy_host_addresses=["192.0.2.7", "2001:db8::7"])
    assert [(r.type, r.value) for r in records[1:]] == [("A", "192.0.2.7"), ("AAAA", "2001:db8::7")]
