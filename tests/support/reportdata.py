"""The report corpus of the tests: the real samples, a small valid report to vary one field at a
time, and malformed (and a few tolerated) bodies with the HTTP status each must get."""

import copy
import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

SAMPLES = Path(__file__).resolve().parent.parent / "samples"

# Per sample: organization, report-id, and per policy block (type, domain, successful, failed, details).
SAMPLE_COUNTS = {
    "rfc8460.json": ("Company-X", "5065427c-23d3-47ca-b6e0-946ea0e8c4be",
                     [("sts", "company-y.example", 5326, 303, 3)]),
    "mail.ru.json": ("Mail.ru", "b28254de-7b2e-be36-bb5c-4c3b92da8b25@mail.ru", [("sts", "example.com", 0, 1, 2)]),
    "smtp_tls.json": ("Example Inc.", "2024-01-09T00:00:00Z_example.com", [("sts", "example.com", 0, 3, 2)]),
    "tlsrpt-reporter-sys4.json": ("MTA-STS Lab Sender", "2026-11-27T00:00:00Z_idx1_example.test",
                                  [("tlsa", "example.test", 1, 1, 1), ("sts", "example.test", 5, 2, 1)]),
    "tlsrpt-reporter-sys4.json.gz": ("MTA-STS Lab Sender", "2026-11-27T00:00:00Z_idx1_example.test",
                                     [("tlsa", "example.test", 1, 1, 1), ("sts", "example.test", 5, 2, 1)]),
    "google.com_smtp_tls_report.eml": ("Google Inc.", "2024-09-03T00:00:00Z_cardinalhealth.ca",
                                       [("no-policy-found", "cardinalhealth.ca", 48, 0, 0)]),
    "tlsrpt-reporter-sys4.eml": ("MTA-STS Lab Sender", "2026-11-27T00:00:00Z_idx1_example.test",
                                 [("tlsa", "example.test", 1, 1, 1), ("sts", "example.test", 5, 2, 1)]),
}

STS_LINES = ["version: STSv1", "mode: enforce", "mx: mx1.example.com", "max_age: 604800"]

VALID = {
    "organization-name": "Sender Org",
    "date-range": {"start-datetime": "2026-11-01T00:00:00Z", "end-datetime": "2026-11-01T23:59:59Z"},
    "contact-info": "tlsrpt@sender.example",
    "report-id": "report-1",
    "policies": [
        {
            "policy": {
                "policy-type": "sts",
                "policy-string": STS_LINES,
                "policy-domain": "example.com",
                "mx-host": ["mx1.example.com"],
            },
            "summary": {"total-successful-session-count": 10, "total-failure-session-count": 2},
            "failure-details": [
                {
                    "result-type": "certificate-expired",
                    "sending-mta-ip": "192.0.2.1",
                    "receiving-mx-hostname": "mx1.example.com",
                    "receiving-ip": "198.51.100.7",
                    "failed-session-count": 2,
                }
            ],
        }
    ],
}


def report(**changes) -> dict:
    """VALID with top-level members replaced (None removes one); a copy throughout, so that changing
    it never changes VALID, not even through a replacement made of VALID's parts."""
    document = copy.deepcopy(VALID)
    for name, value in changes.items():
        key = name.replace("_", "-")
        if value is None:
            document.pop(key)
        else:
            document[key] = copy.deepcopy(value)
    return document


def sts_block(domain: str, successful: int, failed: int, *details, mx: tuple[str, ...] = ()) -> dict:
    """An sts policy block about `domain` applying `mode: testing` with `mx` (else mx1.<domain>)."""
    mx = mx or (f"mx1.{domain}",)
    return {
        "policy": {"policy-type": "sts", "policy-domain": domain, "mx-host": list(mx),
                   "policy-string": ["version: STSv1", "mode: testing", *(f"mx: {host}" for host in mx),
                                     "max_age: 604800"]},
        "summary": {"total-successful-session-count": successful, "total-failure-session-count": failed},
        "failure-details": list(details),
    }


def tlsa_block(mx_host: str, successful: int, failed: int, *details) -> dict:
    """A tlsa policy block whose policy-domain is the MX host (the TLSA base domain)."""
    return {
        "policy": {"policy-type": "tlsa", "policy-domain": mx_host, "policy-string": ["3 1 1 " + "ab" * 32]},
        "summary": {"total-successful-session-count": successful, "total-failure-session-count": failed},
        "failure-details": list(details),
    }


def failure(result_type: str, count: int, mx: str | None = None, ip: str | None = None, **more) -> dict:
    """A failure detail; `more` adds members by their JSON names with `_` for `-`."""
    found = {"result-type": result_type, "failed-session-count": count}
    if mx:
        found["receiving-mx-hostname"] = mx
    if ip:
        found["sending-mta-ip"] = ip
    return found | {name.replace("_", "-"): value for name, value in more.items()}


def days_ago(days: int) -> str:
    """The UTC day `days` before today, as YYYY-MM-DD."""
    return (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%d")


def daily_report(report_id: str, *blocks, organization="Google Inc.", day="2026-11-01") -> dict:
    """A report of one UTC day with `blocks`."""
    return report(report_id=report_id, organization_name=organization, policies=list(blocks),
                  date_range={"start-datetime": f"{day}T00:00:00Z", "end-datetime": f"{day}T23:59:59Z"})


def encode(document) -> bytes:
    return json.dumps(document).encode()


def gz(document) -> bytes:
    return gzip.compress(encode(document) if not isinstance(document, bytes) else document)


# Malformed and tolerated bodies. Built lazily: some are megabytes before compression.
def _with(change):
    def build():
        document = report()
        change(document)
        return encode(document)
    return build


def _detail(**values):
    def change(document):
        document["policies"][0]["failure-details"][0].update(values)
    return change


def _summary(**values):
    def change(document):
        document["policies"][0]["summary"].update({k.replace("_", "-"): v for k, v in values.items()})
    return change


def _policy(**values):
    def change(document):
        document["policies"][0]["policy"].update({k.replace("_", "-"): v for k, v in values.items()})
    return change


def _drop(*path):
    def change(document):
        target = document
        for step in path[:-1]:
            target = target[step]
        del target[path[-1]]
    return change


def _dates(start, end):
    def change(document):
        document["date-range"] = {"start-datetime": start, "end-datetime": end}
    return change


def _raw_count(text: str):
    return lambda: encode(VALID).replace(b'"total-failure-session-count": 2', b'"total-failure-session-count": ' +
                                         text.encode())


def _many_details(count: int, **values):
    def change(document):
        document["policies"][0]["failure-details"] = [document["policies"][0]["failure-details"][0] | values] * count
    return change


GZ = "application/tlsrpt+gzip"
JS = "application/tlsrpt+json"

# (name, content type, body builder, expected HTTP status)
CASES = [
    ("valid-json", JS, lambda: encode(VALID), 201),
    ("valid-gzip", GZ, lambda: gz(VALID), 201),
    ("gzip-declared-json-sent", GZ, lambda: encode(VALID), 201),
    ("json-declared-gzip-sent", JS, lambda: gz(VALID), 201),
    ("lax-application-json", "application/json", lambda: encode(VALID), 201),
    ("empty-body", GZ, lambda: b"", 400),
    ("whitespace-body", JS, lambda: b"  \r\n ", 400),
    ("truncated-gzip", GZ, lambda: gz(VALID)[:-12], 400),
    ("corrupt-gzip", GZ, lambda: gz(VALID)[:12] + b"\xff" * 40 + gz(VALID)[52:], 400),
    ("gzip-trailing-garbage", GZ, lambda: gz(VALID) + b"trailing", 400),
    ("gzip-header-only", GZ, lambda: b"\x1f\x8b", 400),
    ("gzip-bomb", GZ, lambda: gzip.compress(b" " * (60 * 1024 * 1024), 9), 413),
    ("body-over-10-mib", JS, lambda: encode(report(padding="x" * (10 * 1024 * 1024))), 413),
    ("invalid-utf8", JS, lambda: encode(report(organization_name="\u00e9")).replace(b"\\u00e9", b"\xe9"), 400),
    ("utf16", JS, lambda: json.dumps(VALID).encode("utf-16"), 400),
    ("not-json", JS, lambda: b"hello, world", 400),
    ("json-array", JS, lambda: b"[1, 2, 3]", 400),
    ("json-string", JS, lambda: b'"report"', 400),
    ("nan-constant", JS, _raw_count("NaN"), 400),
    ("missing-organization-name", JS, _with(_drop("organization-name")), 400),
    ("missing-report-id", JS, _with(_drop("report-id")), 400),
    ("missing-date-range", JS, _with(_drop("date-range")), 400),
    ("missing-policies", JS, _with(_drop("policies")), 400),
    ("policies-as-object", JS, lambda: encode(report(policies=VALID["policies"][0])), 400),
    ("policies-as-string", JS, lambda: encode(report(policies="none")), 400),
    ("empty-organization-name", JS, lambda: encode(report(organization_name=" ")), 400),
    ("organization-name-too-long", JS, lambda: encode(report(organization_name="o" * 257)), 400),
    ("report-id-number", JS, lambda: encode(report(report_id=12345)), 400),
    ("start-after-end", JS, _with(_dates("2026-11-02T00:00:00Z", "2026-11-01T00:00:00Z")), 400),
    ("range-of-a-year", JS, _with(_dates("2025-11-01T00:00:00Z", "2026-11-01T00:00:00Z")), 400),
    ("date-not-rfc3339", JS, _with(_dates("1 Nov 2026", "2 Nov 2026")), 400),
    ("date-basic-format", JS, _with(_dates("20261101T000000Z", "20261101T235959Z")), 400),
    ("date-week-format", JS, _with(_dates("2026-W44-7T00:00:00Z", "2026-W44-7T23:59:59Z")), 400),
    ("date-space-separator", JS, _with(_dates("2026-11-01 00:00:00Z", "2026-11-01 23:59:59Z")), 400),
    ("date-after-year-9999-in-utc", JS, _with(_dates("2026-11-01T00:00:00Z", "9999-12-31T23:59:59-14:00")), 400),
    ("date-before-year-1-in-utc", JS, _with(_dates("0001-01-01T00:00:00+14:00", "2026-11-01T23:59:59Z")), 400),
    ("date-without-zone", JS, _with(_dates("2026-11-01T00:00:00", "2026-11-01T23:59:59")), 201),  # Microsoft
    ("date-before-tlsrpt", JS, _with(_dates("1999-01-01T00:00:00Z", "1999-01-01T23:59:59Z")), 400),
    ("date-in-the-future", JS, _with(_dates("2999-01-01T00:00:00Z", "2999-01-01T23:59:59Z")), 400),
    ("date-as-number", JS, _with(_dates(1700000000, 1700086399)), 400),
    ("unknown-policy-type", JS, _with(_policy(policy_type="dane")), 400),
    ("missing-policy-type", JS, _with(_drop("policies", 0, "policy", "policy-type")), 400),
    ("missing-policy", JS, _with(_drop("policies", 0, "policy")), 400),
    ("missing-summary", JS, _with(_drop("policies", 0, "summary")), 400),
    ("missing-policy-domain", JS, _with(_drop("policies", 0, "policy", "policy-domain")), 400),
    ("invalid-policy-domain", JS, _with(_policy(policy_domain="not a domain!")), 400),
    ("policy-string-not-array", JS, _with(_policy(policy_string="version: STSv1")), 400),
    ("mx-host-number", JS, _with(_policy(mx_host=25)), 400),
    ("count-as-string", JS, _with(_summary(total_successful_session_count="10")), 400),
    ("count-negative", JS, _with(_summary(total_failure_session_count=-1)), 400),
    ("count-fraction", JS, _with(_summary(total_failure_session_count=1.5)), 400),
    ("count-boolean", JS, _with(_summary(total_failure_session_count=True)), 400),
    ("count-1e400", JS, _raw_count("1e400"), 400),
    ("count-beyond-2-53", JS, _raw_count(str(2**64)), 400),
    ("count-beyond-2-40", JS, _raw_count(str(2**40 + 1)), 400),
    # 2^53-1 is all I-JSON allows, but 2,000 of them overflow a BIGINT rollup.
    ("details-adding-up-beyond-bigint", GZ,
     lambda: gz(_build(_many_details(2000, **{"failed-session-count": 2**53 - 1}))), 400),
    ("counts-adding-up-beyond-2-40", JS, _with(_many_details(2, **{"failed-session-count": 2**40})), 400),
    ("count-5000-digits", JS, _raw_count("9" * 5000), 400),
    ("missing-count", JS, _with(_drop("policies", 0, "summary", "total-failure-session-count")), 400),
    ("failure-details-object", JS,
     _with(lambda d: d["policies"][0].update({"failure-details": {"result-type": "x"}})), 400),
    ("failure-detail-not-object", JS, _with(lambda d: d["policies"][0].update({"failure-details": ["x"]})), 400),
    ("missing-result-type", JS, _with(_drop("policies", 0, "failure-details", 0, "result-type")), 400),
    ("leading-zero-ip", JS, _with(_detail(**{"sending-mta-ip": "192.168.001.001"})), 400),
    # 200 characters, 400 in lower case: longer than a host name column holds.
    ("mx-hostname-growing-in-lower-case", JS, _with(_detail(**{"receiving-mx-hostname": "\u0130" * 200})), 400),
    ("not-an-ip", JS, _with(_detail(**{"receiving-ip": "mx.example.com"})), 400),
    ("nul-in-string", JS, _with(_detail(**{"failure-reason-code": "bad\x00code"})), 400),
    ("duplicate-report-id", JS, lambda: encode(VALID).replace(b'"report-id": "report-1"',
                                                              b'"report-id": "a", "report-id": "b"'), 400),
    ("duplicate-key-in-detail", JS, lambda: encode(VALID).replace(
        b'"failed-session-count": 2', b'"failed-session-count": 2, "failed-session-count": 3'), 400),
    ("nesting-30-deep", JS, lambda: encode(report(extension=json.loads("[" * 30 + "]" * 30))), 400),
    ("nesting-100000-deep", JS, lambda: b'{"x": ' + b"[" * 100000 + b"]" * 100000 + b"}", 400),
    ("too-many-policies", GZ, lambda: gz(report(policies=VALID["policies"] * 1001)), 413),
    ("too-many-failure-details", GZ, lambda: gz(_build(_many_details(50001))), 413),
    ("string-over-4096", JS, _with(_detail(**{"failure-reason-code": "r" * 4097})), 413),
    ("a-million-json-values", GZ, lambda: gz(report(extension=[0] * 1_000_001)), 413),
    ("unhosted-domain", JS, _with(_policy(policy_domain="not-hosted.example")), 422),
    # What real senders send (the senders' notes): each is taken, its deviations noted.
    ("no-policy-found-without-domain", JS, lambda: encode(_no_policy_found()), 201),  # tlsrpt-reporter
    ("no-policy-found-empty-policy-string-and-mx-host", JS, lambda: encode(report(policies=[{
        "policy": {"policy-type": "no-policy-found", "policy-domain": "example.com", "policy-string": [],
                   "mx-host": []},
        "summary": {"total-successful-session-count": 3, "total-failure-session-count": 0}}])), 201),
    ("tlsa-policy-string-holding-a-json-array", JS, lambda: encode(report(policies=[_tlsa_block(
        ['["3 1 1 ' + "ab" * 32 + '", "2 1 1 ' + "cd" * 32 + '"]'])])), 201),  # Microsoft
    ("tlsa-and-sts-blocks-for-one-domain", JS, lambda: encode(report(
        policies=[_tlsa_block(["3 1 1 " + "ab" * 32]), VALID["policies"][0]])), 201),  # Microsoft
    ("report-id-digits-plus-domain", JS, lambda: encode(report(report_id="133749184000000000+example.com")), 201),
    ("report-id-digits-plus-nothing", JS, lambda: encode(report(report_id="133749184000000000+")), 201),
    ("report-id-epoch-and-number", JS, lambda: encode(report(report_id="1793491200_3")), 201),
    ("details-without-sending-mta-ip", JS, _with(_drop("policies", 0, "failure-details", 0, "sending-mta-ip")), 201),
    ("free-text-failure-reason-code", JS, _with(_detail(**{"failure-reason-code": "bad https response code: 404"})),
     201),  # Mail.ru
    ("failure-total-not-the-sum-of-details", JS, _with(_summary(total_failure_session_count=7)), 201),  # Mail.ru
    ("range-ending-at-the-next-midnight", JS, _with(_dates("2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z")), 201),
    ("range-of-an-hour", JS, _with(_dates("2026-11-01T10:00:00Z", "2026-11-01T11:00:00Z")), 201),  # Stalwart
    ("range-of-a-week", JS, _with(_dates("2026-10-25T00:00:00Z", "2026-11-01T00:00:00Z")), 201),  # Stalwart
    ("contact-info-empty", JS, lambda: encode(report(contact_info="")), 201),  # tlsrpt-reporter
    ("contact-info-null", JS, lambda: encode(VALID).replace(b'"tlsrpt@sender.example"', b"null"), 201),
    ("mx-host-as-a-string", JS, _with(_policy(mx_host="mx1.example.com")), 201),  # RFC 8460 erratum 6241

    ("media-type-text-plain", "text/plain", lambda: encode(VALID), 415),
    ("media-type-form", "application/x-www-form-urlencoded", lambda: encode(VALID), 415),
    ("media-type-missing", "", lambda: encode(VALID), 415),
    ("media-type-pdf", "application/pdf", lambda: gz(VALID), 415),
]


def _no_policy_found() -> dict:
    """Postfix with sys4's tlsrpt-reporter: no policy-domain; the report-id ends in the domain."""
    return report(report_id="2026-11-01T00:00:00Z_idx1_example.com", contact_info="", policies=[{
        "policy": {"policy-type": "no-policy-found"},
        "summary": {"total-successful-session-count": 12, "total-failure-session-count": 0}}])


def _tlsa_block(records: list[str]) -> dict:
    return {"policy": {"policy-type": "tlsa", "policy-domain": "example.com", "policy-string": records,
                       "mx-host": ["mx1.example.com"]},
            "summary": {"total-successful-session-count": 5, "total-failure-session-count": 0}}


def _build(change):
    document = report()
    change(document)
    return document
