"""The RFC 8460 result types (section 4.3, the IANA "STARTTLS Validation Result Types" registry) in plain words.

Each has a category, what it means and what to do about it. Reports may carry result types
the registry does not know (it is open to new ones under Expert Review): those are shown as
given, in the category "other". The texts are `Words`: English, and translated where they are shown. Pure.
"""

from dataclasses import dataclass

from stspolicy.base.words import Words, words

TLS_NEGOTIATION, MTA_STS, DANE, OTHER = words("TLS negotiation"), "MTA-STS", "DANE", words("other")
CATEGORIES = (TLS_NEGOTIATION, MTA_STS, DANE, OTHER)


@dataclass(frozen=True)
class ResultType:
    name: str
    category: str
    explanation: str
    remediation: str  # may name `{domain}`: `fix` fills it in

    def fix(self, domain: str) -> Words:
        """The remediation for `domain`."""
        return words(self.remediation, domain=domain)


REGISTRY = {result.name: result for result in (
    # Section 4.3.1, negotiation failures.
    ResultType(
        "starttls-not-supported", TLS_NEGOTIATION,
        words("The MX did not offer STARTTLS, so the sender could not encrypt the session."),
        words("Make the MX offer STARTTLS on port 25 to every sender.")),
    ResultType(
        "certificate-host-mismatch", TLS_NEGOTIATION,
        words("The certificate the MX presented does not name the MX host (no matching DNS name in its subject "
              "alternative names), or does not meet the constraints of the MTA-STS or DANE policy."),
        words("Give the MX a certificate that names the MX host.")),
    ResultType(
        "certificate-expired", TLS_NEGOTIATION,
        words("The certificate the MX presented has expired."),
        words("Renew the MX certificate and reload the mail server.")),
    ResultType(
        "certificate-not-trusted", TLS_NEGOTIATION,
        words("The sender could not validate the MX certificate: an unknown or untrusted CA, an incomplete chain, "
              "name constraints or another chain error."),
        words("Serve a certificate from a public CA with its full chain.")),
    ResultType(
        "validation-failure", TLS_NEGOTIATION,
        words("A general failure to validate the session that none of the other result types covers; the "
              "failure-reason-code often says more."),
        words("Check the MX certificate and its chain with `flask dns check`.")),
    # Section 4.3.2.1, DANE.
    ResultType(
        "tlsa-invalid", DANE,
        words("None of the TLSA records of the MX matched the certificate it presented, or none was usable: "
              "senders that validate DANE do not deliver to it."),
        words("Publish a TLSA record that matches the certificate the MX presents.")),
    ResultType(
        "dnssec-invalid", DANE,
        words("The sender's resolver returned no valid records: the DNSSEC signatures of the MX host's zone (or "
              "its TLSA records) did not validate, or the look-up failed."),
        words("Repair the DNSSEC signatures of the MX host's zone (expired signatures, a DS for a removed key).")),
    ResultType(
        "dane-required", DANE,
        words("The sender requires DANE for this domain (by agreement, RFC 7672 section 6), but found no "
              "DNSSEC-validated TLSA records for the MX."),
        words("Publish usable TLSA records or stop requiring DANE.")),
    # Section 4.3.2.2, MTA-STS.
    ResultType(
        "sts-policy-fetch-error", MTA_STS,
        words("The sender could not fetch the MTA-STS policy: the policy host did not resolve, did not answer, or "
              "answered with an error."),
        words("Make https://mta-sts.{domain}/.well-known/mta-sts.txt answer: its DNS name, the service and its "
              "certificate.")),
    ResultType(
        "sts-policy-invalid", MTA_STS,
        words("The sender fetched the MTA-STS policy but found it invalid."),
        words("Serve a valid policy text (it is served from here: check the policy host's DNS).")),
    ResultType(
        "sts-webpki-invalid", MTA_STS,
        words("The certificate of the policy host (mta-sts. before the domain) did not validate: expired, "
              "untrusted, or not naming the host; so the sender could not trust the policy."),
        words("Renew the certificate of mta-sts.{domain} (flask cert renew).")),
)}


def describe(result_type: str) -> ResultType:
    """The registry's entry for `result_type` (in any case), or the type as given in the category "other"."""
    known = REGISTRY.get(result_type.lower())
    if known is not None:
        return known
    return ResultType(
        result_type, OTHER,
        words("{result_type} is not a result type of RFC 8460 or of its IANA registry: it is the sender's own "
              "label, and what it means is the sender's to say.", result_type=result_type),
        words("Read the failure-reason-code and additional-information of the reports behind it, or ask the "
              "reporting organisation (its contact-info)."))
