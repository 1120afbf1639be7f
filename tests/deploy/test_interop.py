"""What we serve and publish reads the same in third-party MTA-STS implementations.

postfix-mta-sts-resolver is the policy client many Postfix senders run; checkdmarc is
the checker many operators use. Both parse exactly what our endpoint returns.
"""

import pytest
from checkdmarc.mta_sts import parse_mta_sts_policy as checkdmarc_policy
from checkdmarc.mta_sts import parse_mta_sts_record as checkdmarc_sts_record
from checkdmarc.smtp_tls_reporting import parse_smtp_tls_reporting_record as checkdmarc_tlsrpt_record
from hypothesis import given
from postfix_mta_sts_resolver.utils import is_plaintext
from postfix_mta_sts_resolver.utils import parse_mta_sts_policy as resolver_policy
from postfix_mta_sts_resolver.utils import parse_mta_sts_record as resolver_sts_record

from stspolicy.base.settings import current_settings
from stspolicy.dns.publish import dns_records
from stspolicy.dns.records import render_tlsrpt_record
from stspolicy.policies.rules import make_policy, render_policy
from stspolicy.policies.service import add_domain
from tests.policies.test_policy import policies

CASES = [
    ("enforce", ["mail.example.com"], 604800),
    ("testing", ["mail.example.com", "*.mx.example.net", "mx.bücher.example"], 86400),
    ("none", [], 0),
    ("none", ["mx.example.com"], 31557600),
]


def as_resolver_reads_it(policy):
    return {"version": "STSv1", "mode": policy.mode, "mx": list(policy.mx_patterns), "max_age": str(policy.max_age)}


def as_checkdmarc_reads_it(policy):
    return {"version": "STSv1", "mode": policy.mode, "mx": list(policy.mx_patterns), "max_age": policy.max_age}


@pytest.fixture(params=CASES, ids=lambda case: f"{case[0]}-{len(case[1])}mx")
def served(request, client, session):
    policy = make_policy(*request.param)
    version = add_domain(session, "example.com", policy, actor="test")
    response = client.get("/.well-known/mta-sts.txt", headers={"Host": "mta-sts.example.com"})
    assert response.status_code == 200
    return policy, version, response


def test_postfix_mta_sts_resolver_reads_the_served_policy_as_set(served):
    policy, _, response = served
    assert is_plaintext(response.headers["Content-Type"])
    assert resolver_policy(response.get_data(as_text=True)) == as_resolver_reads_it(policy)


def test_checkdmarc_reads_the_served_policy_as_set_without_warnings(served):
    policy, _, response = served
    parsed = checkdmarc_policy(response.get_data(as_text=True))
    assert parsed["policy"] == as_checkdmarc_reads_it(policy)
    assert parsed["warnings"] == []


def test_both_read_our_sts_record_id(app, served):
    _, version, _ = served
    with app.app_context():
        record = dns_records(current_settings(), "example.com", version.policy_id)[0]
    assert record.name == "_mta-sts.example.com"
    assert resolver_sts_record(record.value) == {"v": "STSv1", "id": version.policy_id}
    parsed = checkdmarc_sts_record(record.value)
    assert parsed["tags"] == {"v": "STSv1", "id": version.policy_id}
    assert parsed["warnings"] == []


@pytest.mark.parametrize(
    "rua",
    [
        ["mailto:tlsrpt@provider.example"],
        ["https://reports.provider.example/tlsrpt"],
        ["mailto:tlsrpt@provider.example", "https://reports.provider.example/tlsrpt/tenant7"],
    ],
)
def test_checkdmarc_reads_our_tlsrpt_record(rua):
    parsed = checkdmarc_tlsrpt_record(render_tlsrpt_record(rua))
    assert parsed["tags"]["v"]["value"] == "TLSRPTv1"
    assert parsed["tags"]["rua"]["value"] == rua
    assert parsed["warnings"] == []


@given(policies)
def test_any_valid_policy_reads_the_same_in_both(policy):
    text = render_policy(policy)
    assert resolver_policy(text) == as_resolver_reads_it(policy)
    assert checkdmarc_policy(text)["policy"] == as_checkdmarc_reads_it(policy)
