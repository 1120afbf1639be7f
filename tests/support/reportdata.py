"""Reports for tests: the real samples, and a small valid report to vary one field at a time."""

import copy
import gzip
import json
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


def encode(document) -> bytes:
    return json.dumps(document).encode()


def gz(document) -> bytes:
    return gzip.compress(encode(document) if not isinstance(document, bytes) else document)
