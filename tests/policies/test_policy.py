"""RFC 8461 policy text: validation of operator input, rendering, strict parsing, MX matching, ids."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stspolicy.policies.rules import (
    MAX_AGE_LIMIT,
    POLICY_ID,
    Policy,
    PolicyError,
    make_policy,
    mx_pattern_matches,
    next_policy_id,
    parse_policy,
    policy_warnings,
    render_policy,
)


@pytest.mark.parametrize(
    "pattern, expected",
    [
        ("mail.example.com", "mail.example.com"),
        ("MAIL.Example.COM", "mail.example.com"),
        ("*.mx.example.net", "*.mx.example.net"),
        ("mx.bücher.example", "mx.xn--bcher-kva.example"),
        ("*.bücher.example", "*.xn--bcher-kva.example"),
        ("mail.example.com.", "mail.example.com"),
    ],
)
def test_mx_patterns_are_normalised(pattern, expected):
    assert make_policy("enforce", [pattern], 86400).mx_patterns == (expected,)


@pytest.mark.parametrize(
    "pattern, message",
    [
        ("a.*.example.com", "invalid mx pattern 'a.*.example.com': a wildcard may only be the whole leftmost label"),
        ("*example.com", "a wildcard may only be the whole leftmost label"),
        ("mail*.example.com", "a wildcard may only be the whole leftmost label"),
        ("*.*.example.com", "a wildcard may only be the whole leftmost label"),
        ("*", "a wildcard may only be the whole leftmost label"),
        (".example.com", "bad label ''"),
        ("_dmarc.example.com", "bad label '_dmarc'"),
        ("mx..example.com", "bad label ''"),
        ("-mx.example.com", "bad label '-mx'"),
        ("localhost", "needs at least two labels"),
        ("*.com", "needs at least two labels"),
        ("mx.example.123", "the last label is numeric"),
        ("a" * 64 + ".example.com", "bad label"),
        ("mail.example.com, mx2.example.com", "invalid mx pattern"),
    ],
)
def test_invalid_mx_patterns_are_refused_with_the_reason(pattern, message):
    with pytest.raises(PolicyError) as caught:
        make_policy("enforce", [pattern], 86400)
    assert caught.value.field == "mx"
    assert message in str(caught.value)


def test_duplicate_mx_patterns_collapse_keeping_first_order():
    policy = make_policy("testing", ["b.example.com", "A.example.com", "b.example.com.", "a.example.com"], 60)
    assert policy.mx_patterns == ("b.example.com", "a.example.com")


@pytest.mark.parametrize(
    "mode, mx, max_age, field",
    [
        ("Enforce", ["mx.example.com"], 1, "mode"),
        ("report", ["mx.example.com"], 1, "mode"),
        ("enforce", [], 1, "mx"),
        ("testing", [], 1, "mx"),
        ("enforce", ["mx.example.com"], -1, "max_age"),
        ("enforce", ["mx.example.com"], MAX_AGE_LIMIT + 1, "max_age"),
        ("enforce", ["mx.example.com"], "1e6", "max_age"),
        ("enforce", ["mx.example.com"], "twelve", "max_age"),
        ("enforce", ["mx.example.com"], True, "max_age"),
        ("enforce", ["mx.example.com"], 1.5, "max_age"),
    ],
)
def test_invalid_policies_name_the_field(mode, mx, max_age, field):
    with pytest.raises(PolicyError) as caught:
        make_policy(mode, mx, max_age)
    assert caught.value.field == field


@pytest.mark.parametrize("max_age", [0, "0", 86400, "86400", MAX_AGE_LIMIT, str(MAX_AGE_LIMIT)])
def test_max_age_bounds_are_inclusive(max_age):
    assert make_policy("enforce", ["mx.example.com"], max_age).max_age == int(max_age)


def test_mode_none_needs_no_mx():
    assert make_policy("none", [], 86400) == Policy("none", (), 86400)


def test_render_is_crlf_ascii_one_mx_per_line():
    text = render_policy(make_policy("enforce", ["mail.example.com", "*.mx.example.net"], 604800))
    assert text == (
        "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.mx.example.net\r\nmax_age: 604800\r\n"
    )
    assert text.isascii()


P1 = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmax_age: 604800\r\n"
P1_POLICY = Policy("enforce", ("mail.example.com",), 604800)


@pytest.mark.parametrize(
    "text, expected",
    [
        (P1, P1_POLICY),  # the form RFC 8461 section 3.2 shows
        (P1.replace("\r\n", "\n"), P1_POLICY),  # LF only (RFC 8461 erratum 6253)
        ("version: STSv1\nmode: enforce\r\nmx: mail.example.com\nmax_age: 604800\r\n", P1_POLICY),  # CRLF and LF mixed
        (P1[:-2], P1_POLICY),  # no final terminator
        (P1.replace("mode: enforce", "mode:enforce"), P1_POLICY),  # no space after the colon
        (P1.replace("mode: enforce", "mode:\t\tenforce"), P1_POLICY),
        (P1.replace("mode: enforce", "mode: enforce   "), P1_POLICY),  # trailing spaces are stripped
        ("mode: enforce\r\n" + P1.replace("mode: enforce", "mode: testing"), P1_POLICY),  # the first mode wins
        (P1.replace("max_age: 604800", "max_age: 00604800"), P1_POLICY),  # leading zeros
        (P1 + "version: STSv2\r\n", P1_POLICY),  # the first version wins
        (P1 + "foo_bar: some value with spaces\r\n", P1_POLICY),  # an extension is ignored
        (P1 + "Mode: testing\r\n", P1_POLICY),  # "Mode" is an extension, ignored
        ("version: STSv1\nmode: none\nmax_age: 86400\n", Policy("none", (), 86400)),  # mode none needs no mx
        ("max_age: 0\nmx: a.example.com\nmx: *.b.example.com\nmode: testing\nversion: STSv1",
         Policy("testing", ("a.example.com", "*.b.example.com"), 0)),
    ],
)
def test_parse_accepts_what_the_grammar_allows(text, expected):
    assert parse_policy(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        P1.replace("\r\n", "\r"),  # a bare CR ends no line
        P1 + "\r\n",  # a blank line at the end
        "\ufeff" + P1,  # a BOM
        P1.replace("mode: enforce", "Mode: enforce"),  # "Mode" is an extension: mode is missing
        P1.replace("mode: enforce", "mode: Enforce"),  # values are case-sensitive
        P1.replace("mode: enforce", "mode : enforce"),  # a space before the colon
        P1.replace("mode: enforce", " mode: enforce"),  # a leading space
        P1.replace("604800", "31557601"),  # above 31557600 (RFC 8461 section 3.2)
        P1.replace("604800", "-1"),
        P1.replace("604800", "1e6"),
        P1.replace("604800", "12345678901"),
        P1.replace("mail.example.com", "*mail.example.com"),  # a wildcard that is not a whole label
        P1.replace("mail.example.com", "mail.*.com"),
        P1.replace("mail.example.com", "*.*.example.com"),
        P1.replace("mail.example.com", "*"),
        P1.replace("mail.example.com", "mail.example.com, mx2.example.com"),  # one mx per line
        P1.replace("mail.example.com", "bücher.example"),  # a U-label (RFC 8461 section 3.2 asks for A-labels)
        P1.replace("mx: mail.example.com\r\n", ""),  # enforce needs an mx
        P1 + "x" * 33 + ": value\r\n",  # an extension name longer than 32 characters
        P1 + "_ext: value\r\n",
        P1 + "# comment\r\n",  # no comment syntax
        P1.replace("mail.example.com", "_dmarc.example.com"),  # not an RFC 5321 Domain
        P1.replace("mail.example.com", "mail.example.com."),
        P1.replace("version: STSv1", "version: stsv1"),
        P1 + "ext: \x01value\r\n",  # control character in a value
        "",
    ],
)
def test_parse_refuses_what_the_grammar_does_not_allow(text):
    with pytest.raises(PolicyError):
        parse_policy(text)


policies = st.builds(
    make_policy,
    mode=st.sampled_from(["enforce", "testing", "none"]),
    mx_patterns=st.lists(
        st.from_regex(r"\A(\*\.)?[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?(\.[a-z]{2,6}){1,3}\Z"), min_size=1, max_size=5
    ),
    max_age=st.integers(0, MAX_AGE_LIMIT),
)


@given(policies)
def test_every_rendered_policy_parses_back_to_itself(policy):
    assert parse_policy(render_policy(policy)) == policy


@pytest.mark.parametrize(
    "pattern, host, matches",
    [
        ("mail.example.com", "mail.example.com", True),
        ("mail.example.com", "MAIL.Example.COM.", True),  # case and a trailing dot are ignored (RFC 8461 section 4.1)
        ("mail.example.com", "mail.example.com.evil.net", False),  # no suffix matching without "*."
        ("*.example.com", "mail.example.com", True),  # one leftmost label (RFC 8461 section 4.1)
        ("*.example.com", "MAIL.Example.COM.", True),  # case-insensitive, trailing dot stripped
        ("*.example.com", "example.com", False),  # the wildcard needs a label
        ("*.example.com", "a.b.example.com", False),  # and only one
        ("*.example.com", ".example.com", False),
    ],
)
def test_mx_matching_follows_rfc_8461_section_4_1(pattern, host, matches):
    assert mx_pattern_matches(pattern, host) is matches


NOON = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "previous, now, expected",
    [
        (None, NOON, "2026112812000000"),
        ("2026112811000000", NOON, "2026112812000000"),
        ("2026112812000000", NOON, "2026112812000001"),  # same second: the counter goes up
        ("2026112812000099", NOON, "2026112812000100"),  # the counter carries into the next second
        ("2026112813000000", NOON, "2026112813000001"),  # clock stepped back: still increasing
        ("legacyid", NOON, "2026112812000000"),
        (None, NOON.astimezone(timezone(timedelta(hours=2))), "2026112812000000"),  # always UTC
    ],
)
def test_policy_ids_increase_and_follow_utc(previous, now, expected):
    assert next_policy_id(previous, now) == expected


@given(st.lists(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(9000, 1, 1),
                             timezones=st.just(UTC)), min_size=1, max_size=30))
def test_policy_ids_strictly_increase_whatever_the_clock_does(times):
    previous = None
    for now in times:
        policy_id = next_policy_id(previous, now)
        assert POLICY_ID.match(policy_id)
        if previous:
            assert int(policy_id) > int(previous) and policy_id > previous
        previous = policy_id


@pytest.mark.parametrize(("mode", "mx_patterns", "max_age", "fields"), [
    ("enforce", ("mx1.example.com",), 604800, []),
    ("testing", ("mx1.example.com",), 86399, ["max_age"]),
    ("none", (), 3600, []),  # removal (RFC 8461 section 8.3) asks for a small max_age
    ("enforce", ("*.example.com",), 604800, ["mx"]),
    ("enforce", ("*.mx.example.com", "*.example.net"), 604800, []),
    ("testing", ("*.example.com",), 0, ["max_age", "mx"]),
])
def test_short_max_age_and_a_pattern_for_every_host_are_warnings(mode, mx_patterns, max_age, fields):
    warnings = policy_warnings("example.com", make_policy(mode, mx_patterns, max_age))
    assert [warning.field for warning in warnings] == fields
