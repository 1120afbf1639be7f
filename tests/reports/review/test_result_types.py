"""Every RFC 8460 result type has a category, an explanation and a remediation; others are shown as given."""

import pytest

from reports.review.result_types import CATEGORIES, DANE, MTA_STS, OTHER, REGISTRY, TLS_NEGOTIATION, describe

# The IANA "STARTTLS Validation Result Types" registry (RFC 8460 section 4.3), with the section's grouping.
IANA = {
    "starttls-not-supported": TLS_NEGOTIATION, "certificate-host-mismatch": TLS_NEGOTIATION,
    "certificate-expired": TLS_NEGOTIATION, "certificate-not-trusted": TLS_NEGOTIATION,
    "validation-failure": TLS_NEGOTIATION, "tlsa-invalid": DANE, "dnssec-invalid": DANE, "dane-required": DANE,
    "sts-policy-fetch-error": MTA_STS, "sts-policy-invalid": MTA_STS, "sts-webpki-invalid": MTA_STS,
}


def test_the_registry_is_the_iana_registry():
    assert {name: result.category for name, result in REGISTRY.items()} == IANA


@pytest.mark.parametrize("name", sorted(IANA))
def test_each_result_type_says_what_it_means_and_what_to_do(name):
    result = describe(name)
    assert result.name == name and result.category in CATEGORIES
    assert result.explanation.endswith(".") and result.remediation.endswith(".")
    assert result.explanation != result.remediation


def test_a_result_type_in_another_case_is_the_registry_entry():
    assert describe("Certificate-Expired") == REGISTRY["certificate-expired"]


def test_an_unknown_result_type_comes_back_as_given_in_the_category_other():
    result = describe("some-future-type<script>")
    assert (result.name, result.category) == ("some-future-type<script>", OTHER)
    assert "not a result type of RFC 8460" in result.explanation


def test_the_fix_names_the_policy_host_of_the_domain():
    assert "https://mta-sts.example.com/.well-known/mta-sts.txt" in describe("sts-policy-fetch-error").fix(
        "example.com")
    assert "<domain>" not in describe("sts-webpki-invalid").fix("example.com")
