"""The TLSA records of a tlsa block's policy-string: one per string (RFC 8460 section 4.4), or, as Microsoft
sends them, one string holding a JSON array; hex in any case."""

import json

from hypothesis import given
from hypothesis import strategies as st

from reports.review.findings import reported_tlsa_records
from stspolicy.dns.dane import TlsaError, TlsaRecord, parse_tlsa

records = st.builds(TlsaRecord, st.integers(0, 3), st.integers(0, 1), st.just(1), st.binary(min_size=32, max_size=32))


def presentation(record: TlsaRecord, upper: bool) -> str:
    text = f"{record.usage} {record.selector} {record.matching_type} {record.data.hex()}"
    return text.upper() if upper else text


@given(st.lists(records, min_size=1, max_size=12, unique=True), st.booleans(), st.booleans())
def test_records_read_the_same_one_per_string_or_as_one_json_array(found, upper, microsoft):
    strings = [presentation(record, upper) for record in found]
    sent = [json.dumps(strings)] if microsoft else strings
    assert reported_tlsa_records(sent) == (tuple(found), ())


@given(st.lists(st.text(max_size=80) | records.map(lambda r: presentation(r, False)), max_size=5))
def test_each_string_gives_its_record_or_is_set_aside_never_an_error(strings):
    found, unreadable = reported_tlsa_records(strings)
    for text in strings:
        if text.strip().startswith("["):
            continue
        try:
            assert parse_tlsa(text.strip()) in found
        except TlsaError:
            assert text in unreadable


def test_a_json_array_of_other_things_is_set_aside_as_sent():
    assert reported_tlsa_records(['[1, 2]', '["3 1 1 zz"]']) == ((), ('[1, 2]', '3 1 1 zz'))


def test_grouped_hex_is_one_record():
    digest = "ab" * 32
    assert reported_tlsa_records([f"3 1 1 {digest[:32]} {digest[32:].upper()}"]) == (
        (TlsaRecord(3, 1, 1, bytes.fromhex(digest)),), ())
